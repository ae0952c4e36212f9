/**
 * A real Sentinel set-up per test file: a redis-server primary, replicas of it and one
 * `redis-server --sentinel` watching them, all on free ports, with the deployment's ACL users on the
 * Redis nodes (users.acl) and on the sentinel (sentinel-users.acl). One sentinel with quorum 1 is
 * enough to fail over in a test; deploy/k8s/redis runs three.
 */
import { Redis } from 'ioredis';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { renderAclFile, startOnFreePort, startRedis, TEST_REDIS_PASSWORDS, type RedisServerHandle, type RedisUser } from './redis-server.js';

export const SENTINEL_MASTER_NAME = 'roomcast';
const SENTINEL_ACL_TEMPLATE = new URL('../../deploy/k8s/redis/sentinel-users.acl', import.meta.url);
/** Short, so a failover takes a couple of seconds in a test. */
const DOWN_AFTER_MS = 1000;
const FAILOVER_TIMEOUT_MS = 5000;
const SETTLE_TIMEOUT_MS = 15_000;
const POLL_MS = 50;

export interface SentinelSetHandle {
  /** The nodes, the primary first (as started; after a failover see `primaryPort()`). */
  nodes: RedisServerHandle[];
  sentinelPort: number;
  /** `redis-sentinel://user:password@127.0.0.1:PORT/roomcast` */
  urlFor(user: RedisUser): string;
  /** The port of the node the sentinel names as primary now. */
  primaryPort(): Promise<number>;
  /** Resolves once the sentinel names a primary other than `oldPort` and that node accepts writes. */
  waitForFailover(oldPort: number): Promise<number>;
  stop(): Promise<void>;
}

export async function startSentinelSet(options: { replicas?: number } = {}): Promise<SentinelSetHandle> {
  const primary = await startRedis({ acl: true });
  const nodes = [primary];
  const stops: Array<() => Promise<void>> = [() => primary.stop()];
  try {
    for (let i = 0; i < (options.replicas ?? 1); i++) {
      const replica = await startRedis({ acl: true, replicaOf: primary.port });
      nodes.push(replica);
      stops.push(() => replica.stop());
    }
    const dir = await mkdtemp(join(tmpdir(), 'roomcast-sentinel-'));
    stops.push(() => rm(dir, { recursive: true, force: true }));
    const users = renderAclFile(await readFile(SENTINEL_ACL_TEMPLATE, 'utf8'), { REDIS_DEFAULT_PASSWORD: TEST_REDIS_PASSWORDS.default });
    const configFile = join(dir, 'sentinel.conf');
    // Sentinel rewrites its config file, so each start attempt writes it anew for its port.
    const { ports: [sentinelPort], stop: stopSentinel } = await startOnFreePort({
      args: async (port) => {
        await writeFile(configFile, sentinelConfig(port, primary.port, dir, users));
        return [configFile, '--sentinel'];
      },
      password: null,
      // A sentinel never says "Ready to accept connections"; it names what it watches once it listens.
      readyLine: '+monitor master',
    });
    stops.push(stopSentinel);
    const handle = sentinelHandle(nodes, sentinelPort!, stops);
    await handle.waitUntilWatching(nodes.length - 1);
    return handle;
  } catch (error) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    throw error;
  }
}

function sentinelConfig(port: number, primaryPort: number, dir: string, users: string): string {
  return [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${dir}`,
    `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${primaryPort} 1`,
    `sentinel auth-user ${SENTINEL_MASTER_NAME} default`,
    `sentinel auth-pass ${SENTINEL_MASTER_NAME} ${TEST_REDIS_PASSWORDS.default}`,
    `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} ${DOWN_AFTER_MS}`,
    `sentinel failover-timeout ${SENTINEL_MASTER_NAME} ${FAILOVER_TIMEOUT_MS}`,
    'sentinel sentinel-user admin',
    `sentinel sentinel-pass ${TEST_REDIS_PASSWORDS.default}`,
    users,
  ].join('\n');
}

function sentinelHandle(nodes: RedisServerHandle[], sentinelPort: number, stops: Array<() => Promise<void>>) {
  const admin = () => new Redis({ port: sentinelPort, host: '127.0.0.1', username: 'admin', password: TEST_REDIS_PASSWORDS.default, lazyConnect: true, maxRetriesPerRequest: 1 });
  const ask = async <T>(...args: string[]): Promise<T> => {
    const client = admin();
    try {
      await client.connect();
      return (await client.call('SENTINEL', ...args)) as T;
    } finally {
      client.disconnect();
    }
  };
  const primaryPort = async () => Number((await ask<string[]>('get-master-addr-by-name', SENTINEL_MASTER_NAME))[1]);
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`the sentinel set-up did not settle: ${what} within ${SETTLE_TIMEOUT_MS} ms`);
      await delay(POLL_MS);
    }
  };
  return {
    nodes,
    sentinelPort,
    urlFor: (user: RedisUser) => `redis-sentinel://${user}:${TEST_REDIS_PASSWORDS[user]}@127.0.0.1:${sentinelPort}/${SENTINEL_MASTER_NAME}`,
    primaryPort,
    /** The sentinel knows `count` replicas, each linked to the primary. */
    async waitUntilWatching(count: number) {
      await until(`${count} replicas in sync`, async () => {
        const replicas = await ask<string[][]>('replicas', SENTINEL_MASTER_NAME);
        const linked = replicas.filter((fields) => fieldOf(fields, 'master-link-status') === 'ok' && !fieldOf(fields, 'flags')?.includes('down'));
        return linked.length >= count;
      });
    },
    async waitForFailover(oldPort: number) {
      let newPort = oldPort;
      await until('a replica promoted', async () => {
        newPort = await primaryPort();
        if (newPort === oldPort) return false;
        const node = new Redis({ port: newPort, host: '127.0.0.1', password: TEST_REDIS_PASSWORDS.default, lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
          await node.connect();
          return (await node.call('ROLE') as [string])[0] === 'master';
        } finally {
          node.disconnect();
        }
      });
      return newPort;
    },
    async stop() {
      for (const stop of [...stops].reverse()) await stop().catch(() => undefined);
    },
  };
}

/** A field of SENTINEL REPLICAS's flat name/value list. */
function fieldOf(fields: string[], name: string): string | undefined {
  const index = fields.indexOf(name);
  return index >= 0 ? fields[index + 1] : undefined;
}
