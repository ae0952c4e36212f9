/**
 * Redis's own CPU per room message appended by the room store (the append script: checks, seq,
 * history, dedup, rate bucket) on a redis-server of its own: one message per call, and a gateway's
 * batch of 15 spread over many rooms (one message per room), over 3 rooms and in one room. Every
 * room's history is full beforehand, so each append trims it as in a room that has been live for a
 * while. Also from INFO commandstats: the time spent inside the script (Redis's CPU without the
 * network and the event loop; steadier on a busy machine) and the commands it runs, per message.
 * Needs `npm run build` and redis-server on the PATH: `node bench/redis-append-cost.mjs`
 * (bench/README.md, "What a unit of work costs here").
 */
import { RedisRoomStore } from '../dist/src/shared/store/redis-room-store.js';
import { startScratchRedis } from './lib/scratch-redis.mjs';

const ROOMS = 500;
const USERS_PER_ROOM = 20;
const MESSAGES = 20_000;
const HISTORY_LIMIT = 1000;
const SCENARIOS = [
  { name: 'one message per call', batch: 1, rooms: ROOMS },
  { name: 'batches of 15 over 500 rooms', batch: 15, rooms: ROOMS },
  { name: 'batches of 15 over 3 rooms', batch: 15, rooms: 3 },
  { name: 'batches of 15 in 1 room', batch: 15, rooms: 1 },
];

const scratch = await startScratchRedis();
const { redis } = scratch;
try {
  const store = new RedisRoomStore({ redis, limits: { historyLimit: HISTORY_LIMIT, dedupTtlMs: 120_000, roomIdleTtlMs: 7 * 24 * 3600 * 1000 } });
  const nowMs = Date.now();
  const text = 'x'.repeat(48);
  for (let room = 0; room < ROOMS; room++) {
    await store.createRoom(`room${room}`, { slowModeMs: 0 }, nowMs);
    await store.append({ room: `room${room}`, uid: 'filler', kind: 'chat', text, nowMs });
    const record = await redis.lindexBuffer(`rc:room:{room${room}}:hist`, 0);
    await redis.rpush(`rc:room:{room${room}}:hist`, ...Array(HISTORY_LIMIT - 1).fill(record));
    await redis.set(`rc:room:{room${room}}:seq`, HISTORY_LIMIT);
  }
  /** Since the last CONFIG RESETSTAT: µs inside script calls, and the commands the scripts ran. */
  const scriptStats = async () => {
    let scriptUs = 0, commands = 0;
    for (const [, command, calls, us] of (await redis.info('commandstats')).matchAll(/cmdstat_([\w|]+):calls=(\d+),usec=(\d+)/g)) {
      if (command === 'evalsha' || command === 'eval') scriptUs += Number(us);
      else if (command !== 'info' && !command.startsWith('config')) commands += Number(calls);
    }
    return { scriptUs, commands };
  };
  for (const { name, batch, rooms } of SCENARIOS) {
    await redis.config('RESETSTAT');
    const before = await scratch.cpuUs();
    for (let call = 0; call < MESSAGES / batch; call++) {
      await store.appendBatch(Array.from({ length: batch }, (_, i) => {
        const n = call * batch + i;
        const room = n % rooms;
        return {
          room: `room${room}`, uid: `user${room}-${Math.floor(n / rooms) % USERS_PER_ROOM}`, kind: 'chat', text, cid: `${name}-${n}`,
          nowMs: nowMs + call, checks: { rateLimit: { ratePerSec: 1000, burst: 1000 }, moderated: true },
        };
      }));
    }
    const usPerMessage = ((await scratch.cpuUs()) - before) / MESSAGES;
    const { scriptUs, commands } = await scriptStats();
    console.log(`${name}: Redis CPU ${usPerMessage.toFixed(1)} µs per message (${(scriptUs / MESSAGES).toFixed(1)} µs in the script), ${(commands / MESSAGES).toFixed(2)} commands per message`);
  }
} finally {
  scratch.stop();
}
