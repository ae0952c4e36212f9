/**
 * A room service as its own operating-system process (`node dist/src/cli.js room-service`), so a
 * test can kill it the way a node failure would (SIGKILL). dist/ comes from `tsc` (`npm test` runs it
 * first). Ready once its HTTP API answers /readyz.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { eventually } from './latch.js';
import { freePort } from './free-port.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const OUTPUT_TAIL_CHARS = 4000;

export interface RoomServiceProcess {
  pid: number;
  apiUrl: string;
  /** Ends the process at once, as a crash would: no goodbye to NATS or Redis. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRoomServiceProcess(env: Record<string, string>): Promise<RoomServiceProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [CLI, 'room-service'], {
    env: { PATH: process.env.PATH ?? '', ...env, ROOMCAST_API_HOST: '127.0.0.1', ROOMCAST_API_PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderrTail = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderrTail = (stderrTail + chunk).slice(-OUTPUT_TAIL_CHARS); });
  const exited = once(child, 'exit').catch(() => undefined);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const apiUrl = `http://127.0.0.1:${port}`;
  const end = async (signal: NodeJS.Signals) => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await exited;
  };
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`room service exited with ${child.exitCode}: ${stderrTail}`);
      return (await fetch(`${apiUrl}/readyz`)).ok;
    }, { timeoutMs: 15_000, what: 'room service process ready' });
  } catch (error) {
    await end('SIGKILL');
    throw new Error(`the room service process did not start: ${String(error)}\n${stderrTail}`);
  }
  return { pid: child.pid!, apiUrl, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') };
}
