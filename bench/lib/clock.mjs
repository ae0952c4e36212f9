/**
 * The harness's clock: CLOCK_MONOTONIC in microseconds, the same clock in every process of the
 * machine, so a receiver in one process can subtract a send time scheduled in another.
 */
export function nowUs() {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e6 + nanoseconds / 1e3;
}
