/**
 * A real 3-primary Redis Cluster per test file: three redis-servers with cluster mode on (client and
 * cluster-bus ports both free ones, persistence off, node files in a temporary folder), joined by
 * `redis-cli --cluster create`, ready once every node reports `cluster_state:ok`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startOnFreePort, unusedPort } from './redis-server.js';
import type { ServerProcess } from './server-process.js';

const run = promisify(execFile);
const PRIMARIES = 3;
const STATE_TIMEOUT_MS = 20_000;
const STATE_POLL_MS = 100;

export interface RedisClusterHandle {
  /** `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3` */
  url: string;
  /** The same URL for every user: the cluster has no ACL users. */
  urlFor(user: string): string;
  ports: number[];
  stop(): Promise<void>;
}

export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'roomcast-cluster-'));
  const nodes: ServerProcess[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < PRIMARIES; i++) {
      // The cluster bus gets a free port of its own (the default, port + 10000, may be taken or too high).
      nodes.push(await startOnFreePort({
        password: null,
        args: async (port) => [
          '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(port), '--dir', dir,
          '--cluster-enabled', 'yes', '--cluster-port', String(await unusedPort()), '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        ],
      }));
    }
    const ports = nodes.map((node) => node.ports[0]!);
    await run('redis-cli', ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes']);
    await untilStateOk(ports);
    const url = `redis-cluster://${ports.map((port) => `127.0.0.1:${port}`).join(',')}`;
    return { url, urlFor: () => url, ports, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function untilStateOk(ports: number[]): Promise<void> {
  const deadline = Date.now() + STATE_TIMEOUT_MS;
  for (;;) {
    const infos = await Promise.all(ports.map((port) => run('redis-cli', ['-p', String(port), 'cluster', 'info']).then(({ stdout }) => stdout, () => '')));
    if (infos.every((info) => info.includes('cluster_state:ok'))) return;
    if (Date.now() > deadline) throw new Error(`the Redis Cluster on ports ${ports.join(', ')} did not reach cluster_state:ok in ${STATE_TIMEOUT_MS} ms`);
    await delay(STATE_POLL_MS);
  }
}
