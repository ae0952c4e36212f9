/**
 * The gateway's overload policy over real sockets, NATS and Redis: the room budget samples the same
 * chat on every gateway and never a high-priority message; a connection that falls behind loses chat
 * first (counted), gets it again once it catches up, and is closed with 4009 if it stays behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../src/shared/protocol/frames.js';
import { parsePromText } from '../../src/autoscaler/prom-text.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/latch.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { WsTestClient } from '../helpers/ws-client.js';

const FAST = { ROOMCAST_SEND_RATE_PER_SEC: '10000', ROOMCAST_SEND_BURST: '100000', ROOMCAST_FRAME_RATE_PER_SEC: '100000', ROOMCAST_FRAME_BURST: '100000' };

async function joinedClient(cluster: Cluster, gateway: number, uid: string, room: string, url = cluster.gateways[gateway]!.url): Promise<WsTestClient> {
  const client = await WsTestClient.connect(url, { token: await cluster.token(uid) });
  client.send({ t: 'join', room });
  await client.next((f) => f.t === 'joined' && f.room === room);
  return client;
}

/** Sends `count` chat messages and waits for every ack. */
async function flood(sender: WsTestClient, room: string, count: number, prefix: string, text = 'chat'): Promise<void> {
  const acksBefore = sender.frames.filter((f) => f.t === 'ack').length;
  for (let i = 0; i < count; i++) sender.send({ t: 'send', room, id: `${prefix}-${i}`, text });
  await sender.until(() => (sender.frames.filter((f) => f.t === 'ack').length - acksBefore >= count ? true : undefined), 30_000, `${count} acks`);
}

/** A TCP proxy to the gateway whose reading can be stalled: the slow network of one client. */
async function stallableProxy(cluster: Cluster): Promise<TcpProxy & { url: string }> {
  const proxy = await startTcpProxy(cluster.gateways[0]!.gateway.wsPort);
  proxies.push(proxy);
  return Object.assign(proxy, { url: `ws://127.0.0.1:${proxy.port}/ws` });
}

const proxies: TcpProxy[] = [];
afterAll(async () => {
  for (const proxy of proxies) await proxy.close();
});

async function gift(cluster: Cluster, room: string, name: string): Promise<number> {
  const response = await cluster.api('POST', `/v1/rooms/${room}/messages`, { kind: 'gift', text: name, uid: 'backend' });
  expect(response.status).toBe(201);
  return response.body.seq as number;
}

/** The value of one sample on a gateway's /metrics (0 when the counter has not been touched). */
async function metric(url: string, name: string, labels: Record<string, string>): Promise<number> {
  const samples = parsePromText(await (await fetch(url)).text());
  const sample = samples.find((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value));
  return sample?.value ?? 0;
}

describe('the room budget', () => {
  let cluster: Cluster;
  const clients: WsTestClient[] = [];
  beforeAll(async () => {
    cluster = await startCluster({ mode: 'distributed', gateways: 2, roomServices: 2, env: { ...FAST, ROOMCAST_ROOM_BUDGET_PER_SEC: '20' } });
    await cluster.createRoom('busy');
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await cluster?.stop();
  });

  it('samples the same chat on both gateways and delivers every gift', async () => {
    for (const [gateway, uid] of [[0, 'a'], [0, 'b'], [1, 'c'], [1, 'd']] as const) clients.push(await joinedClient(cluster, gateway, uid, 'busy'));
    const sender = await joinedClient(cluster, 1, 'sender', 'busy');
    clients.push(sender);
    const giftSeqs: number[] = [];
    for (let round = 0; round < 5; round++) {
      await flood(sender, 'busy', 100, `r${round}`);
      giftSeqs.push(await gift(cluster, 'busy', `gift-${round}`));
    }
    const lastGift = giftSeqs.at(-1)!;
    const viewers = clients.slice(0, 4);
    for (const viewer of viewers) {
      await viewer.until(() => (viewer.messages('busy').some((m) => m.seq === lastGift) ? true : undefined), 15_000, 'the last gift');
    }
    const seen = viewers.map((viewer) => viewer.messages('busy').map((m: RoomMessage) => m.seq));
    for (const seqs of seen) expect(seqs).toEqual(seen[0]);
    for (const seq of giftSeqs) expect(seen[0]).toContain(seq);
    const chatSeen = seen[0]!.length - giftSeqs.length;
    expect(chatSeen).toBeGreaterThan(0);
    expect(chatSeen).toBeLessThan(500);
    // Every chat message a gateway did not deliver is counted, per recipient.
    for (const gateway of cluster.gateways) {
      expect(await metric(gateway.metricsUrl, 'roomcast_gateway_dropped_deliveries_total', { reason: 'sampled', priority: '0' })).toBeGreaterThan(0);
      expect(await metric(gateway.metricsUrl, 'roomcast_gateway_dropped_deliveries_total', { reason: 'sampled', priority: '1' })).toBe(0);
    }
  });
});

describe('slow consumers', () => {
  let cluster: Cluster;
  const clients: WsTestClient[] = [];
  const bigText = 'x'.repeat(500);
  beforeAll(async () => {
    cluster = await startCluster({
      mode: 'distributed', gateways: 1, roomServices: 1,
      env: { ...FAST, ROOMCAST_ROOM_BUDGET_PER_SEC: '0', ROOMCAST_MAX_BACKPRESSURE_BYTES: '1048576', ROOMCAST_SLOW_CONSUMER_GRACE_MS: '60000' },
    });
    await cluster.createRoom('stream');
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await cluster?.stop();
  });

  /** Floods the room until the gateway has degraded a connection. */
  async function floodUntil(sender: WsTestClient, action: string, round: { n: number }): Promise<void> {
    const metricsUrl = cluster.gateways[0]!.metricsUrl;

    const before = await metric(metricsUrl, 'roomcast_gateway_slow_consumers_total', { action });
    await eventually(async () => {
      await flood(sender, 'stream', 200, `flood-${round.n++}`, bigText);
      return (await metric(metricsUrl, 'roomcast_gateway_slow_consumers_total', { action })) > before;
    }, { timeoutMs: 60_000, intervalMs: 10, what: `a slow consumer ${action}` });
  }

  it('a connection that falls behind loses only chat, counted, and gets the full stream again once it catches up', async () => {
    const healthy = await joinedClient(cluster, 0, 'healthy', 'stream');
    const proxy = await stallableProxy(cluster);
    const slow = await joinedClient(cluster, 0, 'slow', 'stream', proxy.url);
    const sender = await joinedClient(cluster, 0, 'sender', 'stream');
    clients.push(healthy, slow, sender);
    const round = { n: 0 };
    proxy.stall();
    await floodUntil(sender, 'degraded', round);
    const gifts = [await gift(cluster, 'stream', 'rose'), await gift(cluster, 'stream', 'rocket')];
    await flood(sender, 'stream', 50, 'while-degraded', bigText);
    const metricsUrl = cluster.gateways[0]!.metricsUrl;
    // Acks come before the batch is written: wait for the write that skipped the chat.
    await eventually(async () => (await metric(metricsUrl, 'roomcast_gateway_dropped_deliveries_total', { reason: 'backpressure', priority: '0' })) > 0, { what: 'chat dropped for the slow one' });
    expect(await metric(metricsUrl, 'roomcast_gateway_dropped_deliveries_total', { reason: 'backpressure', priority: '1' })).toBe(0);
    proxy.unstall();

    for (const seq of gifts) await slow.until(() => (slow.messages('stream').some((m) => m.seq === seq) ? true : undefined), 20_000, `gift ${seq}`);
    await eventually(async () => (await metric(metricsUrl, 'roomcast_gateway_slow_consumers_total', { action: 'restored' })) >= 1, { what: 'restored' });
    const after = await gift(cluster, 'stream', 'after');
    sender.send({ t: 'send', room: 'stream', id: 'chat-after', text: 'back to normal' });
    await slow.next((f) => f.t === 'messages' && (f.msgs as RoomMessage[]).some((m) => m.cid === 'chat-after'), 20_000);
    expect(slow.messages('stream').some((m) => m.seq === after)).toBe(true);
    expect(slow.closeCode).toBeNull();

    // The healthy viewer of the same room saw every seq.
    const healthySeqs = healthy.messages('stream').map((m) => m.seq);
    await healthy.until(() => (healthy.messages('stream').some((m) => m.cid === 'chat-after') ? true : undefined), 20_000, 'the last chat');
    const all = healthy.messages('stream').map((m) => m.seq);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expect(healthySeqs.length).toBeGreaterThan(0);
    // The slow one missed chat, never a gift.
    const slowSeqs = new Set(slow.messages('stream').map((m) => m.seq));
    expect(slowSeqs.size).toBeLessThan(all.length);
  });
});

describe('a connection that stays behind', () => {
  let cluster: Cluster;
  afterAll(async () => { await cluster?.stop(); });

  it('is closed with 4009 after the grace time; the others keep their stream', async () => {
    cluster = await startCluster({
      mode: 'distributed', gateways: 1, roomServices: 1,
      env: { ...FAST, ROOMCAST_ROOM_BUDGET_PER_SEC: '0', ROOMCAST_MAX_BACKPRESSURE_BYTES: '1048576', ROOMCAST_SLOW_CONSUMER_GRACE_MS: '300' },
    });
    await cluster.createRoom('stream');
    const healthy = await joinedClient(cluster, 0, 'healthy', 'stream');
    const proxy = await stallableProxy(cluster);
    const stuck = await joinedClient(cluster, 0, 'stuck', 'stream', proxy.url);
    const sender = await joinedClient(cluster, 0, 'sender', 'stream');
    proxy.stall();
    const metricsUrl = cluster.gateways[0]!.metricsUrl;
    let n = 0;
    await eventually(async () => {
      await flood(sender, 'stream', 200, `flood-${n++}`, 'y'.repeat(500));
      return (await metric(metricsUrl, 'roomcast_gateway_slow_consumers_total', { action: 'closed' })) >= 1;
    }, { timeoutMs: 60_000, intervalMs: 10, what: 'the stuck connection closed' });
    proxy.unstall();
    expect(await stuck.closed(20_000)).toBe(4009);
    expect(await metric(metricsUrl, 'roomcast_gateway_errors_total', { code: 'slow_consumer' })).toBe(1);
    sender.send({ t: 'send', room: 'stream', id: 'last', text: 'still flowing' });
    await healthy.next((f) => f.t === 'messages' && (f.msgs as RoomMessage[]).some((m) => m.cid === 'last'), 20_000);
    expect(healthy.closeCode).toBeNull();
    for (const client of [healthy, sender]) client.close();
  });
});
