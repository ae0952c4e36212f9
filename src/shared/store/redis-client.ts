/** The one place a Redis connection is made, with the retry and error policy every store shares. */
import { Cluster, Redis } from 'ioredis';
import type { Logger } from '../log.js';

const MAX_RETRY_DELAY_MS = 2000;

/** What the stores run on: one Redis (or a primary behind a URL), or a Redis Cluster. */
export type RedisConnection = Redis | Cluster;

/** `redis-cluster://[user:password@]host1:port1,host2:port2`: the seed nodes of a Redis Cluster. */
export const REDIS_CLUSTER_SCHEME = 'redis-cluster:';

const retryStrategy = (attempt: number) => Math.min(attempt * 100, MAX_RETRY_DELAY_MS);

export async function connectRedis(url: string, log: Logger): Promise<RedisConnection> {
  if (url.startsWith(`${REDIS_CLUSTER_SCHEME}//`)) return connectCluster(url, log);
  const redis = new Redis(url, {
    lazyConnect: true,
    // Commands fail fast while Redis is away instead of piling up; callers count and report them.
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    retryStrategy,
    // Commands issued in one tick go out in one write: under load a write per command is most of a
    // room service's time.
    enableAutoPipelining: true,
  });
  redis.on('error', (error: Error) => log.warn('redis error', { error }));
  await redis.connect();
  return redis;
}

/** The seed nodes and credentials of a `redis-cluster://` URL. */
export function parseClusterUrl(url: string): { nodes: Array<{ host: string; port: number }>; username?: string; password?: string } {
  const rest = url.slice(`${REDIS_CLUSTER_SCHEME}//`.length).replace(/\/.*$/, '');
  const at = rest.lastIndexOf('@');
  const hosts = at < 0 ? rest : rest.slice(at + 1);
  const credentials = at < 0 ? undefined : rest.slice(0, at);
  const nodes = hosts.split(',').map((item) => {
    const colon = item.lastIndexOf(':');
    const port = colon < 0 ? 6379 : Number(item.slice(colon + 1));
    const host = colon < 0 ? item : item.slice(0, colon);
    if (!host || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`'${item}' in the Redis Cluster URL is not host:port`);
    return { host, port };
  });
  if (credentials === undefined) return { nodes };
  const colon = credentials.indexOf(':');
  if (colon < 0) return { nodes, password: decodeURIComponent(credentials) };
  const username = decodeURIComponent(credentials.slice(0, colon));
  return { nodes, password: decodeURIComponent(credentials.slice(colon + 1)), ...(username ? { username } : {}) };
}

async function connectCluster(url: string, log: Logger): Promise<Cluster> {
  const { nodes, username, password } = parseClusterUrl(url);
  const cluster = new Cluster(nodes, {
    lazyConnect: true,
    enableOfflineQueue: true,
    clusterRetryStrategy: retryStrategy,
    // Auto-pipelining groups the commands of a tick per node, as on a single Redis.
    enableAutoPipelining: true,
    redisOptions: { maxRetriesPerRequest: 2, ...(username ? { username } : {}), ...(password ? { password } : {}) },
  });
  cluster.on('error', (error: Error) => log.warn('redis cluster error', { error }));
  await cluster.connect();
  return cluster;
}

/** The primaries of the connection: itself on a single Redis, every primary of a cluster (for SCAN-based listings). */
export function primariesOf(redis: RedisConnection): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}
