/**
 * Group chat over the distributed topology (two gateways, two room-service replicas, real NATS and
 * Redis): membership over frames and the HTTP API, messages stored once per group (checked with Redis
 * commands), pushed once to online members with one publish per gateway, caught up from the cursor by
 * offline members, and groups of 10,000 members. Runs with the group policy `direct` (members added by a
 * user are members at once).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBus } from '../../src/shared/bus/nats-bus.js';
import { decodeBusMessage } from '../../src/shared/codec/codec.js';
import { silentLogger } from '../../src/shared/log.js';
import { connectRedis, type RedisConnection } from '../../src/shared/store/redis-client.js';
import type { DeliverEvent, OfflinePushEvent } from '../../src/shared/protocol/chat-bus-messages.js';
import type { GroupMessage } from '../../src/shared/protocol/chat-frames.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/latch.js';
import { WsTestClient, type AnyFrame } from '../helpers/ws-client.js';

let cluster: Cluster;
let redis: RedisConnection;
let observer: NatsBus;
const routed = new Map<string, DeliverEvent[]>();
const pushes: OfflinePushEvent[] = [];
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 2, roomServices: 2,
    env: {
      ROOMCAST_FRAME_RATE_PER_SEC: '10000', ROOMCAST_FRAME_BURST: '10000', ROOMCAST_CHAT_BURST: '100',
      // Any user creates groups, and the users it adds are members at once: these tests are about
      // delivery to members (invites are in group-policy.test.ts).
      ROOMCAST_GROUP_CREATE: 'users', ROOMCAST_GROUP_INVITES: 'direct',
    },
  });
  redis = await connectRedis(cluster.redisUrl!, silentLogger);
  observer = await NatsBus.connect({ servers: cluster.nats!.url, name: 'observer', log: silentLogger });
  observer.subscribe('gw.*', (message) => {
    const event = decodeBusMessage(message.data) as DeliverEvent;
    if (event.t !== 'deliver') return;
    routed.set(message.subject, [...(routed.get(message.subject) ?? []), event]);
  });
  observer.subscribe('push.offline', (message) => { pushes.push(decodeBusMessage(message.data) as OfflinePushEvent); });
  await observer.flush();
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await observer?.close();
  await redis?.quit();
  await cluster?.stop();
});

async function connect(uid: string, gateway: number): Promise<WsTestClient> {
  const c = await WsTestClient.connect(cluster.gateways[gateway]!.url, { token: await cluster.token(uid) });
  clients.push(c);
  await c.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
  return c;
}


const groupMsgs = (c: WsTestClient): GroupMessage[] => c.frames.filter((f) => f.t === 'group_msgs').flatMap((f) => f.msgs as GroupMessage[]);
const members = (count: number, prefix: string) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

describe('group chat', () => {
  it('a group of 1,000 across two gateways, 10% online: pushed once to the online, synced by the offline, stored once', async () => {
    const all = members(1000, 'm');
    const owner = await connect(all[0]!, 0);
    expect(await owner.request({ t: 'group_create', group: 'big', members: all.slice(1, 500) }, 'group')).toMatchObject({ t: 'group', group: 'big', members: 500, role: 'owner' });
    expect(await owner.request({ t: 'group_add', group: 'big', uids: all.slice(500) }, 'group')).toMatchObject({ members: 1000 });
    const online = await Promise.all(all.slice(1, 100).map((uid, i) => connect(uid, i % 2)));
    const before = { gw0: routed.get('gw.gw0')?.length ?? 0, gw1: routed.get('gw.gw1')?.length ?? 0 };

    const texts = ['first', 'second', 'third'];
    const sent: AnyFrame[] = [];
    for (const [i, text] of texts.entries()) sent.push(await owner.request({ t: 'gm', group: 'big', id: `g-${i}`, text }, 'sent'));
    expect(sent.map((s) => s.seq)).toEqual([1, 2, 3]);
    for (const c of online) await c.until(() => (groupMsgs(c).length >= 3 ? true : undefined), 15_000, 'three group messages');
    // A retried id is the same message, routed again (clients drop it by mid), not a fourth.
    expect(await owner.request({ t: 'gm', group: 'big', id: 'g-0', text: 'first' }, 'sent')).toMatchObject({ seq: 1, duplicate: true });

    for (const c of online) {
      const seqs = groupMsgs(c).map((m) => m.seq);
      expect(new Set(seqs)).toEqual(new Set([1, 2, 3]));
    }
    // Exactly once per message before the retry: the first three pushes of every member are 1, 2, 3.
    for (const c of online) expect(groupMsgs(c).slice(0, 3).map((m) => m.text)).toEqual(texts);
    // The sender's connection got `sent`, not a push.
    expect(groupMsgs(owner)).toEqual([]);

    // One publish per gateway per message, each naming only that gateway's online members.
    await eventually(() => (routed.get('gw.gw0')?.length ?? 0) - before.gw0 === 4 && (routed.get('gw.gw1')?.length ?? 0) - before.gw1 === 4, { what: 'one publish per gateway per send' });
    const gw0 = routed.get('gw.gw0')!.slice(before.gw0);
    expect(gw0.every((event) => event.items.length === 1 && event.items[0]!.to.length === 50)).toBe(true);
    expect(new Set(gw0[0]!.items[0]!.to)).toEqual(new Set(all.slice(1, 100).filter((_, i) => i % 2 === 0)));

    // Offline members are named in offline-push events (in chunks), the online ones are not.
    const pushedTo = () => new Set(pushes.filter((p) => p.mid === sent[0]!.mid).flatMap((p) => p.uids));
    // Twice: the retried id routed again.
    await eventually(() => pushes.filter((p) => p.mid === sent[0]!.mid).length === 4, { what: 'two offline pushes of 500 + 400 uids' });
    const pushed = pushedTo();
    expect(pushed.size).toBe(900);
    expect(pushed.has(all[1]!)).toBe(false);

    // Stored once: one log entry per message, nothing per member.
    expect(await redis.llen('rc:group:{big}:log')).toBe(3);
    expect(await redis.hlen('rc:group:{big}:members')).toBe(1000);
    expect(await redis.exists('rc:user:{m500}:inbox')).toBe(0);
    expect(await redis.hget('rc:group:{big}:cursor', 'm999')).toBe('0');

    // An offline member catches up from its cursor, and acknowledging moves the cursor.
    const late = await connect('m999', 1);
    const page = await late.request({ t: 'group_sync', group: 'big' }, 'group_synced');
    expect((page.msgs as GroupMessage[]).map((m) => m.text)).toEqual(texts);
    expect(page).toMatchObject({ cursor: 0, lastSeq: 3, more: false });
    late.send({ t: 'group_ack', group: 'big', seq: 3 });
    await eventually(async () => (await redis.hget('rc:group:{big}:cursor', 'm999')) === '3', { what: 'the member cursor at 3' });
    const convs = await late.request({ t: 'convs' }, 'convs');
    expect(convs.convs).toEqual([expect.objectContaining({ group: 'big', lastSeq: 3, readSeq: 3, unread: 0 })]);
  });

  it('new members do not see earlier messages; roles limit who changes membership', async () => {
    const owner = await connect('ann', 0);
    const admin = await connect('adam', 1);
    const member = await connect('mia', 0);
    await owner.request({ t: 'group_create', group: 'club', members: ['mia'] }, 'group');
    expect(await owner.request({ t: 'group_add', group: 'club', uids: ['adam'], role: 'admin' }, 'group')).toMatchObject({ members: 3 });
    await owner.request({ t: 'gm', group: 'club', id: 'before', text: 'before nico' }, 'sent');
    expect(await member.request({ t: 'group_add', group: 'club', uids: ['x'] }, 'group')).toMatchObject({ t: 'error', code: 'forbidden' });
    expect(await admin.request({ t: 'group_add', group: 'club', uids: ['y'], role: 'admin' }, 'group')).toMatchObject({ t: 'error', code: 'forbidden' });
    expect(await admin.request({ t: 'group_remove', group: 'club', uids: ['ann'] }, 'group')).toMatchObject({ t: 'error', code: 'forbidden' });
    expect(await admin.request({ t: 'group_add', group: 'club', uids: ['nico'] }, 'group')).toMatchObject({ members: 4 });
    const nico = await connect('nico', 1);
    await owner.request({ t: 'gm', group: 'club', id: 'after', text: 'after nico' }, 'sent');
    await nico.next((f) => f.t === 'group_msgs');
    const page = await nico.request({ t: 'group_sync', group: 'club', after: 0 }, 'group_synced');
    expect((page.msgs as GroupMessage[]).map((m) => m.text)).toEqual(['after nico']);
    expect(page.gap).toBeUndefined();

    const list = await nico.request({ t: 'group_members', group: 'club' }, 'group_members');
    expect((list.members as Array<{ uid: string; role: string }>).sort((a, b) => a.uid.localeCompare(b.uid)))
      .toEqual([{ uid: 'adam', role: 'admin' }, { uid: 'ann', role: 'owner' }, { uid: 'mia', role: 'member' }, { uid: 'nico', role: 'member' }]);
    expect(await member.request({ t: 'group_remove', group: 'club', uids: ['mia'] }, 'group')).toMatchObject({ members: 3 });
    expect(await member.request({ t: 'gm', group: 'club', id: 'gone', text: 'still here?' }, 'sent')).toMatchObject({ t: 'error', code: 'not_group_member' });
  });

  it('backends manage groups and send private and group messages over HTTP', async () => {
    expect((await cluster.api('PUT', '/v1/groups/ops', { owner: 'olga', members: ['pete'] })).status).toBe(201);
    expect((await cluster.api('PUT', '/v1/groups/ops', { owner: 'olga' })).body.error.code).toBe('group_exists');
    expect((await cluster.api('POST', '/v1/groups/ops/members', { uids: ['quinn'] })).body).toMatchObject({ members: 3 });
    expect((await cluster.api('DELETE', '/v1/groups/ops/members/pete')).body).toMatchObject({ members: 2 });
    expect((await cluster.api('GET', '/v1/groups/ops')).body).toMatchObject({ group: 'ops', members: 2, lastSeq: 0 });
    const quinn = await connect('quinn', 1);
    const sent = await cluster.api('POST', '/v1/groups/ops/messages', { from: 'olga', id: 'h1', text: 'from the backend' });
    expect(sent).toMatchObject({ status: 201, body: { t: 'sent', seq: 1, group: 'ops' } });
    expect((await quinn.next((f) => f.t === 'group_msgs')).msgs).toEqual([expect.objectContaining({ from: 'olga', text: 'from the backend' })]);

    const pm = await cluster.api('POST', '/v1/private-messages', { from: 'system', to: 'quinn', id: 'p1', text: 'welcome' });
    expect(pm).toMatchObject({ status: 201, body: { t: 'sent', to: 'quinn' } });
    expect(await cluster.api('POST', '/v1/private-messages', { from: 'system', to: 'quinn', id: 'p1', text: 'welcome' })).toMatchObject({ status: 200, body: { duplicate: true } });
    expect((await quinn.next((f) => f.t === 'inbox' && f.lastSeq === undefined)).msgs).toEqual([expect.objectContaining({ from: 'system', text: 'welcome' })]);
  });

  it('a group of 10,000 members works: membership in chunks, one stored copy, pushes to the online, sync for the rest', async () => {
    const all = members(10_000, 'huge-');
    expect((await cluster.api('PUT', '/v1/groups/huge', { owner: all[0], members: all.slice(1, 500) })).status).toBe(201);
    for (let i = 500; i < all.length; i += 500) {
      expect((await cluster.api('POST', '/v1/groups/huge/members', { uids: all.slice(i, i + 500) })).status).toBe(200);
    }
    expect(await redis.hlen('rc:group:{huge}:members')).toBe(10_000);
    const online = await Promise.all([all[1]!, all[5000]!, all[9999]!].map((uid, i) => connect(uid, i % 2)));
    const before = { gw0: routed.get('gw.gw0')?.length ?? 0, gw1: routed.get('gw.gw1')?.length ?? 0 };
    const sent = await cluster.api('POST', '/v1/groups/huge/messages', { from: all[0], id: 'hello-all', text: 'hello, ten thousand' });
    expect(sent.status).toBe(201);
    for (const c of online) expect((await c.next((f) => f.t === 'group_msgs')).msgs).toEqual([expect.objectContaining({ mid: sent.body.mid })]);
    // 10,000 members looked up in chunks, still one publish per gateway, naming only its online members.
    await observer.flush();
    expect((routed.get('gw.gw0') ?? []).slice(before.gw0).map((event) => event.items.map((item) => item.to.sort()))).toEqual([[[all[1], all[9999]].sort()]]);
    expect((routed.get('gw.gw1') ?? []).slice(before.gw1).map((event) => event.items.map((item) => item.to))).toEqual([[[all[5000]]]]);
    await eventually(() => new Set(pushes.filter((p) => p.mid === sent.body.mid).flatMap((p) => p.uids)).size === 10_000 - 4, { what: 'offline pushes for the rest' });
    expect(await redis.llen('rc:group:{huge}:log')).toBe(1);
    const offline = await connect(all[7777]!, 0);
    const page = await offline.request({ t: 'group_sync', group: 'huge' }, 'group_synced');
    expect((page.msgs as GroupMessage[]).map((m) => m.text)).toEqual(['hello, ten thousand']);
    const listed = new Set<string>();
    let cursor: string | undefined;
    do {
      const response = await cluster.api('GET', `/v1/groups/huge/members?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      for (const member of response.body.members as Array<{ uid: string }>) listed.add(member.uid);
      cursor = response.body.cursor;
    } while (cursor);
    expect(listed.size).toBe(10_000);
  }, 60_000);
});
