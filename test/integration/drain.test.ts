/**
 * Draining, dispatch and rebalancing on the real topology, each scenario on a topology of its own:
 * - a scale-down: a gateway process with 1,000 connections in a busy room gets SIGTERM; every client
 *   (the SDK, dispatched by the room service) moves to the other gateway and ends with every seq of
 *   the room and every private message sent to it, none missing and none twice;
 * - a scale-up: a gateway holds 1,000 connections, a second one starts, and the hot one sheds part
 *   of its load to it.
 * Everything waits for events (log lines, the registry's reports, the clients' own state) with
 * generous timeouts, so a busy machine only makes it slower.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RoomcastClient, type WebSocketConstructor } from '../../src/client/roomcast-client.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { signToken } from '../../src/shared/auth.js';
import type { WelcomeFrame } from '../../src/shared/protocol/frames.js';
import { startCluster, TEST_SECRET, type Cluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/latch.js';
import { startRoomcastProcess, type RoomcastProcess } from '../helpers/roomcast-process.js';

const VIEWERS = 1000;
const ROOM = 'stage';
/** Viewers that also get private messages while the gateway drains. */
const PRIVATE_RECIPIENTS = 50;
/**
 * The drain sends its 10 waves over 80% of this and leaves the rest for the last wave to arrive: long
 * enough that no wave has to be cut off (1012) while a busy machine moves the clients slowly.
 */
const DRAIN_MS = 20_000;
/** The backend publishes a room message and a private message this often while the gateway drains. */
const PUBLISH_INTERVAL_MS = 100;
/**
 * Load reports come this often (5 s by default), so the registry's report is waited for briefly; the
 * registry forgets a gateway whose report is half an interval late (1 s), beyond an event-loop stall
 * of a busy test process. Shedding waits 5 s plus three reports between rounds.
 */
const REGISTRY_HEARTBEAT_MS = 2000;
/**
 * The hot gateway asks this share of its excess over the mean to move. From 1,000 against 0 that is
 * 400, which leaves 600 against 400: inside the imbalance that triggers a round (20% above the
 * mean), so one round is all there is, however long the clients take to arrive.
 */
const SHED_FRACTION = 0.8;
const MOVED = 400;
/** Generous, for 1,000 clients moving on a busy machine; a healthy run takes a fraction of it. */
const SCENARIO_TIMEOUT_MS = 180_000;
const SETUP_TIMEOUT_MS = 60_000;

const clusterEnv = {
  ROOMCAST_DRAIN_MS: String(DRAIN_MS), ROOMCAST_REGISTRY_HEARTBEAT_MS: String(REGISTRY_HEARTBEAT_MS),
  ROOMCAST_SEND_RATE_PER_SEC: '1000', ROOMCAST_SEND_BURST: '1000',
};

/** SDK clients that find their gateway through the room service's dispatch, as an app would. */
function dispatchedClients(cluster: Cluster, count: number): Array<{ uid: string; client: RoomcastClient }> {
  return Array.from({ length: count }, (_, i) => {
    const uid = `viewer-${i}`;
    const client = new RoomcastClient({
      // Never answers: every connection goes where dispatch says.
      url: 'ws://127.0.0.1:1/ws', dispatchUrl: `${cluster.apiUrl}/v1/gateway`, WebSocket: WebSocket as unknown as WebSocketConstructor,
      token: () => signToken({ uid, role: 'viewer', ttlSeconds: 600 }, { secret: TEST_SECRET }),
      reconnect: { baseMs: 100, maxMs: 1000 },
    });
    return { uid, client };
  });
}

/** Connects and joins ROOM, a hundred at a time. */
async function connectAndJoin(clients: readonly RoomcastClient[]): Promise<void> {
  for (let i = 0; i < clients.length; i += 100) {
    await Promise.all(clients.slice(i, i + 100).map(async (client) => { await client.connect(); await client.join(ROOM); }));
  }
}

/** A backend's POST; the answer's body. */
async function post(cluster: Cluster, path: string, body: Record<string, unknown>): Promise<{ seq?: number }> {
  const response = await cluster.api('POST', path, body);
  expect(response.status).toBe(201);
  return response.body;
}

/** Waits until the registry reports `gatewayId` with exactly `connections`. */
async function registryReports(cluster: Cluster, gatewayId: string, connections: number): Promise<void> {
  await eventually(
    async () => cluster.registry.liveGateways().some((g) => g.gatewayId === gatewayId && g.connections === connections),
    { timeoutMs: 30_000, what: `the registry to report ${connections} connections on ${gatewayId}` },
  );
}

describe('a scale-down', () => {
  let cluster: Cluster;
  let draining: RoomcastProcess;
  let clients: RoomcastClient[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ mode: 'distributed', gateways: 0, roomServices: 1, env: clusterEnv });
    draining = await startRoomcastProcess('gateway', { ...cluster.processEnv(), ROOMCAST_GATEWAY_ID: 'gw-old' });
    await cluster.createRoom(ROOM);
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    for (const client of clients) client.close();
    await draining?.kill();
    await cluster?.stop();
  });

  it('moves every client of a draining gateway to the other one without a missing seq', async () => {
    const viewers = dispatchedClients(cluster, VIEWERS);
    clients = viewers.map(({ client }) => client);
    const received = new Map<RoomcastClient, number[]>();
    const privateReceived = new Map<string, string[]>();
    const welcomes = new Map<RoomcastClient, WelcomeFrame>();
    const gaps: unknown[] = [];
    for (const { uid, client } of viewers) {
      received.set(client, []);
      client.on('message', (_room, message) => received.get(client)!.push(message.seq));
      client.on('connected', (welcome) => welcomes.set(client, welcome));
      client.on('gap', (_room, gap) => gaps.push(gap));
      client.chat.on('private', (message) => privateReceived.set(uid, [...(privateReceived.get(uid) ?? []), message.cid]));
    }
    // Only the old gateway is alive: dispatch sends everyone there.
    await connectAndJoin(clients);
    expect(new Set([...welcomes.values()].map((welcome) => welcome.session.split('-').slice(0, 2).join('-')))).toEqual(new Set(['gw-old']));

    const staying: Gateway = (await cluster.addGateway('gw-new')).gateway;

    // A busy room, and private messages: a backend publishes all through the drain.
    const privateSent = new Map<string, string[]>();
    let published = 0;
    let lastSeq = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        lastSeq = (await post(cluster, `/v1/rooms/${ROOM}/messages`, { kind: 'system', text: `tick ${published}`, id: `tick-${published}` })).seq!;
        const to = `viewer-${published % PRIVATE_RECIPIENTS}`;
        const id = `pm-${published}`;
        await post(cluster, '/v1/private-messages', { from: 'ops', to, id, text: `private ${published}` });
        privateSent.set(to, [...(privateSent.get(to) ?? []), id]);
        published++;
        await new Promise((resolve) => setTimeout(resolve, PUBLISH_INTERVAL_MS));
      }
    })();

    await eventually(() => published >= 10, { timeoutMs: 30_000, what: 'the first messages' });
    expect(await draining.stop()).toBe(0);
    publishing = false;
    // Every client left on a `reconnect` frame before the drain ran out: none had to be cut off (1012).
    expect(await draining.logged('drained')).toMatchObject({ remaining: 0 });
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
  }, SCENARIO_TIMEOUT_MS);
});

describe('a scale-up', () => {
  let cluster: Cluster;
  let hot: Gateway;
  let clients: RoomcastClient[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ mode: 'distributed', gateways: 0, roomServices: 1, env: clusterEnv });
    hot = (await cluster.addGateway('gw-hot', { ROOMCAST_SHED_FRACTION: String(SHED_FRACTION), ROOMCAST_REBALANCE_INTERVAL_MS: '1000' })).gateway;
    await cluster.createRoom(ROOM);
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    for (const client of clients) client.close();
    await cluster?.stop();
  });

  it('the hot gateway moves part of its load to the new one, and every client stays in its room', async () => {
    clients = dispatchedClients(cluster, VIEWERS).map(({ client }) => client);
    await connectAndJoin(clients);
    expect(hot.connectionCount).toBe(VIEWERS);
    // Dispatch keeps the movers away from the hot gateway only once the registry knows its load.
    await registryReports(cluster, 'gw-hot', VIEWERS);
    const added = (await cluster.addGateway('gw-third')).gateway;
    // gw-hot holds 1,000 and gw-third none: the mean is 500, and 80% of the excess moves, once.
    await eventually(() => added.connectionCount === MOVED && hot.connectionCount === VIEWERS - MOVED, {
      timeoutMs: 60_000, what: `${MOVED} clients on the new gateway`,
    });
    await eventually(() => clients.every((client) => client.state === 'open'), { timeoutMs: 30_000, what: 'every client connected' });
    const { seq } = await post(cluster, `/v1/rooms/${ROOM}/messages`, { kind: 'system', text: 'after the move' });
    await eventually(() => clients.every((client) => client.lastSeq(ROOM) === seq), { timeoutMs: 30_000, what: 'everyone got the message after the move' });
  }, SCENARIO_TIMEOUT_MS);
});
