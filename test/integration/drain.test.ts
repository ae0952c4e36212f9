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
import type { Gateway } from '../../src/gateway/gateway.js';
import { signToken } from '../../src/shared/auth.js';
import type { WelcomeFrame } from '../../src/shared/protocol/frames.js';
import { startCluster, TEST_SECRET, type Cluster } from '../helpers/cluster.js';
import { freePort } from '../helpers/free-port.js';
import { eventually } from '../helpers/latch.js';
import { startRoomcastProcess, type RoomcastProcess } from '../helpers/roomcast-process.js';

const VIEWERS = 1000;
const ROOM = 'stage';
const DRAIN_MS = 4000;
/** Viewers that also get private messages while the gateway drains. */
const PRIVATE_RECIPIENTS = 50;

let cluster: Cluster;
let draining: RoomcastProcess;
let staying: Gateway;
let third: Gateway;
const clients: RoomcastClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 0, roomServices: 1,
    env: { ROOMCAST_DRAIN_MS: String(DRAIN_MS), ROOMCAST_SEND_RATE_PER_SEC: '1000', ROOMCAST_SEND_BURST: '1000' },
  });
  const [wsPort, httpPort] = [await freePort(), await freePort()];
  draining = await startRoomcastProcess('gateway', {
    ...cluster.processEnv(), ROOMCAST_GATEWAY_ID: 'gw-old', ROOMCAST_LOG_LEVEL: 'info', ROOMCAST_WS_PORT: String(wsPort), ROOMCAST_GATEWAY_HTTP_PORT: String(httpPort),
  }, `http://127.0.0.1:${httpPort}/readyz`);
  await cluster.createRoom(ROOM);
});

afterAll(async () => {
  for (const client of clients) client.close();
  await draining?.kill();
  await cluster?.stop();
});

/** A backend's POST; the answer's body. */
async function post(path: string, body: Record<string, unknown>): Promise<{ seq?: number }> {
  const response = await cluster.api('POST', path, body);
  expect(response.status).toBe(201);
  return response.body;
}

describe('a scale-down', () => {
  it('moves every client of a draining gateway to the other one without a missing seq', async () => {
    const dispatchUrl = `${cluster.apiUrl}/v1/gateway`;
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

    staying = (await cluster.addGateway('gw-new', { ROOMCAST_SHED_FRACTION: '0.5', ROOMCAST_REBALANCE_INTERVAL_MS: '1000' })).gateway;

    // A busy room, and private messages: a backend publishes all through the drain.
    const privateSent = new Map<string, string[]>();
    let published = 0;
    let lastSeq = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        lastSeq = (await post(`/v1/rooms/${ROOM}/messages`, { kind: 'system', text: `tick ${published}`, id: `tick-${published}` })).seq!;
        const to = `viewer-${published % PRIVATE_RECIPIENTS}`;
        const id = `pm-${published}`;
        await post('/v1/private-messages', { from: 'ops', to, id, text: `private ${published}` });
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
    await eventually(async () => (await cluster.registry.liveGateways(Date.now())).some((g) => g.gatewayId === 'gw-new' && g.connections === VIEWERS), { timeoutMs: 15_000, what: 'the registry to report gw-new\'s load' });
    third = (await cluster.addGateway('gw-third')).gateway;
    // gw-new holds 1,000 and gw-third none: the mean is 500; half the excess (250) moves, once.
    await eventually(() => third.connectionCount === 250 && staying.connectionCount === 750, { timeoutMs: 30_000, what: '250 clients on the new gateway' });
    await eventually(() => clients.every((client) => client.state === 'open'), { what: 'every client connected' });
    const { seq } = await post(`/v1/rooms/${ROOM}/messages`, { kind: 'system', text: 'after the move' });
    await eventually(() => clients.every((client) => client.lastSeq(ROOM) === seq), { what: 'everyone got the message after the move' });
  });
});

