/**
 * Gateway instances on real NATS and Redis, the gateway running as its own process so it can die as a
 * container does:
 * - a gateway restarted under the same id (a container restart keeps the pod name) takes its old run's
 *   device sessions with it: 100 users online only on the old run get their private messages as
 *   offline pushes, and their stale sessions leave Redis;
 * - dispatch stops naming a SIGKILLed gateway once its heartbeat is missed, and a gateway that stops
 *   cleanly at once (its goodbye).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NatsBus } from '../../src/shared/bus/nats-bus.js';
import { decodeBusMessage } from '../../src/shared/codec/codec.js';
import { silentLogger } from '../../src/shared/log.js';
import type { OfflinePushEvent } from '../../src/shared/protocol/chat-bus-messages.js';
import { heartbeatLifetimeMs } from '../../src/shared/protocol/fleet-messages.js';
import { connectRedis, type RedisConnection } from '../../src/shared/store/redis-client.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/latch.js';
import { startRoomcastProcess, type RoomcastProcess } from '../helpers/roomcast-process.js';
import { WsTestClient } from '../helpers/ws-client.js';

const USERS = 100;
/** Short, so the test is quick, yet with the registry's slack (half of it) above a busy machine's stalls. */
const HEARTBEAT_MS = 1000;
/** A poll of the registry, and scheduling on a busy machine, may add this much to what is measured. */
const MEASURE_SLACK_MS = 500;
const GATEWAY_ID = 'gw-restarting';

let cluster: Cluster;
let observer: NatsBus;
let redis: RedisConnection;
const pushes: OfflinePushEvent[] = [];
const processes: RoomcastProcess[] = [];
const clients: WsTestClient[] = [];

const uids = Array.from({ length: USERS }, (_, i) => `fan-${i}`);

async function startChildGateway(): Promise<RoomcastProcess> {
  const child = await startRoomcastProcess('gateway', {
    ...cluster.processEnv(), ROOMCAST_GATEWAY_ID: GATEWAY_ID, ROOMCAST_REGISTRY_HEARTBEAT_MS: String(HEARTBEAT_MS), ROOMCAST_DRAIN_MS: '0',
  });
  processes.push(child);
  return child;
}

function registered(): { epoch: number } | undefined {
  return cluster.registry.liveGateways().find((gateway) => gateway.gatewayId === GATEWAY_ID);
}

async function sendPrivate(to: string, id: string): Promise<void> {
  const answer = await cluster.api('POST', '/v1/private-messages', { from: 'backend-bot', to, id, text: `hello ${to}` });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
}

beforeAll(async () => {
  cluster = await startCluster({ mode: 'distributed', gateways: 1, roomServices: 1, env: {
    ROOMCAST_REGISTRY_HEARTBEAT_MS: String(HEARTBEAT_MS), ROOMCAST_CHAT_RATE_PER_SEC: '100000', ROOMCAST_CHAT_BURST: '100000',
  } });
  observer = await NatsBus.connect({ servers: cluster.nats!.url, name: 'observer', log: silentLogger });
  observer.subscribe('push.offline', (message) => { pushes.push(decodeBusMessage(message.data) as OfflinePushEvent); });
  await observer.flush();
  redis = await connectRedis(cluster.redisUrl!, silentLogger);
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.close();
  for (const child of processes) await child.kill();
  await redis?.quit();
  await observer?.close();
  await cluster?.stop();
});

it('drops the old run\'s sessions when a gateway restarts under the same id: its users get offline pushes', async () => {
  const first = await startChildGateway();
  const url = `ws://127.0.0.1:${first.ports.wsPort}/ws`;
  for (const uid of uids) clients.push(await WsTestClient.connect(url, { token: await cluster.token(uid) }));
  await eventually(async () => (await Promise.all(uids.map((uid) => redis.hlen(`rc:user:{${uid}}:online`)))).every((n) => n === 1), { what: 'every session registered' });
  const oldEpoch = (await eventually(registered, { what: 'the first run in the registry' }))!.epoch;

  // Online: a private message is routed to the gateway, not pushed.
  await sendPrivate(uids[0]!, 'before-restart');
  const delivered = () => clients[0]!.frames.some((frame) => frame.t === 'inbox' && (frame.msgs as Array<{ text: string }>).some((m) => m.text === `hello ${uids[0]}`));
  await eventually(delivered, { what: 'the message delivered' });
  expect(pushes).toEqual([]);

  await first.kill();
  await startChildGateway();
  await eventually(() => registered() && registered()!.epoch !== oldEpoch, { what: 'the new run in the registry' });

  for (const [i, uid] of uids.entries()) await sendPrivate(uid, `after-restart-${i}`);
  await eventually(() => new Set(pushes.flatMap((push) => push.uids)).size === USERS, { what: 'an offline push for every user' });
  expect(new Set(pushes.flatMap((push) => push.uids))).toEqual(new Set(uids));
  // The stale sessions were deleted on the way, not only ignored.
  await eventually(async () => (await Promise.all(uids.map((uid) => redis.exists(`rc:user:{${uid}}:online`)))).every((n) => n === 0), { what: 'stale sessions deleted' });
}, 120_000);

it('stops dispatching to a killed gateway once its heartbeat is missed, and to a stopped one at once', async () => {
  await eventually(registered, { what: 'the gateway in the registry' });
  const victim = processes.at(-1)!;
  const killedAtMs = Date.now();
  await victim.kill();
  await eventually(() => !registered(), { intervalMs: 5, timeoutMs: 10_000, what: 'the killed gateway out of the registry' });
  const goneAfterMs = Date.now() - killedAtMs;
  expect(goneAfterMs).toBeLessThanOrEqual(heartbeatLifetimeMs(HEARTBEAT_MS) + MEASURE_SLACK_MS);
  const answers = await Promise.all(Array.from({ length: 10 }, () => cluster.api('GET', '/v1/gateway')));
  expect(answers.map((answer) => answer.body.gatewayId)).toEqual(Array.from({ length: 10 }, () => 'gw0'));

  const stopping = await startChildGateway();
  await eventually(registered, { what: 'the gateway back in the registry' });
  await stopping.stop();
  const stoppedAtMs = Date.now();
  await eventually(() => !registered(), { intervalMs: 5, what: 'the stopped gateway out of the registry' });
  // Its goodbye arrives before the exit: far sooner than a missed heartbeat.
  expect(Date.now() - stoppedAtMs).toBeLessThan(HEARTBEAT_MS / 2);
}, 120_000);
