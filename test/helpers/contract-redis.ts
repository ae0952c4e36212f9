/**
 * The real Redis targets a contract suite runs its Redis implementations against: one redis-server
 * and one 3-primary Redis Cluster, both on free ports for the suite, with a connection to each. Call
 * at the top level of the suite.
 */
import { afterAll, beforeAll } from 'vitest';
import { silentLogger } from '../../src/shared/log.js';
import { connectRedis, primariesOf, type RedisConnection } from '../../src/shared/store/redis-client.js';
import { startRedisCluster, type RedisClusterHandle } from './redis-cluster.js';
import { startRedis, type RedisServerHandle } from './redis-server.js';

export interface ContractRedis {
  /** The single Redis; valid from beforeAll on. */
  (): RedisConnection;
  /** The Redis Cluster; valid from beforeAll on. */
  cluster(): RedisConnection;
  /** Empties both (every primary of the cluster). */
  flush(): Promise<void>;
}

export function useContractRedis(): ContractRedis {
  let server: RedisServerHandle | undefined;
  let clusterServer: RedisClusterHandle | undefined;
  let redis: RedisConnection | undefined;
  let cluster: RedisConnection | undefined;
  beforeAll(async () => {
    [server, clusterServer] = await Promise.all([startRedis(), startRedisCluster()]);
    [redis, cluster] = await Promise.all([connectRedis(server.url, silentLogger), connectRedis(clusterServer.url, silentLogger)]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([redis?.quit(), cluster?.quit()]);
    await Promise.all([server?.stop(), clusterServer?.stop()]);
  });
  const started = (connection: RedisConnection | undefined) => {
    if (!connection) throw new Error('the contract suite\'s Redis is not started yet');
    return connection;
  };
  return Object.assign(() => started(redis), {
    cluster: () => started(cluster),
    flush: async () => {
      await Promise.all([started(redis), started(cluster)].flatMap(primariesOf).map((node) => node.flushdb()));
    },
  });
}
