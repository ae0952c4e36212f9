/**
 * A real nats-server per test file, on free ports for clients and monitoring (as nats.js starts one
 * for its own tests). The monitoring endpoint lets tests see what the server sees, such as which
 * subscriptions exist.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './free-port.js';

/** The ports a developer's own nats-server uses; a test must never talk to it. */
const RESERVED_PORTS = new Set([4222, 8222]);
const MAX_START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;
const READY_POLL_INTERVAL_MS = 25;
const STOP_GRACE_MS = 5_000;
const STDERR_TAIL_CHARS = 4_000;
/** connz lists 1,024 connections unless told otherwise; tests have far fewer than this. */
const CONNZ_LIMIT = 10_000;

export interface NatsServerHandle {
  /** `nats://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** `http://127.0.0.1:PORT` of the monitoring endpoint. */
  monitorUrl: string;
  stop(): Promise<void>;
  /** How many subscriptions on exactly `subject` the server holds, over all connections. */
  subscriptionCount(subject: string): Promise<number>;
}

class NatsServerMissingError extends Error {
  constructor(cause: unknown) {
    super('nats-server is not on PATH; install it (apt-get install nats-server) to run these tests', { cause });
  }
}

export async function startNats(): Promise<NatsServerHandle> {
  let lastFailure: unknown;
  // Another process may take a free port between our check and nats-server's bind: try again then.
  for (let attempt = 1; attempt <= MAX_START_ATTEMPTS; attempt++) {
    try {
      return await launch(await unreservedFreePort(), await unreservedFreePort());
    } catch (error) {
      if (error instanceof NatsServerMissingError) throw error;
      lastFailure = error;
    }
  }
  throw new Error(`nats-server did not start in ${MAX_START_ATTEMPTS} attempts`, { cause: lastFailure });
}

async function unreservedFreePort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (!RESERVED_PORTS.has(port)) return port;
  }
}

async function launch(port: number, monitorPort: number): Promise<NatsServerHandle> {
  const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // The server logs to stderr; its tail explains a failed start.
  let stderrTail = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
  });
  let failure: Error | undefined;
  child.once('error', (error: NodeJS.ErrnoException) => {
    failure = error.code === 'ENOENT' ? new NatsServerMissingError(error) : error;
  });
  const exited = once(child, 'exit').catch(() => undefined);
  child.once('exit', (code, signal) => {
    failure ??= new Error(`nats-server exited (${code ?? signal}) before it was ready:\n${stderrTail}`);
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
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
    // Check the port too: a server that is not ours could answer on a port we failed to bind.
    const varz = await getJson<{ port?: number }>(`${monitorUrl}/varz`).catch(() => undefined);
    if (varz?.port === port) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nats-server did not answer on ${monitorUrl}/varz within ${READY_TIMEOUT_MS} ms:\n${stderrTail}`);
    }
    await delay(READY_POLL_INTERVAL_MS);
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorUrl,
    stop,
    async subscriptionCount(subject) {
      const connz = await getJson<Connz>(`${monitorUrl}/connz?subs=1&limit=${CONNZ_LIMIT}`);
      if (connz.num_connections < connz.total) throw new Error(`connz listed ${connz.num_connections} of ${connz.total} connections`);
      let count = 0;
      for (const connection of connz.connections) {
        for (const subscribed of connection.subscriptions_list ?? []) if (subscribed === subject) count++;
      }
      return count;
    },
  };
}

interface Connz {
  total: number;
  num_connections: number;
  connections: Array<{ subscriptions_list?: string[] }>;
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}
