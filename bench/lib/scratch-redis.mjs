/**
 * A redis-server of a cost script's own (bench/*-cost.mjs): a free port, nothing persisted, an
 * auto-pipelining client, and Redis's CPU time so far (INFO cpu) to charge work to it. The server is
 * stopped with `stop()`, and also when the process exits on an error that skips the caller's `finally`.
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './processes.mjs';

export async function startScratchRedis() {
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  process.on('exit', () => server.kill());
  const redis = new Redis({ port, enableAutoPipelining: true, retryStrategy: (attempt) => (attempt < 50 ? 100 : null) });
  return {
    redis,
    /** Redis's user + system CPU time since it started, in µs. */
    async cpuUs() {
      const info = await redis.info('cpu');
      const field = (name) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)[1]);
      return (field('used_cpu_sys') + field('used_cpu_user')) * 1e6;
    },
    stop() {
      redis.disconnect();
      server.kill();
    },
  };
}
