/** What every Redis store shares: the key prefix, argument and pipeline helpers, and Lua pieces. */
import type { ChainableCommander } from 'ioredis';
import type { RedisConnection } from './redis-client.js';

/** Prefix of every key; stores take another one as an option. */
export const DEFAULT_KEY_PREFIX = 'rc:';

export type RedisArg = string | number | Buffer;

/** Most age-expired entries one script call removes, so a script's work stays bounded. */
export const MAX_AGE_TRIM_PER_CALL = 200;

/**
 * Lua `trim(list, count, cutoff, length)`: keeps a list of "<ts>:..." entries to `count` and drops its
 * age-expired head. `length`, when the caller knows it (RPUSH answers it), spares the LTRIM of a list
 * that is not over `count`.
 */
export const TRIM_LIST_LUA = `
local function trim(list, count, cutoff, length)
  if count and (length == nil or length > count) then redis.call('LTRIM', list, -count, -1) end
  for _ = 1, ${MAX_AGE_TRIM_PER_CALL} do
    local head = redis.call('LINDEX', list, 0)
    if not head then return end
    local ts = tonumber(string.match(head, '^(%d+):'))
    if ts == nil or ts >= cutoff then return end
    redis.call('LPOP', list)
  end
end
`;

/** A store's Lua scripts, each a command of its name on the connection (run with EVALSHA). */
export function defineScripts(redis: RedisConnection, scripts: Record<string, { numberOfKeys?: number; lua: string }>): void {
  // Without numberOfKeys, a call's first argument says how many keys follow (a batch names several messages' keys).
  for (const [name, { numberOfKeys, lua }] of Object.entries(scripts)) redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua });
}

/** ioredis sends a Buffer as bytes but any other Uint8Array as text: view the bytes as a Buffer, without a copy. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Runs a pipeline or transaction and answers its results, throwing the first command error. */
export async function execAll(commands: ChainableCommander): Promise<unknown[]> {
  const results = await commands.exec();
  if (!results) throw new Error('the Redis pipeline was aborted');
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
