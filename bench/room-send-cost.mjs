/**
 * The room service's own CPU (this process: process.cpuUsage) per room message on the write path:
 * `RoomService.sendBatch` for a gateway's batch of 15 (checks, the store's append with its Redis
 * call, one `msgs` event per room encoded and published), against a redis-server of its own and the
 * in-process bus, so neither NATS nor Redis is in the figure. Batches over 500 rooms (one message per
 * room) and in one room; each the median of 7 rounds (and their range), as other work on the machine
 * disturbs single rounds. Needs `npm run build` and redis-server on the PATH:
 * `node bench/room-send-cost.mjs` (bench/README.md, "What a unit of work costs here").
 */
import { MemoryBus } from '../dist/src/shared/bus/memory-bus.js';
import { silentLogger } from '../dist/src/shared/log.js';
import { MetricsRegistry, RoomServiceMetrics } from '../dist/src/shared/metrics.js';
import { RoomService } from '../dist/src/room-service/room-service.js';
import { RedisRoomStore } from '../dist/src/shared/store/redis-room-store.js';
import { startScratchRedis } from './lib/scratch-redis.mjs';

const ROOMS = 500;
const USERS_PER_ROOM = 20;
const BATCH = 15;
const WARM_UP_MESSAGES = 15_000;
const MESSAGES_PER_ROUND = 15_000;
const ROUNDS = 7;
const SCENARIOS = [{ name: 'batches of 15 over 500 rooms', rooms: ROOMS }, { name: 'batches of 15 in 1 room', rooms: 1 }];

const scratch = await startScratchRedis();
const { redis } = scratch;
const bus = new MemoryBus();
try {
  const store = new RedisRoomStore({ redis, limits: { historyLimit: 1000, dedupTtlMs: 120_000, roomIdleTtlMs: 7 * 24 * 3600 * 1000 } });
  const service = new RoomService({
    store, bus, router: { route: async () => {} }, clock: { now: () => Date.now() }, log: silentLogger,
    metrics: new RoomServiceMetrics(new MetricsRegistry()), viewers: () => 0,
    limits: { maxTextLength: 500, historyPageMax: 100, sendRate: { ratePerSec: 1_000_000, burst: 1_000_000 }, autoCreateRooms: false },
  });
  // A gateway's subscription to every room: the published events are delivered, as over NATS.
  bus.subscribe('room.>', () => {});
  for (let room = 0; room < ROOMS; room++) await store.createRoom(`room${room}`, { slowModeMs: 0 }, Date.now());
  const onInternalError = (error) => { throw error; };
  let sent = 0;
  const run = async (rooms, messages) => {
    for (let call = 0; call < messages / BATCH; call++) {
      const sends = Array.from({ length: BATCH }, (_, i) => {
        const n = sent++;
        const room = n % rooms;
        return { caller: { uid: `user${room}-${Math.floor(n / rooms) % USERS_PER_ROOM}`, role: 'viewer' }, room: `room${room}`, cid: `c${n}`, text: 'x'.repeat(48), kind: 'chat' };
      });
      const { results } = await service.sendBatch({ sends }, onInternalError);
      const failed = results.find((result) => !('ok' in result));
      if (failed) throw new Error(`a send failed: ${JSON.stringify(failed)}`);
    }
  };
  for (const { name, rooms } of SCENARIOS) {
    await run(rooms, WARM_UP_MESSAGES);
    const usPerMessage = [];
    for (let round = 0; round < ROUNDS; round++) {
      const before = process.cpuUsage();
      await run(rooms, MESSAGES_PER_ROUND);
      const used = process.cpuUsage(before);
      usPerMessage.push((used.user + used.system) / MESSAGES_PER_ROUND);
    }
    usPerMessage.sort((a, b) => a - b);
    const median = usPerMessage[Math.floor(ROUNDS / 2)];
    console.log(`${name}: room service CPU ${median.toFixed(1)} µs per message (rounds ${usPerMessage[0].toFixed(1)}-${usPerMessage[ROUNDS - 1].toFixed(1)})`);
  }
} finally {
  await bus.close?.();
  scratch.stop();
}
