/** The one place a Redis connection is made, with the retry and error policy every store shares. */
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';

const MAX_RETRY_DELAY_MS = 2000;

export async function connectRedis(url: string, log: Logger): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    // Commands fail fast while Redis is away instead of piling up; callers count and report them.
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RETRY_DELAY_MS),
    // Commands issued in one tick go out in one write: under load a write per command is most of a
    // room service's time.
    enableAutoPipelining: true,
  });
  redis.on('error', (error: Error) => log.warn('redis error', { error }));
  await redis.connect();
  return redis;
}
