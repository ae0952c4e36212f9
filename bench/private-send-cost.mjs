/**
 * What a private message costs the room service and Redis on one node, without the gateway and NATS:
 * the real ChatService over the real RedisInboxStore and RedisSessionStore on a redis-server of its
 * own, routing on a MemoryBus to one gateway where every user is online. Sends go one at a time (a
 * room service at a moderate rate) and 16 at a time (under load, where auto-pipelining shares a
 * write); the online lookup alone is measured too (it goes out together with the send, so its figure
 * 16 at a time is nearer what it adds to a send). Prints CPU
 * time per message: this process's (process.cpuUsage) and Redis's (INFO cpu), with Redis's script calls
 * and commands per message (INFO commandstats and stats; the commands include those scripts ran). Needs `npm run build`
 * and redis-server on the PATH: `node bench/private-send-cost.mjs` (bench/README.md, "What a unit of
 * work costs here").
 */
import { ChatRouting } from '../dist/src/room-service/chat-routing.js';
import { ChatService } from '../dist/src/room-service/chat-service.js';
import { RecipientRouter } from '../dist/src/room-service/recipient-router.js';
import { MemoryBus } from '../dist/src/shared/bus/memory-bus.js';
import { FixedGatewayDirectory } from '../dist/src/shared/fleet/gateway-directory.js';
import { silentLogger } from '../dist/src/shared/log.js';
import { MetricsRegistry, RoomServiceMetrics } from '../dist/src/shared/metrics.js';
import { subjects } from '../dist/src/shared/protocol/bus-messages.js';
import { RedisInboxStore } from '../dist/src/shared/store/redis-inbox-store.js';
import { RedisSessionStore } from '../dist/src/shared/store/redis-session-store.js';
import { startScratchRedis } from './lib/scratch-redis.mjs';

const USERS = 500;
const MESSAGES = 20_000;
const WARM_UP = 2_000;
const IN_FLIGHT = 16;
const RATE = { ratePerSec: 1_000_000, burst: 1_000_000 };

const scratch = await startScratchRedis();
const { redis } = scratch;
try {
  const clock = { now: () => Date.now() };
  const bus = new MemoryBus({ onError: (error) => { throw error; } });
  const gateways = new FixedGatewayDirectory([{ gatewayId: 'gw1', epoch: 1, url: 'ws://gw1/ws', connections: USERS, ready: true, expiresAtMs: Date.now() + 3_600_000 }]);
  const sessions = new RedisSessionStore({ redis });
  const router = new RecipientRouter({ sessions, gateways, bus });
  const metrics = new RoomServiceMetrics(new MetricsRegistry());
  const chat = new ChatService({
    inbox: new RedisInboxStore({ redis, retention: { count: 1000, maxAgeMs: 86_400_000, dedupTtlMs: 600_000 } }),
    router, routing: new ChatRouting({ router, bus, log: silentLogger, metrics }), bus, clock, log: silentLogger, metrics,
    limits: { maxTextLength: 1000, rate: RATE, syncPage: 100, loginPush: 20, historyPageMax: 100, devicePolicy: 'many' },
  });
  let pushes = 0;
  bus.subscribe(subjects.gateway('gw1'), () => { pushes++; });
  for (let user = 0; user < USERS; user++) {
    await sessions.register({ uid: `user${user}`, gatewayId: 'gw1', epoch: 1, connId: `c${user}`, device: 'web', connectedAtMs: Date.now() });
  }

  let sent = 0;
  const sendOne = () => {
    const n = sent++;
    const from = `user${n % USERS}`;
    // 7n + 1 and n never meet modulo an even USERS: the recipient is always another user.
    return chat.sendPrivate({ uid: from }, { to: `user${(n * 7 + 1) % USERS}`, id: `m${n}`, text: 'x'.repeat(48) });
  };
  const sendAll = async (count, inFlight) => {
    const workers = Array.from({ length: inFlight }, async (_, worker) => {
      for (let i = worker; i < count; i += inFlight) await sendOne();
    });
    await Promise.all(workers);
    // The settles run after the bus flush that follows the last push: let them reach Redis.
    await bus.flush();
    await new Promise((resolve) => setImmediate(resolve));
    await redis.ping();
  };
  const lookupAll = async (count, inFlight) => {
    const workers = Array.from({ length: inFlight }, async (_, worker) => {
      for (let i = worker; i < count; i += inFlight) await router.lookup([`user${i % USERS}`, `user${(i * 7 + 1) % USERS}`]);
    });
    await Promise.all(workers);
  };
  /** Redis's CPU time in µs, its script calls, and the commands it ran (those of scripts included). */
  const redisCounters = async () => {
    const info = await redis.info('all');
    const field = (prefix) => Number(new RegExp(`${prefix}([0-9.]+)`).exec(info)?.[1] ?? 0);
    return {
      cpuUs: await scratch.cpuUs(),
      scripts: field('cmdstat_evalsha:calls=') + field('cmdstat_eval:calls='),
      commands: field('total_commands_processed:'),
    };
  };
  const measure = async (label, run) => {
    const redisBefore = await redisCounters();
    const before = process.cpuUsage();
    await run();
    const own = process.cpuUsage(before);
    const redisAfter = await redisCounters();
    const roomServiceUs = (own.user + own.system) / MESSAGES;
    const redisUs = (redisAfter.cpuUs - redisBefore.cpuUs) / MESSAGES;
    const [scripts, commands] = ['scripts', 'commands'].map((name) => ((redisAfter[name] - redisBefore[name]) / MESSAGES).toFixed(1));
    console.log(`${label}: room service ${roomServiceUs.toFixed(1)} µs, Redis ${redisUs.toFixed(1)} µs (${scripts} script calls, ${commands} commands in all), together ${(roomServiceUs + redisUs).toFixed(1)} µs per message`);
  };

  await sendAll(WARM_UP, IN_FLIGHT);
  await measure('one send at a time', () => sendAll(MESSAGES, 1));
  await measure(`${IN_FLIGHT} sends at a time`, () => sendAll(MESSAGES, IN_FLIGHT));
  await measure('the online lookup alone, one at a time', () => lookupAll(MESSAGES, 1));
  await measure(`the online lookup alone, ${IN_FLIGHT} at a time`, () => lookupAll(MESSAGES, IN_FLIGHT));
  const outboxLeft = (await redis.keys('rc:outbox:*')).length;
  console.log(`pushes: ${pushes} for ${sent} sends; outbox keys left: ${outboxLeft}`);
} finally {
  scratch.stop();
}
