/**
 * Redis's own CPU per room message appended by the room store (the append script: checks, seq,
 * history, dedup, rate bucket), one message per call and in a gateway's batch of 15, on a
 * redis-server of its own. Needs `npm run build` and redis-server on the PATH:
 * `node bench/redis-append-cost.mjs` (bench/README.md, "What a unit of work costs here").
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { RedisRoomStore } from '../dist/src/shared/store/redis-room-store.js';
import { freePort } from './lib/processes.mjs';

const ROOMS = 500;
const MESSAGES = 20_000;

const port = await freePort();
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
const redis = new Redis({ port, enableAutoPipelining: true, retryStrategy: (attempt) => (attempt < 50 ? 100 : null) });
try {
  const store = new RedisRoomStore({ redis, limits: { historyLimit: 1000, dedupTtlMs: 120_000, roomIdleTtlMs: 7 * 24 * 3600 * 1000 } });
  const nowMs = Date.now();
  for (let room = 0; room < ROOMS; room++) await store.createRoom(`room${room}`, { slowModeMs: 0 }, nowMs);
  const redisCpuS = async () => {
    const info = await redis.info('cpu');
    const field = (name) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)[1]);
    return field('used_cpu_sys') + field('used_cpu_user');
  };
  for (const batch of [1, 15]) {
    const before = await redisCpuS();
    for (let call = 0; call < MESSAGES / batch; call++) {
      await store.appendBatch(Array.from({ length: batch }, (_, i) => ({
        room: `room${(call * batch + i) % ROOMS}`, uid: `user${i}`, kind: 'chat', text: 'x'.repeat(48), cid: `b${batch}-${call}-${i}`,
        nowMs: nowMs + call, checks: { rateLimit: { ratePerSec: 1000, burst: 1000 }, moderated: true },
      })));
    }
    const usPerMessage = ((await redisCpuS()) - before) * 1e6 / MESSAGES;
    console.log(`${batch === 1 ? 'one message per call' : `batches of ${batch}`}: Redis CPU ${usPerMessage.toFixed(1)} µs per message`);
  }
} finally {
  redis.disconnect();
  server.kill();
}
