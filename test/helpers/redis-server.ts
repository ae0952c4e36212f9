/**
 * A real redis-server per test file on a free port, with persistence off, so contract and
 * integration tests run the Redis stores against the real thing and never touch a developer's own
 * Redis.
 *
 * Unlike nats-server, redis-server cannot pick its own port (`--port 0` turns TCP off), so a port is
 * chosen here and can be taken by another process before redis-server binds it. Then redis-server
 * exits ("Address already in use") and it is started again on another port.
 */
import { createConnection, createServer } from 'node:net';
import { ServerMissingError, startServer, type ServerProcess } from './server-process.js';

const MAX_START_ATTEMPTS = 5;
/** The developer's own Redis: never ours to take. */
const STANDARD_PORT = 6379;
/** Generous: a busy machine may take seconds to start it. */
const READY_TIMEOUT_MS = 20_000;
const PROBE_TIMEOUT_MS = 5_000;

export interface RedisServerHandle {
  /** `redis://127.0.0.1:PORT` */
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisServerHandle> {
  const { ports: [port], stop } = await startRedisProcess();
  return { url: `redis://127.0.0.1:${port}`, port: port!, stop };
}

/**
 * redis-server on an unused port, with `extraArgs(port)` added (a cluster node's settings), started
 * again on another port when another process took the port first.
 */
export async function startRedisProcess(extraArgs: (port: number) => Promise<string[]> | string[] = () => []): Promise<ServerProcess> {
  let lastFailure: unknown;
  for (let attempt = 1; attempt <= MAX_START_ATTEMPTS; attempt++) {
    try {
      const port = await unusedPort();
      return await startOn(port, await extraArgs(port));
    } catch (error) {
      if (error instanceof ServerMissingError) throw error;
      lastFailure = error;
    }
  }
  throw new Error(`redis-server did not start in ${MAX_START_ATTEMPTS} attempts`, { cause: lastFailure });
}

function startOn(port: number, extraArgs: string[]): Promise<ServerProcess> {
  return startServer({
    binary: 'redis-server',
    install: 'apt-get install redis-server',
    args: ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(port), ...extraArgs],
    ready: async (output, pid) => {
      await output.waitForLine((line) => (line.includes('Ready to accept connections') ? true : undefined), 'the line "Ready to accept connections"', READY_TIMEOUT_MS);
      if (!(await answersAs(port, pid))) throw new Error(`another process than redis-server ${pid} answers on port ${port}`);
      return [port];
    },
  });
}

/** A port nothing listened on a moment ago (the OS picks it), other than the standard one. */
export async function unusedPort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port !== STANDARD_PORT) return port;
  }
}

/** Whether the server on `port` answers and is the process `pid` (one inline INFO over a raw socket, so the helper needs no Redis client). */
export function answersAs(port: number, pid: number): Promise<boolean> {
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
      // A bulk reply names the server's process; an error reply (such as -LOADING) does not.
      if (reply.startsWith('-')) finish(false);
      else if (/\r\nprocess_id:\d+\r\n/.test(reply)) finish(reply.includes(`\r\nprocess_id:${pid}\r\n`));
    });
  });
}
