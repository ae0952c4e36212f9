/**
 * The SDK's private and group chat against the real topology, distributed (NATS, Redis, two
 * gateways) and embedded (all-in-one): sends that settle once stored, each message delivered once,
 * automatic acknowledgement, automatic sync on connect (inbox and groups). Gap detection and the
 * device policy are in private-chat.test.ts.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoomcastClient, type WebSocketConstructor } from '../../src/client/roomcast-client.js';
import type { GroupMessage, PrivateMessage } from '../../src/shared/protocol/chat-frames.js';
import { silentLogger } from '../../src/shared/log.js';
import { connectRedis, type RedisConnection } from '../../src/shared/store/redis-client.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually, Latch } from '../helpers/latch.js';
import { WsTestClient } from '../helpers/ws-client.js';

describe.each(['distributed', 'embedded'] as const)('chat with the SDK (%s)', (mode) => {
  let cluster: Cluster;
  let redis: RedisConnection | null = null;
  const clients: RoomcastClient[] = [];

  beforeAll(async () => {
    cluster = await startCluster({
      mode, gateways: 2, roomServices: 2,
      env: {
        // Probes of a device's cursor log in with the same device type: they must not replace the client.
        ROOMCAST_DEVICE_POLICY: 'many',
        // The group test adds members as a user does and expects them to be members at once.
        ROOMCAST_GROUP_CREATE: 'users', ROOMCAST_GROUP_INVITES: 'direct',
        ROOMCAST_CHAT_RATE_PER_SEC: '100000', ROOMCAST_CHAT_BURST: '100000', ROOMCAST_FRAME_RATE_PER_SEC: '100000', ROOMCAST_FRAME_BURST: '100000' },
    });
    if (cluster.redisUrl) redis = await connectRedis(cluster.redisUrl, silentLogger);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await redis?.quit();
    await cluster?.stop();
  });

  async function client(uid: string, gateway = 0, device = 'web'): Promise<RoomcastClient> {
    const c = new RoomcastClient({
      url: cluster.gateways[gateway % cluster.gateways.length]!.url, token: await cluster.token(uid, 'viewer', { device }),
      WebSocket: WebSocket as unknown as WebSocketConstructor, requestTimeoutMs: 5000,
    });
    clients.push(c);
    return c;
  }

  /** The server's cursor of a device, as a fresh login push of a raw connection reports it. */
  async function serverCursor(uid: string, device: string): Promise<number> {
    const probe = await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token(uid, 'viewer', { device: `${device}` }) });
    const login = await probe.next((f) => f.t === 'inbox' && f.cursor !== undefined);
    probe.close();
    return login.cursor as number;
  }

  it('with the device policy "many", a second login of the same device type replaces nothing', async () => {
    const first = await client('kate', 0, 'ios');
    const second = await client('kate', 1, 'ios');
    await first.connect();
    await second.connect();
    const sender = await client('liam', 0);
    await sender.connect();
    const both = new Latch(2, 'both devices');
    for (const c of [first, second]) c.chat.on('private', both.countDown.bind(both, 1));
    await sender.chat.sendPrivate('kate', 'to both');
    await both.wait();
    expect([first.state, second.state]).toEqual(['open', 'open']);
  });

  it('sends settle once stored; the recipient gets each message once and acknowledges it', async () => {
    const alice = await client('alice', 0);
    const bob = await client('bob', 1);
    const got: PrivateMessage[] = [];
    const latch = new Latch(3, 'three messages');
    bob.chat.on('private', (m) => { got.push(m); latch.countDown(); });
    await Promise.all([alice.connect(), bob.connect()]);
    const sent = [];
    for (const text of ['one', 'two', 'three']) sent.push(await alice.chat.sendPrivate('bob', text));
    expect(sent.map((s) => s.seq)).toEqual([1, 2, 3]);
    await latch.wait();
    expect(got.map((m) => m.text)).toEqual(['one', 'two', 'three']);
    // A retried id answers the same message, and bob does not see it twice.
    const again = await alice.chat.sendPrivate('bob', 'one', { id: sent[0]!.id });
    expect(again).toMatchObject({ mid: sent[0]!.mid, duplicate: true });
    await eventually(() => bob.chat.inboxCursor === 3, { what: 'bob processed three' });
    await eventually(async () => (await serverCursor('bob', 'web')) === 3, { what: 'the server cursor at 3' });
    expect(got).toHaveLength(3);
  });

  it('a client that connects after 250 messages gets each once, in pages, and acknowledges them all', async () => {
    const sender = await client('carol', 0);
    await sender.connect();
    await Promise.all(Array.from({ length: 250 }, (_, i) => sender.chat.sendPrivate('dave', `m${i}`)));
    const dave = await client('dave', 1);
    const got = new Map<string, number>();
    const latch = new Latch(250, 'all 250');
    dave.chat.on('private', (m) => { got.set(m.mid, (got.get(m.mid) ?? 0) + 1); latch.countDown(); });
    await dave.connect();
    await latch.wait(20_000);
    expect(got.size).toBe(250);
    expect([...got.values()].every((count) => count === 1)).toBe(true);
    await eventually(() => dave.chat.inboxCursor === 250, { what: 'dave processed 250' });
    await eventually(async () => (await serverCursor('dave', 'web')) === 250, { what: 'the server cursor at 250' });
  });

  it('groups: members get messages pushed once; an offline member syncs on connect', async () => {
    const owner = await client('gina', 0);
    const online = await client('hank', 1);
    await Promise.all([owner.connect(), online.connect()]);
    expect(await owner.chat.createGroup('team', ['hank', 'ivy'])).toMatchObject({ members: 3, role: 'owner' });
    const pushed: GroupMessage[] = [];
    const latch = new Latch(2, 'two group messages');
    online.chat.on('group', (m) => { pushed.push(m); latch.countDown(); });
    await owner.chat.sendGroup('team', 'hello team');
    await owner.chat.sendGroup('team', 'second');
    await latch.wait();
    expect(pushed.map((m) => [m.seq, m.text])).toEqual([[1, 'hello team'], [2, 'second']]);

    const ivy = await client('ivy', 0);
    const synced: GroupMessage[] = [];
    const ivyLatch = new Latch(2, 'ivy syncs two');
    ivy.chat.on('group', (m) => { synced.push(m); ivyLatch.countDown(); });
    await ivy.connect();
    await ivyLatch.wait();
    expect(synced.map((m) => m.text)).toEqual(['hello team', 'second']);
    if (redis) await eventually(async () => (await redis!.hget('rc:group:{team}:cursor', 'ivy')) === '2', { what: 'ivy acknowledged 2' });
    const convs = await ivy.chat.conversations();
    await eventually(async () => (await ivy.chat.conversations()).some((c) => c.group === 'team' && c.unread === 0), { what: 'nothing unread' });
    expect(convs.some((c) => c.group === 'team')).toBe(true);
  });
});
