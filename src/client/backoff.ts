/**
 * Reconnection delays: exponential backoff with full jitter (a uniformly random delay between 0 and
 * the exponential ceiling), so that clients dropped together by one gateway do not come back together.
 */

export const DEFAULT_RECONNECT_BASE_MS = 250;
export const DEFAULT_RECONNECT_MAX_MS = 10_000;

export interface BackoffSettings {
  /** The ceiling of the first delay, in ms. */
  baseMs: number;
  /** The largest ceiling, in ms. */
  maxMs: number;
}

/** Past this the ceiling is maxMs anyway; the bound keeps 2 ** attempt finite. */
const MAX_EXPONENT = 30;

/**
 * The delay before reconnection attempt number `attempt` (0 for the first attempt after a connection
 * was lost): `random() * min(maxMs, baseMs * 2 ** attempt)`, rounded down to whole ms.
 * `random` returns a number in [0, 1), like Math.random.
 */
export function fullJitterDelayMs(attempt: number, settings: BackoffSettings, random: () => number): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), MAX_EXPONENT);
  const ceilingMs = Math.min(settings.maxMs, settings.baseMs * 2 ** exponent);
  return Math.floor(random() * ceilingMs);
}
