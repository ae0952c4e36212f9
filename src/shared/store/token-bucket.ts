/**
 * The token bucket of the in-memory stores (the Redis stores run the same rule in Lua,
 * `TOKEN_BUCKET_LUA`): `burst` tokens, refilled at `ratePerSec`; a send spends one. A missing bucket
 * is a full one, so a bucket may be forgotten once it would be full again.
 */
import type { RateLimit } from './room-store.js';

const MS_PER_SECOND = 1000;

export interface TokenBucket { tokens: number; atMs: number }

/** The bucket as it stands at `nowMs`. */
export function refill(bucket: TokenBucket | undefined, limit: RateLimit, nowMs: number): TokenBucket {
  if (!bucket) return { tokens: limit.burst, atMs: nowMs };
  const elapsedMs = Math.max(0, nowMs - bucket.atMs);
  return { tokens: Math.min(limit.burst, bucket.tokens + (elapsedMs * limit.ratePerSec) / MS_PER_SECOND), atMs: nowMs };
}

/** The bucket after one send at `nowMs`, or null when it holds less than one token. */
export function take(bucket: TokenBucket | undefined, limit: RateLimit, nowMs: number): TokenBucket | null {
  const current = refill(bucket, limit, nowMs);
  return current.tokens < 1 ? null : { tokens: current.tokens - 1, atMs: nowMs };
}

/** When the bucket holds `burst` tokens again and so may be forgotten; never when it does not refill. */
export function fullAgainAtMs(bucket: TokenBucket, limit: RateLimit): number {
  if (limit.ratePerSec <= 0) return Infinity;
  return bucket.atMs + Math.ceil(((limit.burst - bucket.tokens) * MS_PER_SECOND) / limit.ratePerSec);
}
