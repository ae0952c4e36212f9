/**
 * A Roomcast process of its own (`node dist/src/cli.js <command>`), so a test can signal it the way
 * Kubernetes or a node failure would (SIGTERM, SIGKILL). dist/ comes from `tsc` (`npm test` runs it
 * first). Ready once `readyUrl` answers 200.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { eventually } from './latch.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const OUTPUT_TAIL_CHARS = 4000;

export interface RoomcastProcess {
  pid: number;
  /** Resolves with the exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** Sends SIGTERM and waits for the exit, as Kubernetes does on a scale-down. */
  stop(): Promise<number | null>;
  /** Ends the process at once, as a crash would: no goodbye to NATS or Redis. */
  kill(): Promise<void>;
  output(): string;
  /** Whether the process is still running (it has not exited, whatever the reason). */
  running(): boolean;
}

export async function startRoomcastProcess(command: 'gateway' | 'room-service' | 'all-in-one', env: Record<string, string>, readyUrl: string): Promise<RoomcastProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test builds first)`);
  const child: ChildProcess = spawn(process.execPath, [CLI, command], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (chunk: string) => { tail = (tail + chunk).slice(-OUTPUT_TAIL_CHARS); };
  child.stdout!.setEncoding('utf8').on('data', keep);
  child.stderr!.setEncoding('utf8').on('data', keep);
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const code = await exited;
    process.removeListener('exit', killOnExit);
    return code;
  };
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`${command} exited with ${child.exitCode}`);
      return (await fetch(readyUrl).catch(() => null))?.ok === true;
    }, { timeoutMs: 15_000, what: `${command} process ready` });
  } catch (error) {
    await end('SIGKILL');
    throw new Error(`the ${command} process did not start: ${String(error)}\n${tail}`);
  }
  return {
    pid: child.pid!, exited, output: () => tail,
    running: () => child.exitCode === null && child.signalCode === null,
    stop: () => end('SIGTERM'),
    kill: async () => { await end('SIGKILL'); },
  };
}
