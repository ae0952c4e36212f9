/**
 * The one place a Redis connection is made, with the retry and error policy every store shares. It
 * takes every form of ROOMCAST_REDIS_URL (redis-url.ts): one Redis by URL, or the primary that
 * Sentinel names, followed across failovers.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';
import { parseRedisUrl, redactRedisUrl } from './redis-url.js';

const MAX_RETRY_DELAY_MS = 2000;
/** Redis's answers to a wrong user or password, or a user without the commands a client needs to start. */
const LOGIN_REFUSED = /^(WRONGPASS|NOAUTH|NOPERM)/;

export interface RedisConnectOptions {
  /** The sentinels' own password (Sentinel form only); the URL's password is the Redis nodes'. */
  sentinelPassword?: string | null;
}

export async function connectRedis(url: string, log: Logger, options: RedisConnectOptions = {}): Promise<Redis> {
  const parsed = parseRedisUrl(url);
  if ('problem' in parsed) throw new Error(`ROOMCAST_REDIS_URL ${parsed.problem}: ${redactRedisUrl(url)}`);
  const { target } = parsed;
  const shared: RedisOptions = {
    lazyConnect: true,
    // Commands fail fast while Redis is away instead of piling up; callers count and report them.
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RETRY_DELAY_MS),
    // A primary demoted by a failover answers writes with READONLY while our connection still points
    // at it: reconnect (Sentinel then names the new primary) and resend the command.
    reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 2 : false),
    // Commands issued in one tick go out in one write: under load a write per command is most of a
    // room service's time.
    enableAutoPipelining: true,
  };
  const redis = target.kind === 'direct'
    ? new Redis(target.url, shared)
    : new Redis({
      ...shared,
      sentinels: target.sentinels,
      name: target.masterName,
      db: target.db,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      ...(options.sentinelPassword ? { sentinelPassword: options.sentinelPassword } : {}),
      sentinelRetryStrategy: (attempt) => Math.min(attempt * 100, MAX_RETRY_DELAY_MS),
      // Follow Sentinel's +switch-master at once: a primary cut off by a partition would otherwise
      // hold our connection until TCP gives up.
      failoverDetector: true,
    });
  redis.on('error', (error: Error) => log.warn('redis error', { error }));
  // ioredis retries a refused login forever, as it does an unreachable server; at start-up a refused
  // login is a configuration mistake, so fail at once with what Redis said.
  let onRefused: ((error: Error) => void) | undefined;
  const refused = new Promise<never>((_, reject) => {
    onRefused = (error) => { if (LOGIN_REFUSED.test(error.message)) reject(error); };
    redis.on('error', onRefused);
  });
  try {
    await Promise.race([redis.connect(), refused]);
  } catch (error) {
    redis.disconnect();
    throw new Error(`cannot connect to Redis at ${redactRedisUrl(url)}: ${(error as Error).message}`, { cause: error });
  } finally {
    redis.removeListener('error', onRefused!);
  }
  return redis;
}
