/**
 * A server binary from PATH (nats-server, redis-server) started for a test file, never on the
 * standard ports a developer's own server uses; stopped (or killed with the test process). The caller
 * says how its output shows that it is ready, and on which ports.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ChildOutput } from './child-output.js';

const STOP_GRACE_MS = 5_000;

export interface ServerSpec {
  binary: string;
  /** How to install the binary, for the error when it is missing. */
  install: string;
  args: string[];
  /** Extra environment of the server process (such as the passwords its config file names). */
  env?: Record<string, string>;
  /** Resolves with the server's ports once its output says it is ready (and it is the process `pid`). */
  ready(output: ChildOutput, pid: number): Promise<number[]>;
}

export interface ServerProcess {
  ports: number[];
  stop(): Promise<void>;
  /** Ends the server at once (SIGKILL), as a crash would: no shutdown work. */
  kill(): Promise<void>;
}

export class ServerMissingError extends Error {}

/** Starts the server and waits until it is ready; stops it again when it is not. */
export async function startServer(spec: ServerSpec): Promise<ServerProcess> {
  const child = spawn(spec.binary, spec.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...spec.env } });
  const output = new ChildOutput(child, spec.binary);
  let missing: ServerMissingError | null = null;
  child.once('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') missing = new ServerMissingError(`${spec.binary} is not on PATH; install it (${spec.install}) to run these tests`, { cause: error });
  });
  const exited = once(child, 'close').catch(() => undefined);
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

  try {
    if (child.pid === undefined) {
      await exited; // after the 'error' event, which says why
      throw new Error(`${spec.binary} could not be started`);
    }
    return { ports: await spec.ready(output, child.pid), stop, kill };
  } catch (error) {
    await stop();
    throw missing ?? error;
  }
}
