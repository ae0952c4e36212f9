/**
 * The distributed topology on a 3-primary Redis Cluster (`ROOMCAST_REDIS_URL=redis-cluster://…`):
 * two gateways and two room services; a room's chat, private messages both ways across gateways
 * (stored, appended to both inboxes, pushed, deduplicated on retry, refused when blocked), offline
 * sync, and a group (an admin made, members paged): every store runs on the cluster. A message
 * stored by a room service that died before the inbox steps is repaired from the outbox and pushed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrivateMessage } from '../../src/shared/protocol/chat-frames.js';
import { silentLogger } from '../../src/shared/log.js';
import { connectRedis } from '../../src/shared/store/redis-client.js';
import { RedisInboxStore } from '../../src/shared/store/redis-inbox-store.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';

let cluster: Cluster;
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 2, roomServices: 2, redis: 'cluster',
    // A quick repair: pending after 300 ms, the whole outbox visited in about 4 s by the two services.
    env: { ROOMCAST_GROUP_INVITES: 'direct', ROOMCAST_CHAT_REPAIR_GRACE_MS: '300', ROOMCAST_CHAT_REPAIR_SLOTS_PER_SEC: '2048' },
  });
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

async function connect(uid: string, gateway: number, device = 'web'): Promise<WsTestClient> {
  const c = await WsTestClient.connect(cluster.gateways[gateway]!.url, { token: await cluster.token(uid, 'viewer', { device }) });
  clients.push(c);
  await c.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
  return c;
}


describe('on a Redis Cluster', () => {
  it('serves a room, private messages and a group', async () => {
    expect(cluster.redisUrl).toMatch(/^redis-cluster:\/\//);
    await cluster.createRoom('main');
    const alice = await connect('alice', 0);
    const bob = await connect('bob', 1);

    expect(await alice.request({ t: 'join', room: 'main' }, 'joined')).toMatchObject({ t: 'joined', room: 'main' });
    expect(await alice.request({ t: 'send', room: 'main', id: 'r1', text: 'hello room' }, 'ack')).toMatchObject({ t: 'ack', seq: 1 });

    const sent = await alice.request({ t: 'pm', to: 'bob', id: 'p1', text: 'hi bob' }, 'sent');
    expect(sent).toMatchObject({ t: 'sent', id: 'p1', seq: 1, to: 'bob' });
    const pushed = await bob.next((f) => f.t === 'inbox' && (f.msgs as PrivateMessage[]).some((m) => m.mid === sent.mid));
    expect((pushed.msgs as PrivateMessage[])[0]).toMatchObject({ seq: 1, cseq: 1, from: 'alice', text: 'hi bob' });
    const reply = await bob.request({ t: 'pm', to: 'alice', id: 'p2', text: 'hi alice' }, 'sent');
    expect(reply).toMatchObject({ seq: 2 });
    // A retry is a duplicate with the same ids; nothing is appended twice.
    expect(await alice.request({ t: 'pm', to: 'bob', id: 'p1', text: 'hi bob' }, 'sent')).toMatchObject({ mid: sent.mid, seq: 1, duplicate: true });
    const synced = await bob.request({ t: 'sync', after: 0 }, 'synced');
    expect((synced.msgs as PrivateMessage[]).map((m) => [m.seq, m.cseq, m.text])).toEqual([[1, 1, 'hi bob'], [2, 2, 'hi alice']]);

    expect(await bob.request({ t: 'block', uid: 'carol' }, 'blocked')).toMatchObject({ blocked: true });
    const carol = await connect('carol', 0);
    expect(await carol.request({ t: 'pm', to: 'bob', id: 'c1', text: 'hey' }, 'sent')).toMatchObject({ t: 'error', code: 'blocked' });

    expect(await alice.request({ t: 'group_create', group: 'team', members: ['bob', 'carol'] }, 'group')).toMatchObject({ members: 3 });
    // The owner makes an admin of a member; a page of members holds at most its limit.
    expect(await bob.request({ t: 'group_add', group: 'team', uids: ['carol'], role: 'admin' }, 'group')).toMatchObject({ t: 'error', code: 'forbidden' });
    expect(await alice.request({ t: 'group_add', group: 'team', uids: ['bob'], role: 'admin' }, 'group')).toMatchObject({ members: 3, role: 'owner' });
    const page = await alice.request({ t: 'group_members', group: 'team', limit: 2 }, 'group_members');
    expect(page.members).toHaveLength(2);
    expect(page.cursor).toEqual(expect.any(String));
    const rest = await alice.request({ t: 'group_members', group: 'team', limit: 2, cursor: page.cursor }, 'group_members');
    const listed = [...page.members as Array<{ uid: string }>, ...rest.members as Array<{ uid: string }>];
    expect(listed.sort((a, b) => a.uid.localeCompare(b.uid)))
      .toEqual([{ uid: 'alice', role: 'owner' }, { uid: 'bob', role: 'admin' }, { uid: 'carol', role: 'member' }]);
    const gm = await alice.request({ t: 'gm', group: 'team', id: 'g1', text: 'standup' }, 'sent');
    expect(gm).toMatchObject({ t: 'sent', seq: 1, group: 'team' });
    await bob.next((f) => f.t === 'group_msgs' && f.group === 'team');
    expect(await bob.request({ t: 'group_sync', group: 'team', after: 0 }, 'group_synced')).toMatchObject({ lastSeq: 1 });
    const convs = await bob.request({ t: 'convs' }, 'convs');
    expect(convs.convs).toEqual(expect.arrayContaining([expect.objectContaining({ peer: 'alice', lastSeq: 2 }), expect.objectContaining({ group: 'team', lastSeq: 1 })]));
  });

  it('repairs a message stored by a room service that died before its inbox steps, and pushes it', async () => {
    const dana = await connect('dana', 1);
    const redis = await connectRedis(cluster.redisUrl!, silentLogger);
    try {
      // What a room service had done when it died: the send script, nothing after it.
      const stored = await new RedisInboxStore({ redis, retention: { count: 1000, maxAgeMs: 86_400_000, dedupTtlMs: 600_000 } })
        .send({ from: 'erin', to: 'dana', cid: 'lost-1', text: 'stored, then the service died', nowMs: Date.now(), rate: { ratePerSec: 10, burst: 10 } });
      if (stored.status !== 'stored') throw new Error(`expected stored, got ${stored.status}`);
      const mid = `p/${stored.message.conv}/${stored.message.cseq}`;
      // Repair rounds run while a room service handles private messages (DeliveryRepair): anyone's
      // private message starts a full pass, so this does not depend on the previous test's.
      const gina = await connect('gina', 0);
      await gina.request({ t: 'pm', to: 'hank', id: 'wake-1', text: 'any private message starts the repair rounds' }, 'sent');
      const pushed = await dana.next((f) => f.t === 'inbox' && (f.msgs as PrivateMessage[]).some((m) => m.mid === mid), 30_000);
      expect((pushed.msgs as PrivateMessage[])[0]).toMatchObject({ seq: 1, from: 'erin', text: 'stored, then the service died' });
      expect(((await dana.request({ t: 'sync', after: 0 }, 'synced')).msgs as PrivateMessage[]).map((m) => m.mid)).toEqual([mid]);
      // The sender's retry finds it stored and in its own inbox.
      const erin = await connect('erin', 0);
      expect(await erin.request({ t: 'pm', to: 'dana', id: 'lost-1', text: 'stored, then the service died' }, 'sent'))
        .toMatchObject({ mid, seq: 1, duplicate: true });
    } finally {
      await redis.quit();
    }
  }, 60_000);
});
