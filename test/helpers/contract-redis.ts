/**
 * The real Redis set-ups a contract suite runs its Redis implementation against, one target each:
 *
 *   redis           one redis-server
 *   redis-sentinel  a primary, a replica and a sentinel; the store's connection is made from a
 *                   redis-sentinel:// URL and finds the primary through the sentinel
 *   redis-cluster   a 3-primary Redis Cluster (redis-server --cluster-enabled yes, redis-cli --cluster
 *                   create); the store's connection is made from a redis-cluster:// URL
 *
 * The first two have the deployment's ACL users, and the stores connect as `room-service` (the user
 * with the most to do), so a command a store needs and users.acl does not grant fails the contract;
 * the cluster runs without ACL users. Each target is started once for the suite; call at the top
 * level of the suite.
 */
import { afterAll, beforeAll } from 'vitest';
import { silentLogger } from '../../src/shared/log.js';
import { connectRedis, primariesOf, type RedisConnection } from '../../src/shared/store/redis-client.js';
import { startRedisCluster, type RedisClusterHandle } from './redis-cluster.js';
import { startRedis, type RedisServerHandle } from './redis-server.js';
import { startSentinelSet, type SentinelSetHandle } from './redis-sentinel.js';

export interface ContractRedisTarget {
  name: 'redis' | 'redis-sentinel' | 'redis-cluster';
  /** The stores' connection (as the room-service user); valid from beforeAll on. */
  redis(): RedisConnection;
}

export interface ContractRedis {
  targets: readonly ContractRedisTarget[];
  /** Empties every target (as the default user: FLUSHDB is not a store's command). */
  flushAll(): Promise<void>;
  /** The single server's default user, for tests of keys outside rc: (which the ACL users cannot touch). */
  admin(): RedisConnection;
}

export function useContractRedis(): ContractRedis {
  let server: RedisServerHandle | undefined;
  let sentinelSet: SentinelSetHandle | undefined;
  let cluster: RedisClusterHandle | undefined;
  const connections: Partial<Record<ContractRedisTarget['name'], RedisConnection>> = {};
  const admins: RedisConnection[] = [];
  beforeAll(async () => {
    [server, sentinelSet, cluster] = await Promise.all([startRedis({ acl: true }), startSentinelSet(), startRedisCluster()]);
    connections.redis = await connectRedis(server.urlFor('room-service'), silentLogger);
    connections['redis-sentinel'] = await connectRedis(sentinelSet.urlFor('room-service'), silentLogger);
    connections['redis-cluster'] = await connectRedis(cluster.url, silentLogger);
    admins.push(await connectRedis(server.url, silentLogger), await connectRedis(sentinelSet.urlFor('default'), silentLogger), connections['redis-cluster']);
  }, 60_000);
  afterAll(async () => {
    for (const connection of new Set([...Object.values(connections), ...admins])) await connection.quit().catch(() => undefined);
    await Promise.all([server?.stop(), sentinelSet?.stop(), cluster?.stop()]);
  });
  const target = (name: ContractRedisTarget['name']): ContractRedisTarget => ({
    name,
    redis: () => {
      const connection = connections[name];
      if (!connection) throw new Error(`the contract suite's ${name} is not started yet`);
      return connection;
    },
  });
  return {
    targets: [target('redis'), target('redis-sentinel'), target('redis-cluster')],
    // Every primary of the cluster: FLUSHDB on a cluster connection reaches one node only.
    flushAll: async () => { await Promise.all(admins.flatMap(primariesOf).map((node) => node.flushdb())); },
    admin: () => {
      if (!admins[0]) throw new Error('the contract suite\'s Redis is not started yet');
      return admins[0];
    },
  };
}
