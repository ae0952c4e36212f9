/**
 * Conversation list, retried sends and group membership pages, in both modes (embedded stores, and
 * two gateways with two room services on NATS and Redis), with real WebSocket clients: `convs` pages
 * the private conversations and groups as one list by last activity; a retried `pm` whose first
 * attempt was delivered is answered again but not pushed again; `group_members` pages by `limit`;
 * `group_add` with role admin promotes a member.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConversationSummary, PrivateMessage } from '../../src/shared/protocol/chat-frames.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';

describe.each(['embedded', 'distributed'] as const)('chat lists and retries (%s)', (mode) => {
  let cluster: Cluster;
  const clients: WsTestClient[] = [];

  beforeAll(async () => {
    cluster = await startCluster({
      mode, gateways: 2, roomServices: 2,
      env: {
        ROOMCAST_GROUP_CREATE: 'users', ROOMCAST_GROUP_INVITES: 'direct', ROOMCAST_DEVICE_POLICY: 'many',
        ROOMCAST_CHAT_RATE_PER_SEC: '100000', ROOMCAST_CHAT_BURST: '100000',
      },
    });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  async function connect(uid: string, gateway = 0, device = 'web'): Promise<WsTestClient> {
    const c = await WsTestClient.connect(cluster.gateways[gateway % cluster.gateways.length]!.url, { token: await cluster.token(uid, 'viewer', { device }) });
    clients.push(c);
    await c.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
    return c;
  }

  const pushedMids = (c: WsTestClient) => c.frames.filter((f) => f.t === 'inbox').flatMap((f) => (f.msgs as PrivateMessage[]).map((m) => m.mid));

  it('a retried pm whose first attempt was delivered is answered as a duplicate and pushed nowhere again', async () => {
    const ann = await connect('ann', 0);
    const annPhone = await connect('ann', 1, 'ios');
    const ben = await connect('ben', 1);
    const first = await ann.request({ t: 'pm', to: 'ben', id: 'r-1', text: 'once' }, 'sent');
    await ben.until(() => (pushedMids(ben).includes(first.mid as string) ? true : undefined), 10_000, 'the first push');
    const again = await ann.request({ t: 'pm', to: 'ben', id: 'r-1', text: 'once' }, 'sent');
    expect(again).toMatchObject({ t: 'sent', mid: first.mid, seq: first.seq, duplicate: true });
    // A later message reaching both bounds the wait for a second push of the first.
    const next = await ann.request({ t: 'pm', to: 'ben', id: 'r-2', text: 'next' }, 'sent');
    for (const c of [ben, annPhone]) await c.until(() => (pushedMids(c).includes(next.mid as string) ? true : undefined), 10_000, 'the next push');
    for (const c of [ben, annPhone]) expect(pushedMids(c).filter((mid) => mid === first.mid)).toHaveLength(1);
  });

  it('convs pages private conversations and groups as one list, newest activity first', async () => {
    const cat = await connect('cat', 0);
    await cat.request({ t: 'pm', to: 'dan', id: 'c-1', text: 'oldest' }, 'sent');
    await cat.request({ t: 'group_create', group: 'cats', members: ['dan'] }, 'group');
    await cat.request({ t: 'gm', group: 'cats', id: 'c-2', text: 'middle' }, 'sent');
    await cat.request({ t: 'pm', to: 'eve', id: 'c-3', text: 'newest' }, 'sent');
    const key = (s: ConversationSummary) => s.peer ?? `#${s.group}`;

    const page = await cat.request({ t: 'convs', limit: 2 }, 'convs');
    expect((page.convs as ConversationSummary[]).map(key)).toEqual(['eve', '#cats']);
    expect(page.cursor).toEqual(expect.any(String));
    const rest = await cat.request({ t: 'convs', limit: 2, cursor: page.cursor }, 'convs');
    expect((rest.convs as ConversationSummary[]).map(key)).toEqual(['dan']);
    expect(rest.cursor).toBeUndefined();
    expect((await cat.request({ t: 'convs' }, 'convs')).convs).toHaveLength(3);
    expect(await cat.request({ t: 'convs', cursor: 'x' }, 'convs')).toMatchObject({ t: 'error', code: 'bad_frame' });
  });

  it('group_members pages by its limit, and group_add with role admin promotes a member', async () => {
    const owner = await connect('fay', 0);
    const members = ['m1', 'm2', 'm3', 'm4', 'm5'];
    await owner.request({ t: 'group_create', group: 'paged', members }, 'group');
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await owner.request({ t: 'group_members', group: 'paged', limit: 2, ...(cursor ? { cursor } : {}) }, 'group_members');
      const uids = (page.members as Array<{ uid: string }>).map((m) => m.uid);
      expect(uids.length).toBeLessThanOrEqual(2);
      seen.push(...uids);
      cursor = page.cursor as string | undefined;
    } while (cursor);
    expect(seen.sort()).toEqual(['fay', ...members].sort());

    expect(await owner.request({ t: 'group_add', group: 'paged', uids: ['m1'], role: 'admin' }, 'group')).toMatchObject({ members: 6 });
    const admin = await connect('m1', 1);
    // An admin adds members; a member could not.
    expect(await admin.request({ t: 'group_add', group: 'paged', uids: ['m6'] }, 'group')).toMatchObject({ t: 'group', members: 7, role: 'admin' });
  });
});
