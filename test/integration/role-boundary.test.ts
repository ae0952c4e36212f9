/**
 * The role boundary, cell by cell: role × the token's `rooms` claim × action, over WebSocket and the
 * HTTP API, each answered as docs/protocol.md (6.6) and the README's HTTP table say. A streamer or
 * moderator is staff only in the rooms its token names; elsewhere it is a viewer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/shared/protocol/frames.js';
import { startCluster, TEST_API_KEY, type Cluster } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';

const OWN = 'own-room';
const OTHER = 'other-room';

type Principal = 'viewer' | 'streamer' | 'moderator' | 'admin' | 'backend';
const PEOPLE: Array<Exclude<Principal, 'backend'>> = ['viewer', 'streamer', 'moderator', 'admin'];

let cluster: Cluster;
const credentials = new Map<Principal, string>();
const sockets = new Map<Principal, WsTestClient>();
let nextId = 0;

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 1, roomServices: 1,
    env: { ROOMCAST_SEND_RATE_PER_SEC: '1000', ROOMCAST_SEND_BURST: '1000' },
  });
  for (const room of [OWN, OTHER, 'guarded']) await cluster.createRoom(room);
  credentials.set('backend', TEST_API_KEY);
  for (const role of PEOPLE) {
    // Streamers and moderators moderate OWN (and 'guarded') only; viewers and admins carry no claim.
    const rooms = role === 'streamer' || role === 'moderator' ? { rooms: [OWN, 'guarded'] } : {};
    const token = await cluster.token(`${role}-1`, role as Role, rooms);
    credentials.set(role, token);
    const socket = await WsTestClient.connect(cluster.gateways[0]!.url, { token });
    for (const room of [OWN, OTHER]) {
      socket.send({ t: 'join', room });
      await socket.next((f) => f.t === 'joined' && f.room === room);
    }
    sockets.set(role, socket);
  }
  // A message in each room for the delete cells.
  for (const room of [OWN, OTHER]) await cluster.api('POST', `/v1/rooms/${room}/messages`, { kind: 'system', text: 'seed' });
});

afterAll(async () => {
  for (const socket of sockets.values()) socket.close();
  await cluster?.stop();
});

/** What a WebSocket send answers: `ack` or the error code. */
async function wsSend(who: Exclude<Principal, 'backend'>, room: string, kind: string, text = 'hello'): Promise<string> {
  const socket = sockets.get(who)!;
  const id = `m-${nextId++}`;
  socket.send({ t: 'send', room, id, text, kind });
  const answer = await socket.next((f) => (f.t === 'ack' || f.t === 'error') && f.id === id);
  return answer.t === 'ack' ? 'ack' : String(answer.code);
}

const SENDABLE: Record<Exclude<Principal, 'backend'>, { own: string[]; other: string[] }> = {
  viewer: { own: ['chat'], other: ['chat'] },
  streamer: { own: ['chat', 'streamer'], other: ['chat'] },
  moderator: { own: ['chat', 'moderator'], other: ['chat'] },
  admin: { own: ['chat', 'streamer', 'moderator', 'system'], other: ['chat', 'streamer', 'moderator', 'system'] },
};
const KINDS = ['chat', 'streamer', 'moderator', 'system', 'gift', 'retract'];

const sendCells = PEOPLE.flatMap((who) => (['own', 'other'] as const).flatMap((where) =>
  KINDS.map((kind) => ({ who, where, kind, expected: SENDABLE[who][where].includes(kind) ? 'ack' : 'forbidden' }))));

describe('sending over WebSocket', () => {
  it.each(sendCells)('a $who sends $kind in its $where room → $expected', async ({ who, where, kind, expected }) => {
    expect(await wsSend(who, where === 'own' ? OWN : OTHER, kind)).toBe(expected);
  });

  it('a streamer is exempt from mutes and slow mode in its own rooms only', async () => {
    for (const room of ['guarded', OTHER]) {
      expect((await cluster.api('PUT', `/v1/rooms/${room}/mutes/streamer-1`, { durationMs: 60_000 })).status).toBe(200);
    }
    const socket = sockets.get('streamer')!;
    socket.send({ t: 'join', room: 'guarded' });
    await socket.next((f) => f.t === 'joined' && f.room === 'guarded');
    expect(await wsSend('streamer', 'guarded', 'chat')).toBe('ack');
    expect(await wsSend('streamer', OTHER, 'chat')).toBe('muted');
    expect((await cluster.api('DELETE', `/v1/rooms/${OTHER}/mutes/streamer-1`)).status).toBe(200);

    expect((await cluster.api('PUT', `/v1/rooms/${OTHER}/slow-mode`, { intervalMs: 60_000 })).status).toBe(200);
    expect((await cluster.api('PUT', '/v1/rooms/guarded/slow-mode', { intervalMs: 60_000 })).status).toBe(200);
    expect(await wsSend('streamer', OTHER, 'chat')).toBe('ack');
    expect(await wsSend('streamer', OTHER, 'chat')).toBe('slow_mode');
    expect(await wsSend('streamer', 'guarded', 'chat')).toBe('ack');
    expect(await wsSend('streamer', 'guarded', 'chat')).toBe('ack');
    for (const room of [OTHER, 'guarded']) expect((await cluster.api('PUT', `/v1/rooms/${room}/slow-mode`, { intervalMs: 0 })).status).toBe(200);
  });

  it('anyone may read history over WebSocket, in any room', async () => {
    for (const who of PEOPLE) {
      const socket = sockets.get(who)!;
      socket.send({ t: 'history', room: OTHER, limit: 1 });
      expect((await socket.next((f) => f.t === 'history' && f.room === OTHER)).msgs).toHaveLength(1);
    }
  });
});

/** What a `moderate` frame answers: `moderated` or the error code. */
async function wsModerate(who: Exclude<Principal, 'backend'>, room: string, action: string, params: Record<string, unknown>): Promise<string> {
  const socket = sockets.get(who)!;
  const id = `mod-${nextId++}`;
  socket.send({ t: 'moderate', room, id, action, ...params });
  const answer = await socket.next((f) => (f.t === 'moderated' || f.t === 'error') && f.id === id);
  return answer.t === 'moderated' ? 'moderated' : String(answer.code);
}

/** A fresh message to delete or pin, so that no cell depends on another. */
async function freshSeq(room: string): Promise<number> {
  const response = await cluster.api('POST', `/v1/rooms/${room}/messages`, { kind: 'system', text: 'to moderate' });
  expect(response.status).toBe(201);
  return response.body.seq;
}

const MODERATION: Array<{ action: string; params: (room: string) => Promise<Record<string, unknown>> }> = [
  { action: 'mute', params: async () => ({ uid: 'target-3', durationMs: 1000 }) },
  { action: 'unmute', params: async () => ({ uid: 'target-3' }) },
  { action: 'ban', params: async () => ({ uid: 'target-4', durationMs: 1000 }) },
  { action: 'unban', params: async () => ({ uid: 'target-4' }) },
  { action: 'delete', params: async (room) => ({ seq: await freshSeq(room) }) },
  { action: 'pin', params: async (room) => ({ seq: await freshSeq(room) }) },
  { action: 'unpin', params: async () => ({}) },
  { action: 'slow_mode', params: async () => ({ intervalMs: 0 }) },
  { action: 'list', params: async () => ({}) },
];

const moderationCells = PEOPLE.flatMap((who) => (['own', 'other'] as const).flatMap((where) => MODERATION.map(({ action, params }) => ({
  who, where, action, params, expected: who === 'admin' || (where === 'own' && who !== 'viewer') ? 'moderated' : 'forbidden',
}))));

describe('moderating over WebSocket, with exactly the HTTP API\'s rules', () => {
  it.each(moderationCells)('a $who may $action in its $where room → $expected', async ({ who, where, action, params, expected }) => {
    const room = where === 'own' ? OWN : OTHER;
    // Unpinning needs a pin in place: a backend pins first, so the cell tests the permission only.
    if (action === 'unpin') expect((await cluster.api('PUT', `/v1/rooms/${room}/pin`, { seq: await freshSeq(room) })).status).toBe(200);
    expect(await wsModerate(who, room, action, await params(room))).toBe(expected);
  });
});

/** HTTP actions; `status` per principal for the own and the other room. */
interface HttpAction {
  name: string;
  request: (room: string) => { method: string; path: string; body?: unknown };
  ok: number;
  /** Who may do it in the own room; in the other room only admins and backends may (or everyone, for reads). */
  own: Principal[];
  other: Principal[];
}

const STAFF_OWN: Principal[] = ['streamer', 'moderator', 'admin', 'backend'];
const TRUSTED: Principal[] = ['admin', 'backend'];
const EVERYONE: Principal[] = ['viewer', 'streamer', 'moderator', 'admin', 'backend'];

const HTTP_ACTIONS: HttpAction[] = [
  { name: 'mute', request: (room) => ({ method: 'PUT', path: `/v1/rooms/${room}/mutes/target-1`, body: { durationMs: 1000 } }), ok: 200, own: STAFF_OWN, other: TRUSTED },
  { name: 'unmute', request: (room) => ({ method: 'DELETE', path: `/v1/rooms/${room}/mutes/target-1` }), ok: 200, own: STAFF_OWN, other: TRUSTED },
  { name: 'ban', request: (room) => ({ method: 'PUT', path: `/v1/rooms/${room}/bans/target-2`, body: { durationMs: 1000 } }), ok: 200, own: STAFF_OWN, other: TRUSTED },
  { name: 'unban', request: (room) => ({ method: 'DELETE', path: `/v1/rooms/${room}/bans/target-2` }), ok: 200, own: STAFF_OWN, other: TRUSTED },
  { name: 'delete a message', request: (room) => ({ method: 'DELETE', path: `/v1/rooms/${room}/messages/1` }), ok: 200, own: STAFF_OWN, other: TRUSTED },
  { name: 'set slow mode', request: (room) => ({ method: 'PUT', path: `/v1/rooms/${room}/slow-mode`, body: { intervalMs: 0 } }), ok: 200, own: STAFF_OWN, other: TRUSTED },
  { name: 'list mutes and bans', request: (room) => ({ method: 'GET', path: `/v1/rooms/${room}/moderation` }), ok: 200, own: STAFF_OWN, other: TRUSTED },
  { name: 'read history', request: (room) => ({ method: 'GET', path: `/v1/rooms/${room}/messages?limit=1` }), ok: 200, own: EVERYONE, other: EVERYONE },
  { name: 'read the room', request: (room) => ({ method: 'GET', path: `/v1/rooms/${room}` }), ok: 200, own: EVERYONE, other: EVERYONE },
  { name: 'create or update the room', request: (room) => ({ method: 'PUT', path: `/v1/rooms/${room}`, body: {} }), ok: 200, own: ['streamer', 'admin', 'backend'], other: TRUSTED },
  { name: 'publish a gift', request: (room) => ({ method: 'POST', path: `/v1/rooms/${room}/messages`, body: { kind: 'gift', text: '', data: { gift: 'rose' } } }), ok: 201, own: TRUSTED, other: TRUSTED },
];

const httpCells = HTTP_ACTIONS.flatMap((action) => EVERYONE.flatMap((who) => (['own', 'other'] as const).map((where) => {
  const allowed = action[where].includes(who);
  return { action, who, where, name: action.name, expected: allowed ? action.ok : 403 };
})));

describe('the HTTP API', () => {
  it.each(httpCells)('a $who may $name in its $where room → $expected', async ({ action, who, where, expected }) => {
    const { method, path, body } = action.request(where === 'own' ? OWN : OTHER);
    const response = await cluster.api(method, path, body, credentials.get(who));
    expect(response.status).toBe(expected);
    if (expected === 403) expect(response.body.error.code).toBe('forbidden');
  });
});
