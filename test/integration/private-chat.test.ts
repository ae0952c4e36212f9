/**
 * Private (1:1) chat over the distributed topology: two gateways and two room-service replicas on a
 * real nats-server and redis-server, real WebSocket clients. Routing is checked by counting what a
 * test subscriber sees on every `gw.<id>` subject and on `push.offline`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RoomcastClient, type WebSocketConstructor } from '../../src/client/roomcast-client.js';
import { NatsBus } from '../../src/shared/bus/nats-bus.js';
import { decodeBusMessage } from '../../src/shared/codec/codec.js';
import { silentLogger } from '../../src/shared/log.js';
import type { DeliverEvent, OfflinePushEvent } from '../../src/shared/protocol/chat-bus-messages.js';
import type { PrivateMessage } from '../../src/shared/protocol/chat-frames.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually, Latch } from '../helpers/latch.js';
import { WsTestClient, type AnyFrame } from '../helpers/ws-client.js';

let cluster: Cluster;
let observer: NatsBus;
const routed = new Map<string, DeliverEvent[]>();
const pushes: OfflinePushEvent[] = [];
const clients: WsTestClient[] = [];
const sdkClients: RoomcastClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ mode: 'distributed', gateways: 2, roomServices: 2, env: { ROOMCAST_CHAT_BURST: '50' } });
  observer = await NatsBus.connect({ servers: cluster.nats!.url, name: 'observer', log: silentLogger });
  observer.subscribe('gw.*', (message) => {
    const list = routed.get(message.subject) ?? [];
    const event = decodeBusMessage(message.data) as DeliverEvent;
    if (event.t === 'deliver') list.push(event);
    routed.set(message.subject, list);
  });
  observer.subscribe('push.offline', (message) => { pushes.push(decodeBusMessage(message.data) as OfflinePushEvent); });
  await observer.flush();
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const c of sdkClients) c.close();
  await observer?.close();
  await cluster?.stop();
});

/** A client of `uid` with device type `device` on gateway `gateway`, once its login push has arrived. */
async function connect(uid: string, device: string, gateway: number, format: 'msgpack' | 'json' = 'msgpack'): Promise<WsTestClient> {
  const c = await WsTestClient.connect(cluster.gateways[gateway]!.url, { token: await cluster.token(uid, 'viewer', { device }), format });
  clients.push(c);
  await c.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
  return c;
}

/** Every private message pushed to this client, in arrival order. */
function pushed(c: WsTestClient): PrivateMessage[] {
  return c.frames.filter((f) => f.t === 'inbox').flatMap((f) => f.msgs as PrivateMessage[]);
}

async function sendPm(c: WsTestClient, to: string, id: string, text: string): Promise<AnyFrame> {
  const from = c.frames.length;
  c.send({ t: 'pm', to, id, text });
  return c.next((f) => (f.t === 'sent' || f.t === 'error') && f.id === id, 10_000, from);
}

const count = (subject: string) => (routed.get(subject) ?? []).length;

describe('private messages', () => {
  it('reach every device of the recipient on every gateway once, and the sender\'s other devices', async () => {
    const bobPhone = await connect('bob', 'ios', 0);
    const bobLaptop = await connect('bob', 'web', 1, 'json');
    const alice = await connect('alice', 'web', 0);
    const alicePhone = await connect('alice', 'ios', 1);

    const sent = await sendPm(alice, 'bob', 'hello-1', 'hello bob');
    expect(sent).toMatchObject({ t: 'sent', id: 'hello-1', seq: 1, to: 'bob' });
    const mid = sent.mid as string;
    for (const c of [bobPhone, bobLaptop, alicePhone]) await c.next((f) => f.t === 'inbox' && (f.msgs as PrivateMessage[]).some((m) => m.mid === mid));
    // A later message arriving everywhere bounds the wait for late duplicates of the first.
    const later = await sendPm(alice, 'bob', 'hello-2', 'second');
    for (const c of [bobPhone, bobLaptop, alicePhone]) await c.next((f) => f.t === 'inbox' && (f.msgs as PrivateMessage[]).some((m) => m.mid === later.mid));

    for (const c of [bobPhone, bobLaptop]) {
      expect(pushed(c).filter((m) => m.mid === mid)).toEqual([expect.objectContaining({ seq: 1, cseq: 1, from: 'alice', to: 'bob', text: 'hello bob', cid: 'hello-1' })]);
    }
    expect(pushed(alicePhone).filter((m) => m.mid === mid)).toEqual([expect.objectContaining({ seq: 1, from: 'alice', text: 'hello bob' })]);
    // The sending connection has its `sent`; it gets no push of its own message.
    expect(pushed(alice).filter((m) => m.mid === mid)).toEqual([]);
  });

  it('stores a retried client message id once and answers the same message', async () => {
    const carol = await connect('carol', 'web', 0);
    const dave = await connect('dave', 'web', 1);
    const first = await sendPm(carol, 'dave', 'retry-me', 'once only');
    const second = await sendPm(carol, 'dave', 'retry-me', 'once only');
    expect(second).toMatchObject({ t: 'sent', mid: first.mid, seq: first.seq, duplicate: true });
    dave.send({ t: 'sync', after: 0 });
    const page = await dave.next((f) => f.t === 'synced');
    expect((page.msgs as PrivateMessage[]).map((m) => m.cid)).toEqual(['retry-me']);
    expect(page.lastSeq).toBe(1);
  });

  it('publishes only to the gateways where a recipient is online, once each', async () => {
    const erin = await connect('erin', 'web', 1);
    const frank = await connect('frank', 'web', 1);
    const before = { gw0: count('gw.gw0'), gw1: count('gw.gw1') };
    const sent = await sendPm(frank, 'erin', 'route-1', 'only gw1');
    await erin.next((f) => f.t === 'inbox' && (f.msgs as PrivateMessage[]).some((m) => m.mid === sent.mid));
    await eventually(() => count('gw.gw1') === before.gw1 + 1, { what: 'one publish to gw1' });
    const last = routed.get('gw.gw1')!.at(-1)!;
    expect(last.items.map((item) => item.to)).toEqual([['erin']]);
    expect(count('gw.gw0')).toBe(before.gw0);

    // A recipient online nowhere: no gateway hears of it; the push worker does.
    const offline = await sendPm(frank, 'grace', 'route-2', 'are you there?');
    const push = await eventually(() => pushes.find((p) => p.mid === offline.mid), { what: 'an offline push' });
    expect(push).toMatchObject({ t: 'offline', kind: 'private', uids: ['grace'], from: 'frank', preview: 'are you there?' });
    expect(count('gw.gw0')).toBe(before.gw0);
    expect(count('gw.gw1')).toBe(before.gw1 + 1);
    expect(erin.closeCode).toBeNull();
  });

  it('a new login of the same device type replaces the older connection (close 4010)', async () => {
    const old = await connect('heidi', 'ios', 0);
    const other = await connect('heidi', 'web', 0);
    await connect('heidi', 'ios', 1);
    expect(await old.closed()).toBe(4010);
    expect(old.frames.find((f) => f.t === 'kicked')).toMatchObject({ reason: 'device_replaced', device: 'ios' });
    expect(other.closeCode).toBeNull();
  });

  it('refuses messages from a blocked sender until unblocked', async () => {
    const ivan = await connect('ivan', 'web', 0);
    const judy = await connect('judy', 'web', 1);
    judy.send({ t: 'block', uid: 'ivan' });
    expect(await judy.next((f) => f.t === 'blocked')).toMatchObject({ uid: 'ivan', blocked: true });
    expect(await sendPm(ivan, 'judy', 'b-1', 'let me in')).toMatchObject({ t: 'error', code: 'blocked', ref: 'pm' });
    judy.send({ t: 'unblock', uid: 'ivan' });
    await judy.next((f) => f.t === 'blocked' && f.blocked === false);
    expect(await sendPm(ivan, 'judy', 'b-2', 'thanks')).toMatchObject({ t: 'sent' });
  });

  it('counts unread messages, pushes read receipts and pages back through the conversation', async () => {
    const kim = await connect('kim', 'web', 0);
    const leo = await connect('leo', 'web', 1);
    for (let i = 1; i <= 5; i++) await sendPm(kim, 'leo', `k-${i}`, `message ${i}`);
    leo.send({ t: 'convs' });
    const convs = await leo.next((f) => f.t === 'convs');
    expect(convs.convs).toEqual([expect.objectContaining({ peer: 'kim', lastSeq: 5, readSeq: 0, unread: 5 })]);

    leo.send({ t: 'read', peer: 'kim', cseq: 3 });
    expect(await kim.next((f) => f.t === 'receipt')).toMatchObject({ from: 'leo', cseq: 3 });
    const from = leo.frames.length;
    leo.send({ t: 'convs' });
    expect((await leo.next((f) => f.t === 'convs', 10_000, from)).convs).toEqual([expect.objectContaining({ peer: 'kim', unread: 2 })]);

    leo.send({ t: 'conv_history', peer: 'kim', limit: 2 });
    const newest = await leo.next((f) => f.t === 'conv_history');
    expect((newest.msgs as PrivateMessage[]).map((m) => m.text)).toEqual(['message 4', 'message 5']);
    expect(newest.more).toBe(true);
    const at = leo.frames.length;
    leo.send({ t: 'conv_history', peer: 'kim', beforeSeq: 4 });
    const older = await leo.next((f) => f.t === 'conv_history', 10_000, at);
    expect((older.msgs as PrivateMessage[]).map((m) => m.cseq)).toEqual([1, 2, 3]);
    expect(older.more).toBe(false);
  });

  it('the SDK pulls a message whose push was lost, found by the gap in the inbox seq', async () => {
    const sender = await connect('mona', 'web', 0);
    const nina = new RoomcastClient({ url: cluster.gateways[1]!.url, token: await cluster.token('nina'), WebSocket: WebSocket as unknown as WebSocketConstructor });
    sdkClients.push(nina);
    const got: PrivateMessage[] = [];
    const latch = new Latch(3, 'three messages');
    nina.chat.on('private', (m) => { got.push(m); latch.countDown(); });
    await nina.connect();
    await sendPm(sender, 'nina', 'gap-1', 'before');
    // gw1 loses NATS: the push of the next message has nowhere to go and is lost.
    cluster.gateways[1]!.natsLink!.cut();
    await eventually(async () => (await cluster.subscriptionCount('gw.gw1')) === 0, { what: 'gw1 gone from NATS' });
    await sendPm(sender, 'nina', 'gap-2', 'lost push');
    cluster.gateways[1]!.natsLink!.restore();
    await eventually(async () => (await cluster.subscriptionCount('gw.gw1')) === 1, { what: 'gw1 back on NATS' });
    await sendPm(sender, 'nina', 'gap-3', 'after');
    await latch.wait();
    expect(got.map((m) => m.text).sort()).toEqual(['after', 'before', 'lost push']);
    await eventually(() => nina.chat.inboxCursor === 3, { what: 'nina processed all three' });
  });

  it('the SDK does not reconnect after a newer login of its device type replaced it', async () => {
    const first = new RoomcastClient({ url: cluster.gateways[0]!.url, token: await cluster.token('olga', 'viewer', { device: 'ios' }), WebSocket: WebSocket as unknown as WebSocketConstructor });
    sdkClients.push(first);
    await first.connect();
    const kicked = new Promise((resolve) => first.chat.on('kicked', resolve));
    const second = await connect('olga', 'ios', 1);
    expect(await kicked).toMatchObject({ reason: 'device_replaced', device: 'ios' });
    await eventually(() => first.state === 'closed', { what: 'the older client closed for good' });
    expect(second.closeCode).toBeNull();
  });
});
