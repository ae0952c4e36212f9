/**
 * A real redis-server per test file on a free port, with persistence off, so contract and
 * integration tests run the Redis stores against the real thing and never touch a developer's own
 * Redis.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './free-port.js';

/** The port a developer's own redis-server uses; a test must never talk to it. */
const RESERVED_PORTS = new Set([6379]);
const MAX_START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;
const READY_POLL_INTERVAL_MS = 25;
const PROBE_TIMEOUT_MS = 1_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL_CHARS = 4_000;

export interface RedisServerHandle {
  /** `redis://127.0.0.1:PORT` */
  url: string;
  port: number;
  stop(): Promise<void>;
}

class RedisServerMissingError extends Error {
  constructor(cause: unknown) {
    super('redis-server is not on PATH; install it (apt-get install redis-server) to run these tests', { cause });
  }
}

export async function startRedis(): Promise<RedisServerHandle> {
  let lastFailure: unknown;
  // Another process may take a free port between our check and redis-server's bind (EADDRINUSE): try again then.
  for (let attempt = 1; attempt <= MAX_START_ATTEMPTS; attempt++) {
    try {
      return await launch(await unreservedFreePort());
    } catch (error) {
      if (error instanceof RedisServerMissingError) throw error;
      lastFailure = error;
    }
  }
  throw new Error(`redis-server did not start in ${MAX_START_ATTEMPTS} attempts`, { cause: lastFailure });
}

async function unreservedFreePort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (!RESERVED_PORTS.has(port)) return port;
  }
}

async function launch(port: number): Promise<RedisServerHandle> {
  const child = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // redis-server logs to stdout; its tail explains a failed start (such as "Address already in use").
  let outputTail = '';
  const keepTail = (chunk: string) => {
    outputTail = (outputTail + chunk).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout.setEncoding('utf8').on('data', keepTail);
  child.stderr.setEncoding('utf8').on('data', keepTail);
  let failure: Error | undefined;
  child.once('error', (error: NodeJS.ErrnoException) => {
    failure = error.code === 'ENOENT' ? new RedisServerMissingError(error) : error;
  });
  const exited = once(child, 'exit').catch(() => undefined);
  child.once('exit', (code, signal) => {
    failure ??= new Error(`redis-server exited (${code ?? signal}) before it was ready:\n${outputTail}`);
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.kill('SIGTERM');
    await exited;
    clearTimeout(killer);
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (failure) {
      await stop();
      throw failure;
    }
    // Check the process id too: a server that is not ours could answer on a port we failed to bind.
    if (await answersAs(port, child.pid)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not answer on port ${port} within ${READY_TIMEOUT_MS} ms:\n${outputTail}`);
    }
    await delay(READY_POLL_INTERVAL_MS);
  }

  return { url: `redis://127.0.0.1:${port}`, port, stop };
}

/** Whether the server on `port` answers and is the process `pid` (one inline INFO over a raw socket, so the helper needs no Redis client). */
function answersAs(port: number, pid: number | undefined): Promise<boolean> {
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
