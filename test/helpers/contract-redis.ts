/**
 * The real Redis a contract suite runs its Redis implementation against: one redis-server on a free
 * port for the suite, and one connection to it. Call at the top level of the suite.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { silentLogger } from '../../src/shared/log.js';
import { connectRedis } from '../../src/shared/store/redis-client.js';
import { startRedis, type RedisServerHandle } from './redis-server.js';

/** Returns the suite's connection; valid from beforeAll on. */
export function useContractRedis(): () => Redis {
  let server: RedisServerHandle | undefined;
  let redis: Redis | undefined;
  beforeAll(async () => {
    server = await startRedis();
    redis = await connectRedis(server.url, silentLogger);
  });
  afterAll(async () => {
    await redis?.quit();
    await server?.stop();
  });
  return () => {
    if (!redis) throw new Error('the contract suite\'s Redis is not started yet');
    return redis;
  };
}
