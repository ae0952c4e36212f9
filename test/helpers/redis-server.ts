/**
 * A real redis-server per test file on a free port, with persistence off, so contract and
 * integration tests run the Redis stores against the real thing and never touch a developer's own
 * Redis.
 */
import { createConnection } from 'node:net';
import { startServer } from './server-process.js';

const PROBE_TIMEOUT_MS = 1_000;

export interface RedisServerHandle {
  /** `redis://127.0.0.1:PORT` */
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisServerHandle> {
  const { ports: [port], stop } = await startServer({
    binary: 'redis-server',
    install: 'apt-get install redis-server',
    reservedPorts: new Set([6379]),
    portCount: 1,
    args: ([redisPort]) => ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(redisPort)],
    ready: ([redisPort], pid) => answersAs(redisPort!, pid),
  });
  return { url: `redis://127.0.0.1:${port}`, port: port!, stop };
}

/** Whether the server on `port` answers and is the process `pid` (one inline INFO over a raw socket, so the helper needs no Redis client). */
export function answersAs(port: number, pid: number | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('INFO server\r\n'));
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      reply += chunk;
      // An error reply (such as -LOADING) means not ready yet; a bulk reply names the server's process.
      if (reply.startsWith('-')) finish(false);
      else if (/\r\nprocess_id:\d+\r\n/.test(reply)) finish(reply.includes(`\r\nprocess_id:${pid}\r\n`));
    });
  });
}
