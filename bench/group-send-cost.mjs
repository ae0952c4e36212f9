/**
 * The room service's and Redis's CPU per group message: a 1,000-member group with 500 members online
 * (one device each, over two gateways), each message sent through the real GroupService, stored by
 * the Redis group store, its members read, looked up in the Redis online registry and routed on an
 * in-process bus, one message at a time. Then the same steps one by one (store, member read, online
 * lookup, encode and publish; a send reads the members only when the group's membership changed since
 * the room service last read them), and the gateway's own work per recipient (UserDelivery over
 * connections whose write does nothing, so the socket write is left out). Redis runs on a redis-server of its own.
 * Needs `npm run build` and redis-server on the PATH: `node bench/group-send-cost.mjs [messages]`
 * (bench/README.md, "What a unit of work costs here").
 */
import { MemoryBus } from '../dist/src/shared/bus/memory-bus.js';
import { encodeBusMessage } from '../dist/src/shared/codec/codec.js';
import { FixedGatewayDirectory } from '../dist/src/shared/fleet/gateway-directory.js';
import { PUSH_UIDS_PER_EVENT } from '../dist/src/shared/protocol/chat-bus-messages.js';
import { silentLogger } from '../dist/src/shared/log.js';
import { GatewayMetrics, MetricsRegistry, RoomServiceMetrics } from '../dist/src/shared/metrics.js';
import { RedisGroupStore } from '../dist/src/shared/store/redis-group-store.js';
import { RedisSessionStore } from '../dist/src/shared/store/redis-session-store.js';
import { ChatRouting } from '../dist/src/room-service/chat-routing.js';
import { GroupService } from '../dist/src/room-service/group-service.js';
import { LOOKUP_CHUNK, RecipientRouter } from '../dist/src/room-service/recipient-router.js';
import { UserDelivery } from '../dist/src/gateway/user-delivery.js';
import { startScratchRedis } from './lib/scratch-redis.mjs';

const MEMBERS = 1000;
const ONLINE = 500;
const GATEWAYS = ['gw-a', 'gw-b'];
const MESSAGES = Number(process.argv[2] ?? 2100);
/** Each figure is the median of this many rounds (the VM is shared: a round can be slowed by a neighbour). */
const ROUNDS = 7;
const WARMUP = 300;
const GROUP = 'bench-group';

const scratch = await startScratchRedis();
const { redis } = scratch;
const bus = new MemoryBus();
try {
  const nowMs = Date.now();
  const groups = new RedisGroupStore({ redis, limits: { count: 1000, maxAgeMs: 7 * 24 * 3600 * 1000, dedupTtlMs: 120_000, maxMembers: MEMBERS } });
  const sessions = new RedisSessionStore({ redis });
  const directory = new FixedGatewayDirectory(GATEWAYS.map((gatewayId) => ({
    gatewayId, epoch: 1, url: `ws://${gatewayId}/ws`, connections: ONLINE, ready: true, expiresAtMs: Number.MAX_SAFE_INTEGER,
  })));
  const metrics = new RoomServiceMetrics(new MetricsRegistry());
  const router = new RecipientRouter({ sessions, gateways: directory, bus });
  const routing = new ChatRouting({ router, bus, log: silentLogger, metrics });
  const service = new GroupService({
    groups, routing, blocks: { isBlocked: async () => false }, clock: { now: () => Date.now() }, metrics,
    limits: { maxTextLength: 2000, rate: { ratePerSec: 1e6, burst: 1e6 }, syncPage: 100, membersPage: 100 },
    policy: { create: 'backends', invites: 'direct' },
  });

  // Every other member is online, so the online ones are spread over the member hash.
  const uids = Array.from({ length: MEMBERS }, (_, i) => `member${i}`);
  const online = uids.filter((_, i) => i % (MEMBERS / ONLINE) === 0);
  if ((await groups.create(GROUP, uids[0], uids.slice(1), nowMs)) !== 'created') throw new Error('the bench group exists already');
  await Promise.all(online.map((uid, i) => sessions.register({
    uid, gatewayId: GATEWAYS[i % GATEWAYS.length], epoch: 1, connId: `conn-${uid}`, device: 'web', connectedAtMs: nowMs,
  })));

  // What reaches the gateways and the offline-push service, counted (not decoded) so that it costs little.
  const received = { deliver: 0, offline: 0 };
  for (const gatewayId of GATEWAYS) bus.subscribe(`gw.${gatewayId}`, () => { received.deliver++; });
  bus.subscribe('push.offline', () => { received.offline++; });

  const redisCpuUs = () => scratch.cpuUs();
  const processCpuUs = () => {
    const { user, system } = process.cpuUsage();
    return user + system;
  };
  /** Runs `step` one call after the other for `count` calls in all; CPU µs per call of this process and of Redis, medians over the rounds. */
  const measure = async (count, step) => {
    const rounds = [];
    const perRound = Math.ceil(count / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      await bus.flush();
      const redisBefore = await redisCpuUs();
      const before = processCpuUs();
      for (let i = 0; i < perRound; i++) await step();
      await bus.flush();
      const processUs = (processCpuUs() - before) / perRound;
      rounds.push({ processUs, redisUs: ((await redisCpuUs()) - redisBefore) / perRound });
    }
    const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
    return { processUs: median(rounds.map((r) => r.processUs)), redisUs: median(rounds.map((r) => r.redisUs)), calls: perRound * ROUNDS };
  };
  const line = (label, { processUs, redisUs }) =>
    console.log(`${label.padEnd(48)} room service ${processUs.toFixed(0).padStart(5)} µs   Redis ${redisUs.toFixed(0).padStart(5)} µs`);

  let nextId = 0;
  const send = () => service.send(uids[1], GROUP, `m${nextId++}`, 'x'.repeat(48), `conn-${uids[1]}`);
  await measure(WARMUP, send);
  received.deliver = 0;
  received.offline = 0;
  console.log(`group of ${MEMBERS} members, ${ONLINE} online over ${GATEWAYS.length} gateways; ${MESSAGES} messages, one at a time; ` +
    `CPU µs per call, median of ${ROUNDS} rounds`);
  const whole = await measure(MESSAGES, send);
  line('whole send (GroupService.send)', whole);
  if (received.deliver !== whole.calls * GATEWAYS.length || received.offline !== whole.calls * Math.ceil((MEMBERS - ONLINE) / PUSH_UIDS_PER_EVENT)) {
    throw new Error(`unexpected bus traffic: ${JSON.stringify(received)}`);
  }

  // The steps one by one, each as the send makes it.
  const steps = Math.max(ROUNDS * 30, MESSAGES / 4);
  line('  store (RedisGroupStore.send)', await measure(steps, () =>
    groups.send({ group: GROUP, from: uids[1], cid: `s${nextId++}`, text: 'x'.repeat(48), nowMs: Date.now(), rate: { ratePerSec: 1e6, burst: 1e6 } })));
  const readMembers = async () => {
    const members = [];
    for await (const chunk of groups.memberUids(GROUP, LOOKUP_CHUNK)) members.push(...chunk);
    return members;
  };
  line('  member read (memberUids; after a change only)', await measure(steps, readMembers));
  const members = await readMembers();
  line('  online lookup (RecipientRouter.lookup)', await measure(steps, () => router.lookup(members)));
  const known = await router.lookup(members);
  const frame = { t: 'group_msgs', group: GROUP, msgs: [{ seq: 1, mid: `${GROUP}:1`, group: GROUP, from: uids[1], text: 'x'.repeat(48), ts: nowMs, cid: 'c' }] };
  line('  encode and publish (RecipientRouter.route)', await measure(steps, () => router.route([{ to: members, frame, except: `conn-${uids[1]}` }], known)));

  // The gateway's share per recipient, without the socket write: one deliver event naming 250 uids.
  const gatewayBus = new MemoryBus();
  const delivery = new UserDelivery({ gatewayId: 'gw-a', bus: gatewayBus, log: silentLogger, metrics: new GatewayMetrics(new MetricsRegistry()), inRoom: () => true });
  delivery.start();
  const recipients = online.filter((_, i) => i % GATEWAYS.length === 0);
  let writes = 0;
  for (const uid of recipients) {
    delivery.add({ id: `conn-${uid}`, identity: { uid }, format: 'msgpack', closed: false, send: () => { writes++; return 'sent'; } });
  }
  const event = encodeBusMessage({ t: 'deliver', items: [{ to: recipients, f: new Uint8Array(120) }] });
  const gateway = await measure(steps, async () => {
    gatewayBus.publish('gw.gw-a', event);
    await gatewayBus.flush();
  });
  if (writes !== gateway.calls * recipients.length) throw new Error(`the gateway wrote ${writes} frames, not ${gateway.calls * recipients.length}`);
  console.log(`gateway, one deliver event to ${recipients.length} connections (writes left out): ${gateway.processUs.toFixed(0)} µs, ` +
    `${(gateway.processUs / recipients.length).toFixed(2)} µs per recipient`);
} finally {
  await bus.close();
  scratch.stop();
}
