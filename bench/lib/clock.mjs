/**
 * The harness's clock: CLOCK_MONOTONIC in microseconds, the same clock in every process of the
 * machine, so a receiver in one process can subtract a send time scheduled in another.
 */
export function nowUs() {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e6 + nanoseconds / 1e3;
}

/** Digits of a scheduled send time in a message's text: fixed, so a replay that moves it keeps the frame's length. */
export const STAMP_DIGITS = 15;

/** The start of a message's text: its scheduled send time (µs, CLOCK_MONOTONIC), zero-padded, and `|`. */
export function stampOf(scheduledUs) {
  return `${String(Math.round(scheduledUs)).padStart(STAMP_DIGITS, '0')}|`;
}
