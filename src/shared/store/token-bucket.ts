/**
 * The send rate limiter, one rule in its two forms: the in-memory stores call the functions below,
 * the Redis stores include `TOKEN_BUCKET_LUA` in their send scripts. `burst` tokens, refilled at
 * `ratePerSec`; a send spends one. A missing bucket is a full one, so a bucket may be forgotten once
 * it would be full again.
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

/**
 * The token bucket, the one copy every send script includes (the bucket is a key in the slot of what
 * it protects: the room, the conversation, the group). `bucket_tokens(bucket, now, rate, burst)`
 * answers the tokens the bucket holds at `now` (a missing bucket is full); `bucket_take(bucket, tokens,
 * now_arg, rate, burst)` spends one of them and lets the bucket expire when it would be full again.
 * Checks only read: a script calls `bucket_take` once nothing can refuse the send any more.
 */
export const TOKEN_BUCKET_LUA = `
local function bucket_tokens(bucket, now, rate, burst)
  local state = redis.call('HMGET', bucket, 'tokens', 'ts')
  if not state[1] then return burst end
  return math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate / 1000)
end
local function bucket_take(bucket, tokens, now_arg, rate, burst)
  local left = tokens - 1
  redis.call('HSET', bucket, 'tokens', left, 'ts', now_arg)
  if rate > 0 then redis.call('PEXPIRE', bucket, math.ceil((burst - left) * 1000 / rate)) end
end
`;
