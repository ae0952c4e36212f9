/**
 * A server binary from PATH (nats-server, redis-server) started for a test file on free ports, never
 * on the standard ones a developer's own server uses; stopped (or killed with the test process).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './free-port.js';

const MAX_START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;
const READY_POLL_INTERVAL_MS = 25;
const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL_CHARS = 4_000;

export interface ServerSpec {
  binary: string;
  /** How to install the binary, for the error when it is missing. */
  install: string;
  /** Ports the developer's own server uses: never handed out. */
  reservedPorts: ReadonlySet<number>;
  portCount: number;
  /** Extra environment of the server process. */
  env?: Record<string, string>;
  /** Runs before each start attempt, e.g. to write a config file naming the ports. */
  prepare?(ports: number[]): Promise<void>;
  args(ports: number[]): string[];
  /** Whether the server on `ports` answers and is the process `pid` (not another one on a port we failed to bind). */
  ready(ports: number[], pid: number): Promise<boolean>;
}

export interface ServerProcess {
  ports: number[];
  stop(): Promise<void>;
  /** Ends the server at once (SIGKILL), as a crash would: no shutdown work. */
  kill(): Promise<void>;
}

class ServerMissingError extends Error {}

export async function startServer(spec: ServerSpec): Promise<ServerProcess> {
  let lastFailure: unknown;
  // Another process may take a free port between our check and the server's bind: try again then.
  for (let attempt = 1; attempt <= MAX_START_ATTEMPTS; attempt++) {
    try {
      const ports: number[] = [];
      while (ports.length < spec.portCount) {
        const port = await freePort();
        if (!spec.reservedPorts.has(port) && !ports.includes(port)) ports.push(port);
      }
      return await launch(spec, ports);
    } catch (error) {
      if (error instanceof ServerMissingError) throw error;
      lastFailure = error;
    }
  }
  throw new Error(`${spec.binary} did not start in ${MAX_START_ATTEMPTS} attempts`, { cause: lastFailure });
}

async function launch(spec: ServerSpec, ports: number[]): Promise<ServerProcess> {
  await spec.prepare?.(ports);
  const child = spawn(spec.binary, spec.args(ports), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...spec.env } });
  // Its last output explains a failed start (such as "Address already in use").
  let outputTail = '';
  const keepTail = (chunk: string) => { outputTail = (outputTail + chunk).slice(-OUTPUT_TAIL_CHARS); };
  child.stdout.setEncoding('utf8').on('data', keepTail);
  child.stderr.setEncoding('utf8').on('data', keepTail);
  let failure: Error | undefined;
  child.once('error', (error: NodeJS.ErrnoException) => {
    failure = error.code === 'ENOENT' ? new ServerMissingError(`${spec.binary} is not on PATH; install it (${spec.install}) to run these tests`, { cause: error }) : error;
  });
  const exited = once(child, 'exit').catch(() => undefined);
  child.once('exit', (code, signal) => {
    failure ??= new Error(`${spec.binary} exited (${code ?? signal}) before it was ready:\n${outputTail}`);
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

  const kill = async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    child.kill('SIGKILL');
    await exited;
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (failure) {
      await stop();
      throw failure;
    }
    if (child.pid !== undefined && (await spec.ready(ports, child.pid).catch(() => false))) return { ports, stop, kill };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${spec.binary} did not answer on ports ${ports.join(', ')} within ${READY_TIMEOUT_MS} ms:\n${outputTail}`);
    }
    await delay(READY_POLL_INTERVAL_MS);
  }
}
