/**
 * Malformed and hostile input, over real sockets: each case gets its documented error code or close
 * code, and a healthy client on the same gateway keeps working throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode as encodeStandardMsgpack } from '@msgpack/msgpack';
import { SignJWT } from 'jose';
import { signToken } from '../../src/shared/auth.js';
import { startCluster, TEST_SECRET, type Cluster } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';

let cluster: Cluster;
let healthy: WsTestClient;
let url: string;
let healthySeq = 0;

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 1, roomServices: 1,
    env: {
      ROOMCAST_SEND_BURST: '3', ROOMCAST_SEND_RATE_PER_SEC: '0.1', ROOMCAST_MAX_ROOMS: '2', ROOMCAST_MAX_FRAME_BYTES: '4096',
      // The healthy client pings after every case; the frame limit must leave it that much room.
      ROOMCAST_FRAME_RATE_PER_SEC: '100', ROOMCAST_FRAME_BURST: '100',
    },
  });
  url = cluster.gateways[0]!.url;
  for (const room of ['open', 'other', 'third', 'slow', 'guarded']) await cluster.createRoom(room);
  healthy = await WsTestClient.connect(url, { token: await cluster.token('healthy') });
  healthy.send({ t: 'join', room: 'open' });
  await healthy.next((f) => f.t === 'joined');
});

afterAll(async () => {
  healthy?.close();
  await cluster?.stop();
});

/** The healthy client's connection is still open and answered. */
async function expectHealthyStillWorks(): Promise<void> {
  const ts = ++healthySeq;
  healthy.send({ t: 'ping', ts });
  await healthy.next((f) => f.t === 'pong' && f.ts === ts);
  expect(healthy.closeCode).toBeNull();
}

async function client(uid = 'hostile'): Promise<WsTestClient> {
  const c = await WsTestClient.connect(url, { token: await cluster.token(uid) });
  await c.next((f) => f.t === 'welcome');
  return c;
}

async function joinedClient(rooms: string[], uid?: string): Promise<WsTestClient> {
  const c = await client(uid);
  for (const room of rooms) {
    c.send({ t: 'join', room });
    await c.next((f) => f.t === 'joined' && f.room === room);
  }
  return c;
}

interface FrameCase {
  name: string;
  rooms?: string[];
  /** An object sent as msgpack, or raw bytes / text. */
  frame?: unknown;
  raw?: { data: Buffer | string; binary: boolean };
  code: string;
  /** What the error must say about the request, so a client can match it (docs 6.13). */
  names?: Record<string, string>;
}

const longRoom = 'r'.repeat(65);
const FRAME_CASES: FrameCase[] = [
  { name: 'bytes that are not msgpack', raw: { data: Buffer.from([0xc1, 0xc1, 0xc1]), binary: true }, code: 'bad_frame' },
  { name: 'truncated msgpack map', raw: { data: Buffer.from([0x82, 0xa1, 0x74]), binary: true }, code: 'bad_frame' },
  { name: 'msgpack array instead of a map', frame: ['join', 'open'], code: 'bad_frame' },
  { name: 'msgpack string instead of a map', frame: 'join', code: 'bad_frame' },
  { name: 'text that is not JSON', raw: { data: '{"t":"join",', binary: false }, code: 'bad_frame' },
  { name: 'JSON array', raw: { data: '["join"]', binary: false }, code: 'bad_frame' },
  { name: 'JSON null', raw: { data: 'null', binary: false }, code: 'bad_frame' },
  { name: 'map without t', frame: { room: 'open' }, code: 'bad_frame' },
  { name: 't is a number', frame: { t: 7 }, code: 'bad_frame' },
  { name: 'unknown type', frame: { t: 'subscribe_all' }, code: 'unknown_type' },
  { name: 'prototype-looking type', frame: { t: '__proto__' }, code: 'unknown_type' },
  { name: 'join without room', frame: { t: 'join' }, code: 'bad_frame' },
  { name: 'join with a subject wildcard as room', frame: { t: 'join', room: 'a.>' }, code: 'bad_room', names: { ref: 'join', room: 'a.>' } },
  { name: 'join with an overlong room id', frame: { t: 'join', room: longRoom }, code: 'bad_room' },
  { name: 'join with a room id that is a number', frame: { t: 'join', room: 12 }, code: 'bad_room' },
  { name: 'join an unknown room', frame: { t: 'join', room: 'nowhere' }, code: 'unknown_room' },
  { name: 'join with a negative lastSeq', frame: { t: 'join', room: 'open', lastSeq: -1 }, code: 'bad_frame' },
  { name: 'join with a string lastSeq', frame: { t: 'join', room: 'open', lastSeq: '5' }, code: 'bad_frame' },
  { name: 'join a room twice', rooms: ['open'], frame: { t: 'join', room: 'open' }, code: 'already_in_room' },
  { name: 'join more rooms than allowed', rooms: ['open', 'other'], frame: { t: 'join', room: 'third' }, code: 'too_many_rooms' },
  { name: 'send without id', rooms: ['open'], frame: { t: 'send', room: 'open', text: 'hi' }, code: 'bad_frame', names: { ref: 'send', room: 'open' } },
  { name: 'send to a malformed room id', frame: { t: 'send', room: 'a b', id: 'm-1', text: 'hi' }, code: 'bad_room', names: { ref: 'send', id: 'm-1', room: 'a b' } },
  { name: 'switch to a malformed room id', rooms: ['open'], frame: { t: 'switch', from: 'open', to: 'x/y' }, code: 'bad_room', names: { ref: 'switch', room: 'x/y' } },
  { name: 'history of a malformed room id', frame: { t: 'history', room: '' }, code: 'bad_room', names: { ref: 'history' } },
  { name: 'pm to a malformed uid', frame: { t: 'pm', to: 'bob smith', id: 'p-1', text: 'hi' }, code: 'bad_frame', names: { ref: 'pm', id: 'p-1' } },
  { name: 'gm to a malformed group id', frame: { t: 'gm', group: 'team 7', id: 'g-1', text: 'hi' }, code: 'bad_group', names: { ref: 'gm', id: 'g-1' } },
  { name: 'send with an overlong id', rooms: ['open'], frame: { t: 'send', room: 'open', id: 'x'.repeat(65), text: 'hi' }, code: 'bad_frame' },
  { name: 'send with text that is not a string', rooms: ['open'], frame: { t: 'send', room: 'open', id: 'a', text: { html: '<b>' } }, code: 'bad_frame' },
  { name: 'send with an unknown kind', rooms: ['open'], frame: { t: 'send', room: 'open', id: 'a', text: 'hi', kind: 'bogus' }, code: 'bad_frame' },
  { name: 'send a gift as a viewer', rooms: ['open'], frame: { t: 'send', room: 'open', id: 'a', text: 'hi', kind: 'gift' }, code: 'forbidden' },
  { name: 'send a system message as a viewer', rooms: ['open'], frame: { t: 'send', room: 'open', id: 'a', text: 'hi', kind: 'system' }, code: 'forbidden' },
  { name: 'send to a room not joined', frame: { t: 'send', room: 'open', id: 'a', text: 'hi' }, code: 'not_in_room' },
  { name: 'send text over the length limit', rooms: ['open'], frame: { t: 'send', room: 'open', id: 'a', text: '字'.repeat(501) }, code: 'text_too_long' },
  { name: 'send empty text', rooms: ['open'], frame: { t: 'send', room: 'open', id: 'a', text: '   ' }, code: 'bad_request' },
  { name: 'leave a room not joined', frame: { t: 'leave', room: 'open' }, code: 'not_in_room' },
  { name: 'switch from a room not joined', frame: { t: 'switch', from: 'open', to: 'other' }, code: 'not_in_room' },
  { name: 'switch to an unknown room', rooms: ['open'], frame: { t: 'switch', from: 'open', to: 'nowhere' }, code: 'unknown_room' },
  { name: 'history with limit 0', frame: { t: 'history', room: 'open', limit: 0 }, code: 'bad_frame' },
  { name: 'history of an unknown room', frame: { t: 'history', room: 'nowhere' }, code: 'unknown_room' },
  { name: 'ping with a string ts', frame: { t: 'ping', ts: 'now' }, code: 'bad_frame' },
  { name: 'moderate without an action', frame: { t: 'moderate', room: 'open', id: 'm' }, code: 'bad_frame' },
  { name: 'moderate with an unknown action', frame: { t: 'moderate', room: 'open', id: 'm', action: 'nuke' }, code: 'bad_frame' },
  { name: 'moderate as a viewer', frame: { t: 'moderate', room: 'open', id: 'm', action: 'ban', uid: 'healthy' }, code: 'forbidden' },
  { name: 'send a pin message', rooms: ['open'], frame: { t: 'send', room: 'open', id: 'a', text: 'hi', kind: 'pin' }, code: 'forbidden' },
  { name: 'room_stats of a room not joined', frame: { t: 'room_stats', room: 'open' }, code: 'not_in_room' },
];

describe('hostile WebSocket frames', () => {
  it.each(FRAME_CASES)('$name → $code', async (testCase) => {
    const c = await joinedClient(testCase.rooms ?? []);
    const from = c.frames.length;
    if (testCase.raw) c.sendRaw(testCase.raw.data, testCase.raw.binary);
    else c.sendRaw(Buffer.from(encodeStandardMsgpack(testCase.frame)), true);
    const error = await c.next((f) => f.t === 'error', 10_000, from);
    expect(error.code).toBe(testCase.code);
    if (testCase.names) expect(error).toMatchObject(testCase.names);
    expect(typeof error.message).toBe('string');
    expect(c.closeCode).toBeNull();
    c.close();
    await expectHealthyStillWorks();
  });

  it('a frame over the size limit gets frame_too_large and close 1009, on that connection only', async () => {
    const c = await client();
    c.sendRaw(Buffer.alloc(8192, 0x61), true);
    expect(await c.closed()).toBe(1009);
    expect(c.frames.at(-1)).toMatchObject({ t: 'error', code: 'frame_too_large' });
    await expectHealthyStillWorks();
  });

  it('a frame the WebSocket layer cannot read (over 4 × the limit, or text that is not UTF-8) drops the connection, as documented', async () => {
    const huge = await client();
    huge.sendRaw(Buffer.alloc(65 * 1024 + 1, 0x61), true);
    expect(await huge.closed()).toBe(1006);
    const notUtf8 = await client();
    notUtf8.sendRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), false);
    expect(await notUtf8.closed()).toBe(1006);
    await expectHealthyStillWorks();
  });

  it('repeated bad frames close the connection with 4000', async () => {
    const c = await client();
    for (let i = 0; i < 12; i++) c.sendRaw(Buffer.from([0xc1]), true);
    expect(await c.closed()).toBe(4000);
    expect(c.frames.some((f) => f.t === 'error' && f.code === 'too_many_errors')).toBe(true);
    await expectHealthyStillWorks();
  });

  it('sending faster than the rate limit is refused with rate_limited, and nothing is stored twice', async () => {
    const c = await joinedClient(['open'], 'fast-talker');
    for (let i = 0; i < 6; i++) c.send({ t: 'send', room: 'open', id: `burst-${i}`, text: `burst ${i}` });
    await c.until(() => (c.frames.filter((f) => f.t === 'ack' || f.t === 'error').length === 6 ? true : undefined), 10_000, 'six answers');
    expect(c.frames.filter((f) => f.t === 'ack').length).toBe(3);
    expect(c.frames.filter((f) => f.t === 'error').map((f) => f.code)).toEqual(['rate_limited', 'rate_limited', 'rate_limited']);
    c.close();
    await expectHealthyStillWorks();
  });

  it('a flood of frames is answered with rate_limited beyond the burst, and the connection stays usable', async () => {
    const c = await client('flooder');
    const flood = 300;
    for (let i = 0; i < flood; i++) c.send({ t: 'ping', ts: i });
    await c.until(() => (c.frames.filter((f) => f.t === 'pong' || f.t === 'error').length === flood ? true : undefined), 10_000, 'an answer to every ping');
    const limited = c.frames.filter((f) => f.t === 'error');
    expect(limited.length).toBeGreaterThan(0);
    for (const error of limited) expect(error).toMatchObject({ code: 'rate_limited', ref: 'ping' });
    expect(c.closeCode).toBeNull();
    c.close();
    await expectHealthyStillWorks();
  });

  it('muted, banned and slow mode give their codes; a ban removes the user from the room', async () => {
    const muted = await joinedClient(['guarded'], 'muted-user');
    expect((await cluster.api('PUT', '/v1/rooms/guarded/mutes/muted-user', { durationMs: 60_000 })).status).toBe(200);
    muted.send({ t: 'send', room: 'guarded', id: 'm1', text: 'can you hear me' });
    expect((await muted.next((f) => f.t === 'error' && f.id === 'm1')).code).toBe('muted');

    const banned = await joinedClient(['guarded'], 'banned-user');
    expect((await cluster.api('PUT', '/v1/rooms/guarded/bans/banned-user', {})).status).toBe(200);
    expect(await banned.next((f) => f.t === 'left' && f.room === 'guarded')).toMatchObject({ reason: 'banned' });
    banned.send({ t: 'join', room: 'guarded' });
    expect((await banned.next((f) => f.t === 'error' && f.ref === 'join')).code).toBe('banned');

    expect((await cluster.api('PUT', '/v1/rooms/slow/slow-mode', { intervalMs: 60_000 })).status).toBe(200);
    const slow = await joinedClient(['slow'], 'slow-user');
    slow.send({ t: 'send', room: 'slow', id: 's1', text: 'first' });
    await slow.next((f) => f.t === 'ack' && f.id === 's1');
    slow.send({ t: 'send', room: 'slow', id: 's2', text: 'second' });
    const refusal = await slow.next((f) => f.t === 'error' && f.id === 's2');
    expect(refusal.code).toBe('slow_mode');
    expect(refusal.retryAfterMs).toBeGreaterThan(50_000);
    expect(refusal.retryAfterMs).toBeLessThanOrEqual(60_000);
    for (const c of [muted, banned, slow]) c.close();
    await expectHealthyStillWorks();
  });
});

describe('hostile connections', () => {
  const unauthorizedCases: Array<{ name: string; token: () => Promise<string | undefined> }> = [
    { name: 'no token', token: async () => undefined },
    { name: 'a token that is not a JWT', token: async () => 'not-a-jwt' },
    { name: 'a token signed with another secret', token: () => signToken({ uid: 'x', role: 'admin', ttlSeconds: 60 }, { secret: 'another-secret-another-secret-another' }) },
    { name: 'an expired token', token: () => signToken({ uid: 'x', role: 'viewer', ttlSeconds: -10 }, { secret: TEST_SECRET }) },
    { name: 'a token without exp', token: () => new SignJWT({ role: 'viewer' }).setProtectedHeader({ alg: 'HS256' }).setSubject('x').sign(new TextEncoder().encode(TEST_SECRET)) },
    { name: 'a token with an unknown role', token: () => signToken({ uid: 'x', role: 'owner' as never, ttlSeconds: 60 }, { secret: TEST_SECRET }) },
    { name: 'a token with an invalid uid', token: () => signToken({ uid: 'a b\u0000', role: 'viewer', ttlSeconds: 60 }, { secret: TEST_SECRET }) },
  ];

  it.each(unauthorizedCases)('$name → error unauthorized and close 4001', async ({ token }) => {
    const value = await token();
    const c = await WsTestClient.connect(url, value === undefined ? {} : { token: value });
    expect(await c.closed()).toBe(4001);
    expect(c.frames).toHaveLength(1);
    expect(c.frames[0]).toMatchObject({ t: 'error', code: 'unauthorized' });
    await expectHealthyStillWorks();
  });

  it('an unsupported subprotocol is refused with HTTP 400', async () => {
    await expect(WsTestClient.connect(url, { token: await cluster.token('x'), protocols: ['mqtt'] })).rejects.toThrow('HTTP 400');
    await expectHealthyStillWorks();
  });

  it('a token in the Authorization header works like one in the query', async () => {
    const c = await WsTestClient.connect(url, { headers: { Authorization: `Bearer ${await cluster.token('header-user')}` } });
    expect(await c.next((f) => f.t === 'welcome')).toMatchObject({ uid: 'header-user', role: 'viewer' });
    c.close();
  });
});

it('after all of it, the healthy client still sends and receives chat', async () => {
  healthy.send({ t: 'send', room: 'open', id: 'healthy-final', text: 'still here' });
  await healthy.next((f) => f.t === 'ack' && f.id === 'healthy-final');
  await healthy.next((f) => f.t === 'messages' && (f.msgs as Array<{ cid?: string }>).some((m) => m.cid === 'healthy-final'));
});

describe('hostile HTTP requests', () => {
  const cases: Array<{ name: string; method: string; path: string; body?: unknown; credential?: () => Promise<string>; status: number; code: string }> = [
    { name: 'no credential', method: 'GET', path: '/v1/rooms/open', credential: async () => '', status: 401, code: 'unauthorized' },
    { name: 'a wrong API key', method: 'GET', path: '/v1/rooms/open', credential: async () => 'wrong-key', status: 401, code: 'unauthorized' },
    { name: 'a viewer creating a room', method: 'PUT', path: '/v1/rooms/mine', credential: () => cluster.token('v'), status: 403, code: 'forbidden' },
    { name: 'a viewer banning someone', method: 'PUT', path: '/v1/rooms/open/bans/x', credential: () => cluster.token('v'), status: 403, code: 'forbidden' },
    { name: 'a streamer moderating a room not theirs', method: 'PUT', path: '/v1/rooms/open/mutes/x', credential: () => cluster.token('s', 'streamer', { rooms: ['other'] }), status: 403, code: 'forbidden' },
    { name: 'a moderator publishing a gift', method: 'POST', path: '/v1/rooms/open/messages', body: { kind: 'gift', text: 'x' }, credential: () => cluster.token('m', 'moderator', { rooms: ['open'] }), status: 403, code: 'forbidden' },
    { name: 'an invalid room id', method: 'GET', path: '/v1/rooms/bad.room', status: 400, code: 'bad_room' },
    { name: 'an unknown room', method: 'GET', path: '/v1/rooms/nowhere', status: 404, code: 'unknown_room' },
    { name: 'a body that is not JSON', method: 'POST', path: '/v1/rooms/open/messages', body: '{"kind":', status: 400, code: 'bad_request' },
    { name: 'a JSON array body', method: 'POST', path: '/v1/rooms/open/messages', body: '[1,2]', status: 400, code: 'bad_request' },
    { name: 'a body over the size limit', method: 'POST', path: '/v1/rooms/open/messages', body: JSON.stringify({ kind: 'system', text: 'x'.repeat(70_000) }), status: 413, code: 'frame_too_large' },
    { name: 'a chat message from a backend', method: 'POST', path: '/v1/rooms/open/messages', body: { kind: 'chat', text: 'x' }, status: 400, code: 'bad_request' },
    { name: 'a priority that is not 0 or 1', method: 'POST', path: '/v1/rooms/open/messages', body: { kind: 'system', text: 'x', priority: 7 }, status: 400, code: 'bad_request' },
    { name: 'a system message with empty text (only a gift may have none)', method: 'POST', path: '/v1/rooms/open/messages', body: { kind: 'system', text: ' ' }, status: 400, code: 'bad_request' },
    { name: 'a gift text over the length limit', method: 'POST', path: '/v1/rooms/open/messages', body: { kind: 'gift', text: 'x'.repeat(501) }, status: 400, code: 'text_too_long' },
    { name: 'a gift into an unknown room', method: 'POST', path: '/v1/rooms/nowhere/messages', body: { kind: 'gift', text: 'x' }, status: 404, code: 'unknown_room' },
    { name: 'deleting a message that does not exist yet', method: 'DELETE', path: '/v1/rooms/open/messages/999999', status: 404, code: 'not_found' },
    { name: 'a negative history limit', method: 'GET', path: '/v1/rooms/open/messages?limit=-5', status: 400, code: 'bad_request' },
    { name: 'an invalid uid to mute', method: 'PUT', path: '/v1/rooms/open/mutes/a%20b', status: 400, code: 'bad_request' },
    { name: 'slow mode without an interval', method: 'PUT', path: '/v1/rooms/open/slow-mode', body: {}, status: 400, code: 'bad_request' },
    { name: 'slow mode over an hour', method: 'PUT', path: '/v1/rooms/open/slow-mode', body: { intervalMs: 3_600_001 }, status: 400, code: 'bad_request' },
    { name: 'a pin without a seq', method: 'PUT', path: '/v1/rooms/open/pin', body: {}, status: 400, code: 'bad_request' },
    { name: 'a pin of a seq the room does not have', method: 'PUT', path: '/v1/rooms/open/pin', body: { seq: 999_999 }, status: 404, code: 'not_found' },
    { name: 'an unpin with nothing pinned', method: 'DELETE', path: '/v1/rooms/open/pin', status: 404, code: 'not_found' },
    { name: 'a viewer pinning', method: 'PUT', path: '/v1/rooms/open/pin', body: { seq: 1 }, credential: () => cluster.token('v'), status: 403, code: 'forbidden' },
    { name: 'a viewer reading the moderation lists', method: 'GET', path: '/v1/rooms/open/moderation', credential: () => cluster.token('v'), status: 403, code: 'forbidden' },
    { name: 'an unknown endpoint', method: 'GET', path: '/v2/everything', status: 404, code: 'not_found' },
    { name: 'a wrong method', method: 'PATCH', path: '/v1/rooms/open', status: 405, code: 'method_not_allowed' },
  ];

  it('one text rule over HTTP and WebSocket: a gift may have empty text, a system message may not', async () => {
    const gift = await cluster.api('POST', '/v1/rooms/open/messages', { kind: 'gift', text: '', data: { gift: 'rose' } });
    expect(gift.status).toBe(201);
    const admin = await WsTestClient.connect(url, { token: await cluster.token('admin-1', 'admin') });
    admin.send({ t: 'join', room: 'open' });
    await admin.next((f) => f.t === 'joined');
    admin.send({ t: 'send', room: 'open', id: 'empty-system', text: '', kind: 'system' });
    expect(await admin.next((f) => f.t === 'error' && f.id === 'empty-system')).toMatchObject({ code: 'bad_request', ref: 'send' });
    admin.close();
  });

  it.each(cases)('$name → $status $code', async ({ method, path, body, credential, status, code }) => {
    const response = await cluster.api(method, path, body, credential ? await credential() : undefined);
    expect(response.status).toBe(status);
    expect(response.body.error.code).toBe(code);
    await expectHealthyStillWorks();
  });
});
