/** Least-squares line through time series points, for projecting total connections ahead. */

export interface TimedValue { atMs: number; value: number }

export interface Line {
  /** Change per second. */
  slopePerSec: number;
  /** Value of the line at `atMs`. */
  valueAt(atMs: number): number;
}

/** The least-squares line through `points`, or null with fewer than two points or no spread in time. */
export function fitLine(points: readonly TimedValue[]): Line | null {
  const n = points.length;
  if (n < 2) return null;
  // Centre time on the first point so large epoch values do not lose precision.
  const t0 = points[0]!.atMs;
  let sumX = 0;
  let sumY = 0;
  for (const p of points) { sumX += (p.atMs - t0) / 1000; sumY += p.value; }
  const meanX = sumX / n;
  const meanY = sumY / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    const dx = (p.atMs - t0) / 1000 - meanX;
    sxx += dx * dx;
    sxy += dx * (p.value - meanY);
  }
  if (sxx === 0) return null;
  const slopePerSec = sxy / sxx;
  return { slopePerSec, valueAt: (atMs) => meanY + slopePerSec * ((atMs - t0) / 1000 - meanX) };
}

/**
 * Where the series is heading `aheadMs` after its last point: the last value plus the steepest
 * least-squares slope over each of the trailing `windowsMs` (only rising slopes count). The short
 * window notices a flash crowd within a few samples; the long one keeps a slow climb visible.
 * A window of 0 is skipped. Returns null when no window holds enough points.
 */
export function projectRise(points: readonly TimedValue[], windowsMs: readonly number[], aheadMs: number, minPoints = 3): { value: number; slopePerSec: number } | null {
  const last = points[points.length - 1];
  if (!last) return null;
  let best: number | null = null;
  for (const windowMs of windowsMs) {
    if (windowMs <= 0) continue;
    const inWindow = points.filter((p) => p.atMs >= last.atMs - windowMs);
    if (inWindow.length < minPoints) continue;
    const line = fitLine(inWindow);
    if (line && (best === null || line.slopePerSec > best)) best = line.slopePerSec;
  }
  if (best === null) return null;
  const slopePerSec = Math.max(0, best);
  return { value: last.value + slopePerSec * (aheadMs / 1000), slopePerSec };
}
