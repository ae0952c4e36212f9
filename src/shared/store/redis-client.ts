/**
 * The one place a Redis connection is made, with the retry and error policy every store shares. It
 * takes every form of ROOMCAST_REDIS_URL (redis-url.ts): one Redis by URL, the primary that
 * Sentinel names, followed across failovers, or a Redis Cluster from its seed nodes.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';
import { parseRedisUrl, redactRedisUrl, type RedisTarget } from './redis-url.js';

/** What the stores run on: one Redis (by URL or behind Sentinel), or a Redis Cluster. */
export type RedisConnection = Redis | Cluster;

const MAX_RETRY_DELAY_MS = 2000;
/** Redis's answers to a wrong user or password, or a user without the commands a client needs to start. */
const LOGIN_REFUSED = /^(WRONGPASS|NOAUTH|NOPERM)/;

export interface RedisConnectOptions {
  /** The sentinels' own password (Sentinel form only); the URL's password is the Redis nodes'. */
  sentinelPassword?: string | null;
}

export async function connectRedis(url: string, log: Logger, options: RedisConnectOptions = {}): Promise<RedisConnection> {
  const parsed = parseRedisUrl(url);
  if ('problem' in parsed) throw new Error(`ROOMCAST_REDIS_URL ${parsed.problem}: ${redactRedisUrl(url)}`);
  const { target } = parsed;
  if (target.kind === 'cluster') return connectCluster(target, url, log);
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
  const redis: Redis = target.kind === 'direct'
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

/** A Redis Cluster from its seed nodes: every command goes to the primary of its key's slot. */
async function connectCluster(target: Extract<RedisTarget, { kind: 'cluster' }>, url: string, log: Logger): Promise<Cluster> {
  const cluster = new Cluster(target.nodes, {
    lazyConnect: true,
    enableOfflineQueue: true,
    clusterRetryStrategy: (attempt) => Math.min(attempt * 100, MAX_RETRY_DELAY_MS),
    // Auto-pipelining groups the commands of a tick per node, as on a single Redis.
    enableAutoPipelining: true,
    redisOptions: {
      maxRetriesPerRequest: 2,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
    },
  });
  cluster.on('error', (error: Error) => log.warn('redis cluster error', { error }));
  try {
    await cluster.connect();
  } catch (error) {
    cluster.disconnect();
    throw new Error(`cannot connect to the Redis Cluster at ${redactRedisUrl(url)}: ${(error as Error).message}`, { cause: error });
  }
  return cluster;
}

/** The primaries of the connection: itself on a single Redis, every primary of a cluster (for SCAN-based listings). */
export function primariesOf(redis: RedisConnection): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}
