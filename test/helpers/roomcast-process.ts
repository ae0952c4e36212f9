/**
 * A Roomcast process of its own (`node dist/src/cli.js <command>`), so a test can signal it the way
 * Kubernetes or a node failure would (SIGTERM, SIGKILL). dist/ comes from `tsc` (`npm test` runs it
 * first). Every port is 0 unless the caller says otherwise: the process binds free ones and names them
 * in its `listening` log line, so no other process can take a port between our choice and its bind.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ChildOutput, logRecord } from './child-output.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
/** Generous: a busy machine may take seconds to start Node and connect to NATS and Redis. */
const START_TIMEOUT_MS = 30_000;
const LOGGED_TIMEOUT_MS = 30_000;

/** The ports the process bound, as its `listening` line names them (only those of its role). */
export interface BoundPorts {
  wsPort?: number;
  gatewayHttpPort?: number;
  apiPort?: number;
  apiMetricsPort?: number;
}

export interface RoomcastProcess {
  pid: number;
  ports: BoundPorts;
  /** Resolves with the exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** Sends SIGTERM and waits for the exit, as Kubernetes does on a scale-down. */
  stop(): Promise<number | null>;
  /** Ends the process at once, as a crash would: no goodbye to NATS or Redis. */
  kill(): Promise<void>;
  /** The first log record with this `msg`, logged already or to come. */
  logged(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  output(): string;
  /** Whether the process is still running (it has not exited, whatever the reason). */
  running(): boolean;
}

export async function startRoomcastProcess(command: 'gateway' | 'room-service' | 'all-in-one', env: Record<string, string>): Promise<RoomcastProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test builds first)`);
  const child = spawn(process.execPath, [CLI, command], {
    env: {
      PATH: process.env.PATH ?? '',
      ROOMCAST_WS_HOST: '127.0.0.1', ROOMCAST_API_HOST: '127.0.0.1',
      ROOMCAST_WS_PORT: '0', ROOMCAST_GATEWAY_HTTP_PORT: '0', ROOMCAST_API_PORT: '0', ROOMCAST_API_METRICS_PORT: '0',
      ...env,
      // The `listening` line is an info record: a quieter level would hide the ports.
      ROOMCAST_LOG_LEVEL: env.ROOMCAST_LOG_LEVEL === 'debug' ? 'debug' : 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = new ChildOutput(child, `the ${command} process`);
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const code = await exited;
    process.removeListener('exit', killOnExit);
    return code;
  };
  const logged = (msg: string, timeoutMs = LOGGED_TIMEOUT_MS) => output.waitForLine(logRecord(msg), `a "${msg}" log line`, timeoutMs);

  let listening: Record<string, unknown>;
  try {
    listening = await logged('listening', START_TIMEOUT_MS);
  } catch (error) {
    await end('SIGKILL');
    throw new Error(`the ${command} process did not start`, { cause: error });
  }
  const { wsPort, gatewayHttpPort, apiPort, apiMetricsPort } = listening as BoundPorts;
  return {
    pid: child.pid!, ports: { wsPort, gatewayHttpPort, apiPort, apiMetricsPort }, exited, logged,
    output: () => output.text(),
    running: () => child.exitCode === null && child.signalCode === null,
    stop: () => end('SIGTERM'),
    kill: async () => { await end('SIGKILL'); },
  };
}
