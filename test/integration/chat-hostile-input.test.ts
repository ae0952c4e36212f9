/**
 * Malformed and hostile private / group chat input, over real sockets and HTTP: each case gets its
 * documented error code, the connection stays open, and a healthy client keeps working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode as encodeStandardMsgpack } from '@msgpack/msgpack';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';

let cluster: Cluster;
let healthy: WsTestClient;
let pings = 0;

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 1, roomServices: 1,
    env: {
      ROOMCAST_CHAT_BURST: '3', ROOMCAST_CHAT_RATE_PER_SEC: '0.1', ROOMCAST_FRAME_RATE_PER_SEC: '1000', ROOMCAST_FRAME_BURST: '1000',
      // The defaults, stated: any user creates groups; users added by a user are invited.
      ROOMCAST_GROUP_CREATE: 'users', ROOMCAST_GROUP_INVITES: 'accept',
    },
  });
  healthy = await connect('healthy');
  expect((await cluster.api('PUT', '/v1/groups/guild', { owner: 'owner', members: ['member'] })).status).toBe(201);
});

afterAll(async () => {
  healthy?.close();
  await cluster?.stop();
});

async function connect(uid: string): Promise<WsTestClient> {
  const c = await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token(uid) });
  await c.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
  return c;
}

async function expectHealthyStillWorks(): Promise<void> {
  const ts = ++pings;
  healthy.send({ t: 'ping', ts });
  await healthy.next((f) => f.t === 'pong' && f.ts === ts);
  expect(healthy.closeCode).toBeNull();
}

const many = (count: number) => Array.from({ length: count }, (_, i) => `u${i}`);

const FRAME_CASES: Array<{ name: string; uid?: string; frame: unknown; code: string }> = [
  { name: 'pm without a recipient', frame: { t: 'pm', id: 'a', text: 'hi' }, code: 'bad_frame' },
  { name: 'pm to a uid with spaces', frame: { t: 'pm', to: 'a b', id: 'a', text: 'hi' }, code: 'bad_frame' },
  { name: 'pm to a uid that is a number', frame: { t: 'pm', to: 42, id: 'a', text: 'hi' }, code: 'bad_frame' },
  { name: 'pm to an overlong uid', frame: { t: 'pm', to: 'x'.repeat(129), id: 'a', text: 'hi' }, code: 'bad_frame' },
  { name: 'pm without an id', frame: { t: 'pm', to: 'bob', text: 'hi' }, code: 'bad_frame' },
  { name: 'pm with an overlong id', frame: { t: 'pm', to: 'bob', id: 'x'.repeat(65), text: 'hi' }, code: 'bad_frame' },
  { name: 'pm with text that is a map', frame: { t: 'pm', to: 'bob', id: 'a', text: { html: '<b>' } }, code: 'bad_frame' },
  { name: 'pm with empty text', frame: { t: 'pm', to: 'bob', id: 'a', text: '  ' }, code: 'bad_request' },
  { name: 'pm over the length limit', frame: { t: 'pm', to: 'bob', id: 'a', text: '字'.repeat(501) }, code: 'text_too_long' },
  { name: 'pm to oneself', uid: 'narcissus', frame: { t: 'pm', to: 'narcissus', id: 'a', text: 'hi me' }, code: 'bad_request' },
  { name: 'sync with a negative after', frame: { t: 'sync', after: -1 }, code: 'bad_frame' },
  { name: 'sync with a fractional after', frame: { t: 'sync', after: 1.5 }, code: 'bad_frame' },
  { name: 'sync with limit 0', frame: { t: 'sync', limit: 0 }, code: 'bad_frame' },
  { name: 'inbox_ack without seq', frame: { t: 'inbox_ack' }, code: 'bad_frame' },
  { name: 'inbox_ack with a string seq', frame: { t: 'inbox_ack', seq: '5' }, code: 'bad_frame' },
  { name: 'read without cseq', frame: { t: 'read', peer: 'bob' }, code: 'bad_frame' },
  { name: 'read of a conversation that does not exist', frame: { t: 'read', peer: 'stranger', cseq: 1 }, code: 'not_found' },
  { name: 'conv_history with a bad peer', frame: { t: 'conv_history', peer: '../etc' }, code: 'bad_frame' },
  { name: 'convs with a negative limit', frame: { t: 'convs', limit: -3 }, code: 'bad_frame' },
  { name: 'block without a uid', frame: { t: 'block' }, code: 'bad_frame' },
  { name: 'unblock with a uid that is a list', frame: { t: 'unblock', uid: ['a'] }, code: 'bad_frame' },
  { name: 'block oneself', uid: 'self-blocker', frame: { t: 'block', uid: 'self-blocker' }, code: 'bad_request' },
  { name: 'gm with a subject wildcard as group', frame: { t: 'gm', group: 'a.>', id: 'a', text: 'hi' }, code: 'bad_group' },
  { name: 'gm without a group', frame: { t: 'gm', id: 'a', text: 'hi' }, code: 'bad_frame' },
  { name: 'gm to an unknown group', frame: { t: 'gm', group: 'nowhere', id: 'a', text: 'hi' }, code: 'unknown_group' },
  { name: 'gm to a group one is not in', frame: { t: 'gm', group: 'guild', id: 'a', text: 'hi' }, code: 'not_group_member' },
  { name: 'group_sync of a group one is not in', frame: { t: 'group_sync', group: 'guild' }, code: 'not_group_member' },
  { name: 'group_ack of an unknown group', frame: { t: 'group_ack', group: 'nowhere', seq: 1 }, code: 'unknown_group' },
  { name: 'group_create of an existing group', frame: { t: 'group_create', group: 'guild' }, code: 'group_exists' },
  { name: 'group_create with members that are not uids', frame: { t: 'group_create', group: 'g2', members: ['ok', 7] }, code: 'bad_frame' },
  { name: 'group_add of too many uids at once', frame: { t: 'group_add', group: 'guild', uids: many(501) }, code: 'bad_frame' },
  { name: 'group_add with an unknown role', frame: { t: 'group_add', group: 'guild', uids: ['x'], role: 'owner' }, code: 'bad_frame' },
  { name: 'group_add by a member', uid: 'member', frame: { t: 'group_add', group: 'guild', uids: ['x'] }, code: 'forbidden' },
  { name: 'group_remove of the owner by a member', uid: 'member', frame: { t: 'group_remove', group: 'guild', uids: ['owner'] }, code: 'forbidden' },
  { name: 'group_members by an outsider', frame: { t: 'group_members', group: 'guild' }, code: 'not_group_member' },
  { name: 'group_members with an overlong cursor', frame: { t: 'group_members', group: 'guild', cursor: '9'.repeat(40) }, code: 'bad_frame' },
  { name: 'group_join without a group', frame: { t: 'group_join' }, code: 'bad_frame' },
  { name: 'group_join of a bad group id', frame: { t: 'group_join', group: 'a b' }, code: 'bad_group' },
  { name: 'group_join of an unknown group', frame: { t: 'group_join', group: 'nowhere' }, code: 'unknown_group' },
  { name: 'group_join without an invite', frame: { t: 'group_join', group: 'guild' }, code: 'not_found' },
  { name: 'group_leave of a group one is not in', frame: { t: 'group_leave', group: 'guild' }, code: 'not_group_member' },
  { name: 'group_leave by the owner', uid: 'owner', frame: { t: 'group_leave', group: 'guild' }, code: 'forbidden' },
  { name: 'group_invites of a group one is not in', frame: { t: 'group_invites', group: 'guild' }, code: 'not_group_member' },
  { name: 'group_invites with a cursor that is a number', frame: { t: 'group_invites', cursor: 7 }, code: 'bad_frame' },
  { name: 'group_invites with limit 0', frame: { t: 'group_invites', limit: 0 }, code: 'bad_frame' },
];

describe('hostile chat frames', () => {
  it.each(FRAME_CASES)('$name → $code', async ({ uid, frame, code }) => {
    const c = await connect(uid ?? 'hostile');
    const from = c.frames.length;
    c.sendRaw(Buffer.from(encodeStandardMsgpack(frame)), true);
    const error = await c.next((f) => f.t === 'error', 10_000, from);
    expect(error.code).toBe(code);
    expect(typeof error.message).toBe('string');
    expect(c.closeCode).toBeNull();
    c.close();
    await expectHealthyStillWorks();
  });

  it('private messages beyond the per-user rate are refused with rate_limited, and nothing is stored for them', async () => {
    const c = await connect('chatty');
    for (let i = 0; i < 5; i++) c.send({ t: 'pm', to: 'bob', id: `r-${i}`, text: `msg ${i}` });
    await c.until(() => (c.frames.filter((f) => f.t === 'sent' || f.t === 'error').length === 5 ? true : undefined), 10_000, 'five answers');
    expect(c.frames.filter((f) => f.t === 'sent')).toHaveLength(3);
    expect(c.frames.filter((f) => f.t === 'error').map((f) => f.code)).toEqual(['rate_limited', 'rate_limited']);
    const bob = await connect('bob');
    bob.send({ t: 'sync' });
    expect((await bob.next((f) => f.t === 'synced')).lastSeq).toBe(3);
    for (const client of [c, bob]) client.close();
    await expectHealthyStillWorks();
  });
});

describe('hostile chat HTTP requests', () => {
  const cases: Array<{ name: string; method: string; path: string; body?: unknown; viewer?: string; status: number; code: string }> = [
    { name: 'a viewer sending a private message for someone', method: 'POST', path: '/v1/private-messages', body: { from: 'a', to: 'b', id: '1', text: 'x' }, viewer: 'v', status: 403, code: 'forbidden' },
    { name: 'a private message without from', method: 'POST', path: '/v1/private-messages', body: { to: 'b', id: '1', text: 'x' }, status: 400, code: 'bad_request' },
    { name: 'a private message with a bad recipient', method: 'POST', path: '/v1/private-messages', body: { from: 'a', to: 'b c', id: '1', text: 'x' }, status: 400, code: 'bad_request' },
    { name: 'a private message without an id', method: 'POST', path: '/v1/private-messages', body: { from: 'a', to: 'b', text: 'x' }, status: 400, code: 'bad_request' },
    { name: 'a private message with text that is a number', method: 'POST', path: '/v1/private-messages', body: { from: 'a', to: 'b', id: '1', text: 5 }, status: 400, code: 'bad_request' },
    { name: 'a private message over the length limit', method: 'POST', path: '/v1/private-messages', body: { from: 'a', to: 'b', id: '1', text: 'x'.repeat(501) }, status: 400, code: 'text_too_long' },
    { name: 'reading the private message endpoint', method: 'GET', path: '/v1/private-messages', status: 405, code: 'method_not_allowed' },
    { name: 'a group id with a dot', method: 'PUT', path: '/v1/groups/a.b', body: { owner: 'o' }, status: 400, code: 'bad_group' },
    { name: 'a group without an owner', method: 'PUT', path: '/v1/groups/g-new', body: {}, status: 400, code: 'bad_request' },
    { name: 'a group with members that are not a list', method: 'PUT', path: '/v1/groups/g-new', body: { owner: 'o', members: 'all' }, status: 400, code: 'bad_request' },
    { name: 'an existing group', method: 'PUT', path: '/v1/groups/guild', body: { owner: 'o' }, status: 409, code: 'group_exists' },
    { name: 'an unknown group', method: 'GET', path: '/v1/groups/nowhere', status: 404, code: 'unknown_group' },
    { name: 'a viewer reading a group it is not in', method: 'GET', path: '/v1/groups/guild', viewer: 'outsider', status: 403, code: 'not_group_member' },
    { name: 'a member adding members', method: 'POST', path: '/v1/groups/guild/members', body: { uids: ['z'] }, viewer: 'member', status: 403, code: 'forbidden' },
    { name: 'adding with an unknown role', method: 'POST', path: '/v1/groups/guild/members', body: { uids: ['z'], role: 'god' }, status: 400, code: 'bad_request' },
    { name: 'adding an empty list', method: 'POST', path: '/v1/groups/guild/members', body: { uids: [] }, status: 400, code: 'bad_request' },
    { name: 'removing the owner', method: 'DELETE', path: '/v1/groups/guild/members/owner', status: 403, code: 'forbidden' },
    { name: 'removing an invalid uid', method: 'DELETE', path: '/v1/groups/guild/members/a%20b', status: 400, code: 'bad_request' },
    { name: 'a member page limit of 0', method: 'GET', path: '/v1/groups/guild/members?limit=0', status: 400, code: 'bad_request' },
    { name: 'a member cursor that is not a number', method: 'GET', path: '/v1/groups/guild/members?cursor=abc', status: 400, code: 'bad_request' },
    { name: 'a group message from a non-member', method: 'POST', path: '/v1/groups/guild/messages', body: { from: 'outsider', id: '1', text: 'x' }, status: 403, code: 'not_group_member' },
    { name: 'a group message from a viewer', method: 'POST', path: '/v1/groups/guild/messages', body: { from: 'member', id: '1', text: 'x' }, viewer: 'member', status: 403, code: 'forbidden' },
    { name: 'joining without an invite', method: 'POST', path: '/v1/groups/guild/join', viewer: 'outsider', status: 404, code: 'not_found' },
    { name: 'a backend joining without naming the uid', method: 'POST', path: '/v1/groups/guild/join', body: {}, status: 400, code: 'bad_request' },
    { name: 'a backend listing invites without naming the uid', method: 'GET', path: '/v1/group-invites', status: 400, code: 'bad_request' },
    { name: 'a viewer listing the invites of a group it is not in', method: 'GET', path: '/v1/groups/guild/invites', viewer: 'outsider', status: 403, code: 'not_group_member' },
    { name: 'an invite page cursor that is not a number', method: 'GET', path: '/v1/groups/guild/invites?cursor=abc', status: 400, code: 'bad_request' },
  ];

  it.each(cases)('$name → $status $code', async ({ method, path, body, viewer, status, code }) => {
    const response = await cluster.api(method, path, body, viewer ? await cluster.token(viewer) : undefined);
    expect(response.status).toBe(status);
    expect(response.body.error.code).toBe(code);
    await expectHealthyStillWorks();
  });
});
