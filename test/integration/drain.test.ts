/**
 * Draining, dispatch and rebalancing on the real topology: a gateway process with 1,000 connections
 * in a busy room gets SIGTERM; every client (the SDK, dispatched by the room service) moves to the
 * other gateway and ends with every seq of the room and every private message sent to it, none
 * missing and none twice. Then a third gateway
 * starts, and the hot one sheds part of its load to it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RoomcastClient, type WebSocketConstructor } from '../../src/client/roomcast-client.js';
import { startGateway } from '../../src/gateway/main.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { startRoomService, type RunningRoomService } from '../../src/room-service/main.js';
import { createTokenVerifier, signToken } from '../../src/shared/auth.js';
import { loadConfig } from '../../src/shared/config.js';
import { connectInfrastructure, type Infrastructure } from '../../src/shared/infrastructure.js';
import { silentLogger } from '../../src/shared/log.js';
import { MetricsRegistry } from '../../src/shared/metrics.js';
import type { WelcomeFrame } from '../../src/shared/protocol/frames.js';
import { freePort } from '../helpers/free-port.js';
import { eventually } from '../helpers/latch.js';
import { startNats, type NatsServerHandle } from '../helpers/nats-server.js';
import { startRedis, type RedisServerHandle } from '../helpers/redis-server.js';
import { startRoomcastProcess, type RoomcastProcess } from '../helpers/roomcast-process.js';
import { TEST_API_KEY, TEST_SECRET } from '../helpers/cluster.js';

const VIEWERS = 1000;
const ROOM = 'stage';
const DRAIN_MS = 4000;
/** Viewers that also get private messages while the gateway drains. */
const PRIVATE_RECIPIENTS = 50;

let nats: NatsServerHandle;
let redis: RedisServerHandle;
const infras: Infrastructure[] = [];
let roomService: RunningRoomService;
let draining: RoomcastProcess;
let staying: Gateway;
let third: Gateway | undefined;
const clients: RoomcastClient[] = [];

function env(): Record<string, string> {
  return {
    ROOMCAST_NATS_URL: nats.url, ROOMCAST_REDIS_URL: redis.url, ROOMCAST_JWT_SECRET: TEST_SECRET, ROOMCAST_API_KEYS: TEST_API_KEY,
    ROOMCAST_WS_HOST: '127.0.0.1', ROOMCAST_API_HOST: '127.0.0.1', ROOMCAST_LOG_LEVEL: 'warn', ROOMCAST_DRAIN_MS: String(DRAIN_MS),
    ROOMCAST_SEND_RATE_PER_SEC: '1000', ROOMCAST_SEND_BURST: '1000',
  };
}

async function infrastructure(role: 'gateway' | 'room-service', extra: Record<string, string>): Promise<{ config: ReturnType<typeof loadConfig>; infra: Infrastructure }> {
  const config = loadConfig(role, { ...env(), ...extra });
  const infra = await connectInfrastructure(config, role, silentLogger);
  infras.push(infra);
  return { config, infra };
}

beforeAll(async () => {
  nats = await startNats();
  redis = await startRedis();
  const service = await infrastructure('room-service', { ROOMCAST_API_PORT: '0' });
  roomService = await startRoomService(service.config, service.infra, await createTokenVerifier({ secret: TEST_SECRET }), new MetricsRegistry(), silentLogger);
  const [wsPort, httpPort] = [await freePort(), await freePort()];
  draining = await startRoomcastProcess('gateway', { ...env(), ROOMCAST_GATEWAY_ID: 'gw-old', ROOMCAST_LOG_LEVEL: 'info', ROOMCAST_WS_PORT: String(wsPort), ROOMCAST_GATEWAY_HTTP_PORT: String(httpPort) }, `http://127.0.0.1:${httpPort}/readyz`);
  const created = await fetch(`http://127.0.0.1:${roomService.apiPort}/v1/rooms/${ROOM}`, { method: 'PUT', headers: { Authorization: `Bearer ${TEST_API_KEY}` }, body: '{}' });
  expect(created.status).toBe(201);
});

afterAll(async () => {
  for (const client of clients) client.close();
  await draining?.kill();
  await staying?.stop();
  await third?.stop();
  await roomService?.stop();
  for (const infra of infras) await infra.close();
  await redis?.stop();
  await nats?.stop();
});

describe('a scale-down', () => {
  it('moves every client of a draining gateway to the other one without a missing seq', async () => {
    const dispatchUrl = `http://127.0.0.1:${roomService.apiPort}/v1/gateway`;
    const received = new Map<RoomcastClient, number[]>();
    const privateReceived = new Map<string, string[]>();
    const welcomes = new Map<RoomcastClient, WelcomeFrame>();
    const gaps: unknown[] = [];
    // Only the old gateway is alive: dispatch sends everyone there.
    for (let i = 0; i < VIEWERS; i++) {
      const uid = `viewer-${i}`;
      const client = new RoomcastClient({
        url: 'ws://127.0.0.1:1/ws', dispatchUrl, WebSocket: WebSocket as unknown as WebSocketConstructor,
        token: () => signToken({ uid, role: 'viewer', ttlSeconds: 600 }, { secret: TEST_SECRET }),
        reconnect: { baseMs: 100, maxMs: 1000 },
      });
      received.set(client, []);
      client.on('message', (_room, message) => received.get(client)!.push(message.seq));
      client.on('connected', (welcome) => welcomes.set(client, welcome));
      client.on('gap', (_room, gap) => gaps.push(gap));
      client.chat.on('private', (message) => privateReceived.set(uid, [...(privateReceived.get(uid) ?? []), message.cid]));
      clients.push(client);
    }
    for (let i = 0; i < clients.length; i += 100) {
      await Promise.all(clients.slice(i, i + 100).map(async (client) => { await client.connect(); await client.join(ROOM); }));
    }
    expect(new Set([...welcomes.values()].map((welcome) => welcome.session.split('-').slice(0, 2).join('-')))).toEqual(new Set(['gw-old']));

    staying = await inProcessGateway('gw-new', { ROOMCAST_SHED_FRACTION: '0.5', ROOMCAST_REBALANCE_INTERVAL_MS: '1000' });

    // A busy room, and private messages: a backend publishes all through the drain.
    const privateSent = new Map<string, string[]>();
    let published = 0;
    let lastSeq = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        const response = await fetch(`http://127.0.0.1:${roomService.apiPort}/v1/rooms/${ROOM}/messages`, {
          method: 'POST', headers: { Authorization: `Bearer ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ kind: 'system', text: `tick ${published}`, id: `tick-${published}` }),
        });
        expect(response.status).toBe(201);
        lastSeq = ((await response.json()) as { seq: number }).seq;
        const to = `viewer-${published % PRIVATE_RECIPIENTS}`;
        const id = `pm-${published}`;
        const sent = await fetch(`http://127.0.0.1:${roomService.apiPort}/v1/private-messages`, {
          method: 'POST', headers: { Authorization: `Bearer ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ from: 'ops', to, id, text: `private ${published}` }),
        });
        expect(sent.status).toBe(201);
        privateSent.set(to, [...(privateSent.get(to) ?? []), id]);
        published++;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();

    await eventually(() => published >= 10, { what: 'the first messages' });
    expect(await draining.stop()).toBe(0);
    publishing = false;
    // Every client left on a `reconnect` frame before the drain ran out: none had to be cut off (1012).
    const drained = draining.output().split('\n').find((line) => line.includes('"msg":"drained"'));
    expect(drained && JSON.parse(drained)).toMatchObject({ remaining: 0 });
    await publisher;

    await eventually(() => clients.every((client) => client.lastSeq(ROOM) === lastSeq), { timeoutMs: 60_000, what: 'every client caught up' });
    const expected = Array.from({ length: lastSeq }, (_, i) => i + 1);
    for (const seqs of received.values()) expect(seqs).toEqual(expected);
    expect(gaps).toEqual([]);
    // Every stored private message reached its recipient once, across the move.
    await eventually(() => [...privateSent].every(([uid, ids]) => (privateReceived.get(uid)?.length ?? 0) >= ids.length), { timeoutMs: 30_000, what: 'every private message' });
    for (const [uid, ids] of privateSent) expect([...privateReceived.get(uid)!].sort()).toEqual([...ids].sort());
    // The last wave may still be reconnecting although it already has every message.
    await eventually(() => clients.every((client) => client.state === 'open' && welcomes.get(client)!.session.startsWith('gw-new-')), { timeoutMs: 30_000, what: 'every client on the other gateway' });
    expect(staying.connectionCount).toBe(VIEWERS);
  });
});

describe('a scale-up', () => {
  it('the hot gateway moves part of its load to the new one, and every client stays in its room', async () => {
    expect(staying.connectionCount).toBe(VIEWERS);
    // Load reports are a heartbeat old: wait until the registry knows where the 1,000 are.
    await eventually(async () => (await infras[0]!.sessionStore.liveGateways(Date.now())).some((g) => g.gatewayId === 'gw-new' && g.connections === VIEWERS), { timeoutMs: 15_000, what: 'the registry to report gw-new\'s load' });
    third = await inProcessGateway('gw-third', {});
    // gw-new holds 1,000 and gw-third none: the mean is 500; half the excess (250) moves, once.
    await eventually(() => third!.connectionCount === 250 && staying.connectionCount === 750, { timeoutMs: 30_000, what: '250 clients on the new gateway' });
    await eventually(() => clients.every((client) => client.state === 'open'), { what: 'every client connected' });
    const response = await fetch(`http://127.0.0.1:${roomService.apiPort}/v1/rooms/${ROOM}/messages`, {
      method: 'POST', headers: { Authorization: `Bearer ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'system', text: 'after the move' }),
    });
    const { seq } = (await response.json()) as { seq: number };
    await eventually(() => clients.every((client) => client.lastSeq(ROOM) === seq), { what: 'everyone got the message after the move' });
  });
});

async function inProcessGateway(gatewayId: string, extra: Record<string, string>): Promise<Gateway> {
  const { config, infra } = await infrastructure('gateway', { ROOMCAST_GATEWAY_ID: gatewayId, ROOMCAST_WS_PORT: '0', ROOMCAST_GATEWAY_HTTP_PORT: '0', ...extra });
  return startGateway(config, infra, await createTokenVerifier({ secret: TEST_SECRET }), new MetricsRegistry(), silentLogger);
}
