/**
 * The group policy over real sockets and HTTP: who may create groups (ROOMCAST_GROUP_CREATE) and
 * whether users added by another user must accept (ROOMCAST_GROUP_INVITES). Under `accept` an invited
 * user gets no group message until it accepts, then only those sent after its acceptance; it can
 * decline; offline it learns of the invite at login. Under `direct` added users are members at once.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoomcastClient, type WebSocketConstructor } from '../../src/client/roomcast-client.js';
import { NatsBus } from '../../src/shared/bus/nats-bus.js';
import { decodeBusMessage } from '../../src/shared/codec/codec.js';
import { silentLogger } from '../../src/shared/log.js';
import type { OfflinePushEvent } from '../../src/shared/protocol/chat-bus-messages.js';
import type { GroupMessage } from '../../src/shared/protocol/chat-frames.js';
import type { Role } from '../../src/shared/protocol/frames.js';
import { connectRedis, type RedisConnection } from '../../src/shared/store/redis-client.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually, Latch } from '../helpers/latch.js';
import { WsTestClient, type AnyFrame } from '../helpers/ws-client.js';

const FAST = { ROOMCAST_FRAME_RATE_PER_SEC: '10000', ROOMCAST_FRAME_BURST: '10000', ROOMCAST_CHAT_BURST: '100' };

function harness(getCluster: () => Cluster) {
  const clients: WsTestClient[] = [];
  return {
    clients,
    async connect(uid: string, role: Role = 'viewer'): Promise<WsTestClient> {
      const c = await WsTestClient.connect(getCluster().gateways[0]!.url, { token: await getCluster().token(uid, role) });
      clients.push(c);
      await c.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
      return c;
    },
    request: (c: WsTestClient, frame: Record<string, unknown>, answer: string): Promise<AnyFrame> => c.request(frame, answer),
    async user(method: string, path: string, uid: string, role: Role = 'viewer', body?: unknown) {
      return getCluster().api(method, path, body, await getCluster().token(uid, role));
    },
  };
}

const groupMsgs = (c: WsTestClient, group: string): GroupMessage[] =>
  c.frames.filter((f) => f.t === 'group_msgs' && f.group === group).flatMap((f) => f.msgs as GroupMessage[]);

describe('ROOMCAST_GROUP_CREATE=staff, ROOMCAST_GROUP_INVITES=accept (distributed)', () => {
  let cluster: Cluster;
  let redis: RedisConnection;
  let observer: NatsBus;
  const pushes: OfflinePushEvent[] = [];
  const sdks: RoomcastClient[] = [];
  const { clients, connect, request, user } = harness(() => cluster);

  beforeAll(async () => {
    cluster = await startCluster({
      mode: 'distributed', gateways: 1, roomServices: 1,
      env: { ...FAST, ROOMCAST_GROUP_CREATE: 'staff', ROOMCAST_GROUP_INVITES: 'accept' },
    });
    redis = await connectRedis(cluster.redisUrl!, silentLogger);
    observer = await NatsBus.connect({ servers: cluster.nats!.url, name: 'observer', log: silentLogger });
    observer.subscribe('push.offline', (message) => { pushes.push(decodeBusMessage(message.data) as OfflinePushEvent); });
    await observer.flush();
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const c of sdks) c.close();
    await observer?.close();
    await redis?.quit();
    await cluster?.stop();
  });

  it('a viewer may not create a group, over WebSocket or HTTP; streamers, moderators, admins and backends may', async () => {
    const viewer = await connect('vera');
    const refused = await request(viewer, { t: 'group_create', group: 'vera-club', members: ['x'] }, 'group');
    expect(refused).toMatchObject({ t: 'error', code: 'forbidden', ref: 'group_create' });
    expect(refused.message).toContain('ROOMCAST_GROUP_CREATE');
    const overHttp = await user('PUT', '/v1/groups/vera-club', 'vera', 'viewer', {});
    expect(overHttp).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    expect((await cluster.api('GET', '/v1/groups/vera-club')).status).toBe(404);

    const streamer = await connect('stan', 'streamer');
    expect(await request(streamer, { t: 'group_create', group: 'stan-club' }, 'group')).toMatchObject({ t: 'group', members: 1, role: 'owner' });
    expect((await user('PUT', '/v1/groups/mod-club', 'mo', 'moderator', {})).status).toBe(201);
    expect((await cluster.api('PUT', '/v1/groups/backend-club', { owner: 'vera' })).status).toBe(201);
    // Admins are trusted: the members they name are members at once, not invited.
    const admin = await connect('ada', 'admin');
    expect(await request(admin, { t: 'group_create', group: 'ada-club', members: ['vera'] }, 'group'))
      .toMatchObject({ t: 'group', members: 2, invited: 0, role: 'owner' });
  });

  it('an invited user gets no message until it accepts, then only the messages sent after its acceptance', async () => {
    const owner = await connect('olive', 'streamer');
    const ivan = await connect('ivan');
    const created = await request(owner, { t: 'group_create', group: 'book', members: ['ivan', 'ines'] }, 'group');
    expect(created).toMatchObject({ t: 'group', group: 'book', members: 1, invited: 2, role: 'owner' });
    expect(await ivan.next((f) => f.t === 'group_invite')).toEqual({ t: 'group_invite', group: 'book', role: 'member', by: 'olive', ts: expect.any(Number) });
    // A backend adds directly, whatever the invite policy: otto is a member (offline).
    expect((await cluster.api('POST', '/v1/groups/book/members', { uids: ['otto'] })).body).toMatchObject({ members: 2, invited: 2 });
    expect(await redis.hlen('rc:group:{book}:members')).toBe(2);
    expect(await redis.hkeys('rc:group:{book}:invites')).toEqual(expect.arrayContaining(['ivan', 'ines']));

    const before = await request(owner, { t: 'gm', group: 'book', id: 'b1', text: 'before ivan accepts' }, 'sent');
    expect(before).toMatchObject({ t: 'sent', seq: 1 });
    // A private message routed after the group message reaches ivan after it would have: none came.
    await request(owner, { t: 'pm', to: 'ivan', id: 'p1', text: 'check your invites' }, 'sent');
    await ivan.next((f) => f.t === 'inbox' && f.lastSeq === undefined);
    expect(groupMsgs(ivan, 'book')).toEqual([]);
    // Offline pushes name the offline member, never the offline invitee.
    await eventually(() => pushes.some((p) => p.mid === before.mid), { what: 'the offline push of the first message' });
    expect(pushes.filter((p) => p.mid === before.mid).flatMap((p) => p.uids)).toEqual(['otto']);

    expect(await request(ivan, { t: 'group_sync', group: 'book' }, 'group_synced')).toMatchObject({ t: 'error', code: 'not_group_member' });
    expect(await request(ivan, { t: 'gm', group: 'book', id: 'i0', text: 'let me in' }, 'sent')).toMatchObject({ t: 'error', code: 'not_group_member' });
    expect(await request(ivan, { t: 'group_members', group: 'book' }, 'group_members')).toMatchObject({ t: 'error', code: 'not_group_member' });
    expect((await request(ivan, { t: 'convs' }, 'convs')).convs).not.toContainEqual(expect.objectContaining({ group: 'book' }));
    expect((await request(ivan, { t: 'group_invites' }, 'group_invites')).invites)
      .toEqual([{ group: 'book', uid: 'ivan', role: 'member', by: 'olive', ts: expect.any(Number) }]);
    const members = await request(owner, { t: 'group_members', group: 'book' }, 'group_members');
    expect((members.members as Array<{ uid: string }>).map((m) => m.uid).sort()).toEqual(['olive', 'otto']);
    const invites = await request(owner, { t: 'group_invites', group: 'book' }, 'group_invites');
    expect((invites.invites as Array<{ uid: string }>).map((i) => i.uid).sort()).toEqual(['ines', 'ivan']);

    expect(await request(ivan, { t: 'group_join', group: 'book' }, 'group')).toMatchObject({ t: 'group', group: 'book', members: 3, invited: 1, role: 'member' });
    // Accepting twice is harmless.
    expect(await request(ivan, { t: 'group_join', group: 'book' }, 'group')).toMatchObject({ t: 'group', members: 3, role: 'member' });
    expect((await request(ivan, { t: 'group_invites' }, 'group_invites')).invites).toEqual([]);
    await request(owner, { t: 'gm', group: 'book', id: 'b2', text: 'after ivan accepted' }, 'sent');
    expect((await ivan.next((f) => f.t === 'group_msgs')).msgs).toEqual([expect.objectContaining({ seq: 2, text: 'after ivan accepted' })]);
    const page = await request(ivan, { t: 'group_sync', group: 'book', after: 0 }, 'group_synced');
    expect((page.msgs as GroupMessage[]).map((m) => m.text)).toEqual(['after ivan accepted']);
    expect(page.gap).toBeUndefined();
    expect(groupMsgs(ivan, 'book').map((m) => m.seq)).toEqual([2]);
  });

  it('an invited user declines with group_leave, or by removing itself; a decline ends the invite', async () => {
    const owner = await connect('pam', 'moderator');
    const dora = await connect('dora');
    const dan = await connect('dan');
    await request(owner, { t: 'group_create', group: 'choir' }, 'group');
    expect(await request(owner, { t: 'group_add', group: 'choir', uids: ['dora', 'dan', 'dirk'] }, 'group')).toMatchObject({ members: 1, invited: 3 });
    await dora.next((f) => f.t === 'group_invite' && f.group === 'choir');
    expect(await request(dora, { t: 'group_leave', group: 'choir' }, 'group')).toMatchObject({ t: 'group', group: 'choir', members: 1, invited: 2 });
    expect((await request(dora, { t: 'group_invites' }, 'group_invites')).invites).toEqual([]);
    expect(await request(dora, { t: 'group_join', group: 'choir' }, 'group')).toMatchObject({ t: 'error', code: 'not_found', ref: 'group_join' });
    expect(await request(dan, { t: 'group_remove', group: 'choir', uids: ['dan'] }, 'group')).toMatchObject({ t: 'group', invited: 1 });
    expect((await user('DELETE', '/v1/groups/choir/members/dirk', 'dirk')).body).toMatchObject({ members: 1, invited: 0 });
    expect(await redis.exists('rc:group:{choir}:invites')).toBe(0);
    expect(await redis.zcard('rc:user:{dora}:ginvites')).toBe(0);
    await request(owner, { t: 'gm', group: 'choir', id: 'c1', text: 'nobody came' }, 'sent');
    await request(owner, { t: 'pm', to: 'dora', id: 'c2', text: 'sure?' }, 'sent');
    await dora.next((f) => f.t === 'inbox' && f.lastSeq === undefined);
    expect(groupMsgs(dora, 'choir')).toEqual([]);
  });

  it('an offline invitee finds its invites in the login push; HTTP lists and accepts them', async () => {
    await user('PUT', '/v1/groups/guild', 'gus', 'streamer', { members: ['lena'] });
    expect((await user('GET', '/v1/groups/guild/invites', 'gus', 'streamer')).body)
      .toEqual({ t: 'group_invites', group: 'guild', invites: [{ group: 'guild', uid: 'lena', role: 'member', by: 'gus', ts: expect.any(Number) }] });
    const lena = await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token('lena') });
    clients.push(lena);
    const login = await lena.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
    expect(login.invites).toEqual([{ group: 'guild', uid: 'lena', role: 'member', by: 'gus', ts: expect.any(Number) }]);

    expect((await user('GET', '/v1/group-invites', 'lena')).body.invites).toEqual([expect.objectContaining({ group: 'guild', by: 'gus' })]);
    expect((await cluster.api('GET', '/v1/group-invites?uid=lena')).body.invites).toHaveLength(1);
    expect(await user('POST', '/v1/groups/guild/join', 'lena')).toMatchObject({ status: 200, body: { t: 'group', members: 2, invited: 0, role: 'member' } });
    expect(await redis.sismember('rc:user:{lena}:groups', 'guild')).toBe(1);
    // Users a streamer adds over HTTP are invited too; an admin token adds them directly.
    expect((await user('POST', '/v1/groups/guild/members', 'gus', 'streamer', { uids: ['hal'] })).body).toMatchObject({ members: 2, invited: 1 });
    expect((await user('POST', '/v1/groups/guild/members', 'root', 'admin', { uids: ['hal', 'kim'] })).body).toMatchObject({ members: 4, invited: 0 });
  });

  it('the SDK reports invites (live and at login), accepts one, and then delivers the group\'s new messages', async () => {
    const sdk = async (uid: string, role: Role = 'viewer') => {
      const c = new RoomcastClient({
        url: cluster.gateways[0]!.url, token: await cluster.token(uid, role), WebSocket: WebSocket as unknown as WebSocketConstructor, requestTimeoutMs: 5000,
      });
      sdks.push(c);
      return c;
    };
    const owner = await sdk('sam', 'streamer');
    await owner.connect();
    await owner.chat.createGroup('jam', []);
    expect(await owner.chat.addMembers('jam', ['tia', 'tom'])).toMatchObject({ members: 1, invited: 2 });
    // tia was offline: the login push brings the invite.
    const tia = await sdk('tia');
    const invited = new Latch(1, 'tia invited');
    const invites: unknown[] = [];
    tia.chat.on('invite', (invite) => { invites.push(invite); invited.countDown(); });
    await tia.connect();
    await invited.wait();
    expect(invites).toEqual([{ group: 'jam', role: 'member', by: 'sam', ts: expect.any(Number) }]);
    expect(await tia.chat.invites()).toEqual([expect.objectContaining({ group: 'jam', uid: 'tia' })]);
    await owner.chat.sendGroup('jam', 'before tia');
    expect(await tia.chat.acceptInvite('jam')).toMatchObject({ role: 'member', members: 2 });
    const got = new Latch(1, 'a group message');
    const texts: string[] = [];
    tia.chat.on('group', (m) => { texts.push(m.text); got.countDown(); });
    await owner.chat.sendGroup('jam', 'after tia');
    await got.wait();
    expect(texts).toEqual(['after tia']);
    // tom's first invite comes with his login; withdrawn and made again, the new one comes live.
    const tom = await sdk('tom');
    const tomInvites: number[] = [];
    const atLogin = new Latch(1, 'tom invited at login');
    const live = new Latch(2, 'tom invited live');
    tom.chat.on('invite', (invite) => { tomInvites.push(invite.ts); atLogin.countDown(); live.countDown(); });
    await tom.connect();
    await atLogin.wait();
    await owner.chat.removeMembers('jam', ['tom']);
    expect(await tom.chat.invites()).toEqual([]);
    await owner.chat.addMembers('jam', ['tom']);
    await live.wait();
    expect(tomInvites).toHaveLength(2);
    expect(await tom.chat.leaveGroup('jam')).toMatchObject({ members: 2, invited: 0 });
    expect((await owner.chat.groupInvites('jam')).invites).toEqual([]);
  });

  it('a user who blocked the inviter is not invited, and the answer says so', async () => {
    const owner = await connect('bob', 'streamer');
    const bea = await connect('bea');
    await request(bea, { t: 'block', uid: 'bob' }, 'blocked');
    await request(owner, { t: 'group_create', group: 'band' }, 'group');
    expect(await request(owner, { t: 'group_add', group: 'band', uids: ['bea', 'ben'] }, 'group')).toMatchObject({ invited: 1, blocked: ['bea'] });
    expect((await request(bea, { t: 'group_invites' }, 'group_invites')).invites).toEqual([]);
    expect(bea.frames.some((f) => f.t === 'group_invite')).toBe(false);
  });
});

describe('ROOMCAST_GROUP_CREATE=backends, ROOMCAST_GROUP_INVITES=direct (all-in-one)', () => {
  let cluster: Cluster;
  const { clients, connect, request, user } = harness(() => cluster);

  beforeAll(async () => {
    cluster = await startCluster({ mode: 'embedded', env: { ...FAST, ROOMCAST_GROUP_CREATE: 'backends', ROOMCAST_GROUP_INVITES: 'direct' } });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  it('only API keys and admin tokens create groups', async () => {
    for (const role of ['viewer', 'streamer', 'moderator'] as const) {
      const c = await connect(`${role}-1`, role);
      const refused = await request(c, { t: 'group_create', group: `${role}-group` }, 'group');
      expect(refused).toMatchObject({ t: 'error', code: 'forbidden' });
      expect(refused.message).toContain('ROOMCAST_GROUP_CREATE=backends');
      expect((await user('PUT', `/v1/groups/${role}-group`, `${role}-1`, role, {})).status).toBe(403);
    }
    const admin = await connect('root', 'admin');
    expect(await request(admin, { t: 'group_create', group: 'hq' }, 'group')).toMatchObject({ t: 'group', role: 'owner' });
    expect((await cluster.api('PUT', '/v1/groups/ops', { owner: 'una' })).status).toBe(201);
  });

  it('users added by a user are members at once and get the next message (today\'s behaviour)', async () => {
    const una = await connect('una');
    const vic = await connect('vic');
    expect((await cluster.api('PUT', '/v1/groups/crew', { owner: 'una' })).status).toBe(201);
    expect(await request(una, { t: 'group_add', group: 'crew', uids: ['vic'] }, 'group')).toMatchObject({ members: 2, invited: 0 });
    await request(una, { t: 'gm', group: 'crew', id: 'k1', text: 'welcome aboard' }, 'sent');
    expect((await vic.next((f) => f.t === 'group_msgs')).msgs).toEqual([expect.objectContaining({ text: 'welcome aboard' })]);
    expect(vic.frames.some((f) => f.t === 'group_invite')).toBe(false);
    expect((await request(vic, { t: 'group_invites' }, 'group_invites')).invites).toEqual([]);
  });
});
