/**
 * Moderation and pins end to end, over real WebSocket clients and the HTTP API: viewers and the
 * streamer's console on two gateways, real NATS and Redis (and the embedded all-in-one mode).
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoomcastClient, type WebSocketConstructor } from '../../src/client/roomcast-client.js';
import type { NoticeFrame, RoomMessage } from '../../src/shared/protocol/frames.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/latch.js';
import { WsTestClient, type AnyFrame } from '../helpers/ws-client.js';

const ENV = { ROOMCAST_SEND_RATE_PER_SEC: '1000', ROOMCAST_SEND_BURST: '1000', ROOMCAST_FRAME_BURST: '1000', ROOMCAST_VIEWER_INTERVAL_MS: '200' };
const ROOMS = ['stage', 'stage-http', 'guarded', 'slow', 'counted', 'elsewhere', 'sdk-room'];

describe.each([
  { mode: 'distributed' as const, roomServices: 2 },
  { mode: 'embedded' as const, roomServices: 1 },
])('moderation and pins ($mode)', ({ mode, roomServices }) => {
  let cluster: Cluster;
  const clients: WsTestClient[] = [];
  const sdkClients: RoomcastClient[] = [];
  let requestIds = 0;

  const sdk = async (gateway: number, uid: string, role: 'viewer' | 'streamer' = 'viewer', rooms?: string[]): Promise<RoomcastClient> => {
    const client = new RoomcastClient({
      url: cluster.gateways[gateway]!.url, token: await cluster.token(uid, role, rooms ? { rooms } : {}),
      WebSocket: WebSocket as unknown as WebSocketConstructor, requestTimeoutMs: 5000,
    });
    sdkClients.push(client);
    await client.connect();
    return client;
  };

  const connect = async (gateway: number, uid: string, role: 'viewer' | 'streamer' | 'moderator' | 'admin' = 'viewer', rooms?: string[], device?: string) => {
    const token = await cluster.token(uid, role, { ...(rooms ? { rooms } : {}), ...(device ? { device } : {}) });
    const client = await WsTestClient.connect(cluster.gateways[gateway]!.url, { token });
    clients.push(client);
    await client.next((f) => f.t === 'welcome');
    return client;
  };

  const join = async (client: WsTestClient, room: string): Promise<AnyFrame> => {
    const from = client.frames.length;
    client.send({ t: 'join', room });
    const answer = await client.next((f) => (f.t === 'joined' || f.t === 'error') && f.room === room, 10_000, from);
    expect(answer.t).toBe('joined');
    return answer;
  };

  const sendChat = async (client: WsTestClient, room: string, text: string): Promise<number> => {
    const id = `chat-${++requestIds}`;
    client.send({ t: 'send', room, id, text });
    const answer = await client.next((f) => (f.t === 'ack' || f.t === 'error') && f.id === id);
    expect(answer.t).toBe('ack');
    return answer.seq as number;
  };

  /** Sends a moderate frame and answers the `moderated` or `error` frame with its id. */
  const moderate = async (client: WsTestClient, room: string, action: string, params: Record<string, unknown> = {}): Promise<AnyFrame> => {
    const id = `mod-${++requestIds}`;
    client.send({ t: 'moderate', room, id, action, ...params });
    return client.next((f) => (f.t === 'moderated' || f.t === 'error') && f.id === id);
  };

  const liveMessage = (client: WsTestClient, room: string, match: (m: RoomMessage) => boolean): Promise<RoomMessage> =>
    client.until(() => client.frames.filter((f) => f.t === 'messages' && f.room === room).flatMap((f) => f.msgs as RoomMessage[]).find(match), 10_000, 'a live message');

  beforeAll(async () => {
    cluster = await startCluster({ mode, gateways: 2, roomServices, env: ENV });
    for (const room of ROOMS) await cluster.createRoom(room);
  });

  afterAll(async () => {
    for (const client of [...clients, ...sdkClients]) client.close();
    await cluster?.stop();
  });

  it('a pin reaches the viewers as a pin message and a notice, shows in joined on both gateways, and a delete of the pinned message unpins it', async () => {
    const viewer = await connect(0, 'pin-viewer');
    const remote = await connect(1, 'pin-remote');
    await join(viewer, 'stage');
    await join(remote, 'stage');
    const streamer = await connect(1, 'pin-streamer', 'streamer', ['stage']);
    const seq = await sendChat(viewer, 'stage', 'pin me please');

    const answer = await moderate(streamer, 'stage', 'pin', { seq });
    expect(answer).toMatchObject({ t: 'moderated', room: 'stage', action: 'pin' });
    const pinSeq = answer.seq as number;
    expect(pinSeq).toBeGreaterThan(seq);
    for (const client of [viewer, remote]) {
      const pin = await liveMessage(client, 'stage', (m) => m.seq === pinSeq);
      expect(pin).toMatchObject({ kind: 'pin', prio: 1, uid: 'pin-streamer', text: 'pin me please', target: seq, data: { from: 'pin-viewer', kind: 'chat' } });
      expect(await client.next((f) => f.t === 'notice' && f.code === 'pinned')).toMatchObject({ room: 'stage', text: 'pin-streamer pinned a message' });
    }
    const original = viewer.messages('stage').find((m) => m.seq === seq)!;
    expect(original).toMatchObject({ uid: 'pin-viewer', text: 'pin me please' });

    // Later joiners: one on a gateway that holds the room already, one on a gateway that opens it from the store.
    const lateHere = await connect(0, 'pin-late-here');
    expect((await join(lateHere, 'stage')).pinned).toEqual(original);
    const opener = await connect(1, 'pin-opener');
    await join(opener, 'elsewhere');
    remote.send({ t: 'leave', room: 'stage' });
    await remote.next((f) => f.t === 'left' && f.room === 'stage');
    await eventually(async () => (await cluster.subscriptionCount('room.stage')) === 1, { what: 'gateway 1 has left room.stage' });
    expect((await join(opener, 'stage')).pinned).toEqual(original);
    expect((await cluster.api('GET', '/v1/rooms/stage')).body.pinned).toEqual(original);

    // Withdrawing the pinned message: a retract, then an unpin, and the pin is gone for new joiners.
    const deleted = await moderate(streamer, 'stage', 'delete', { seq });
    expect(deleted).toMatchObject({ t: 'moderated', action: 'delete' });
    const retract = await liveMessage(viewer, 'stage', (m) => m.kind === 'retract' && m.target === seq);
    expect(retract.seq).toBe(deleted.seq);
    const unpin = await liveMessage(viewer, 'stage', (m) => m.kind === 'unpin');
    expect(unpin).toMatchObject({ seq: retract.seq + 1, target: seq, prio: 1, uid: 'pin-streamer' });
    await viewer.next((f) => f.t === 'notice' && f.code === 'unpinned' && f.room === 'stage');
    expect((await join(await connect(0, 'pin-after'), 'stage')).pinned).toBeUndefined();
    expect((await cluster.api('GET', '/v1/rooms/stage')).body.pinned).toBeUndefined();
  });

  it('pins over HTTP: PUT and DELETE /pin, with the same rules as over WebSocket', async () => {
    const viewer = await connect(0, 'http-pin-viewer');
    await join(viewer, 'stage-http');
    const seq = await sendChat(viewer, 'stage-http', 'pinned by the console');
    const console = await cluster.token('http-mod', 'moderator', { rooms: ['stage-http'] });

    const pinned = await cluster.api('PUT', '/v1/rooms/stage-http/pin', { seq }, console);
    expect(pinned.status).toBe(200);
    expect(pinned.body.pinned).toMatchObject({ seq, uid: 'http-pin-viewer', kind: 'chat', text: 'pinned by the console' });
    const pin = await liveMessage(viewer, 'stage-http', (m) => m.seq === pinned.body.seq);
    expect(pin).toMatchObject({ kind: 'pin', uid: 'http-mod', target: seq });
    expect((await cluster.api('GET', '/v1/rooms/stage-http')).body.pinned).toEqual(pinned.body.pinned);

    // A pin message itself cannot be pinned; a seq the room does not have is not found.
    expect(await cluster.api('PUT', '/v1/rooms/stage-http/pin', { seq: pin.seq }, console)).toMatchObject({ status: 400, body: { error: { code: 'bad_request' } } });
    expect(await cluster.api('PUT', '/v1/rooms/stage-http/pin', { seq: 99_999 }, console)).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await cluster.api('PUT', '/v1/rooms/stage-http/pin', {}, console)).toMatchObject({ status: 400, body: { error: { code: 'bad_request' } } });
    expect((await cluster.api('PUT', '/v1/rooms/stage-http/pin', { seq }, await cluster.token('v'))).status).toBe(403);

    const unpinned = await cluster.api('DELETE', '/v1/rooms/stage-http/pin', undefined, console);
    expect(unpinned.status).toBe(200);
    expect(await liveMessage(viewer, 'stage-http', (m) => m.seq === unpinned.body.seq)).toMatchObject({ kind: 'unpin', target: seq });
    expect((await cluster.api('GET', '/v1/rooms/stage-http')).body.pinned).toBeUndefined();
    expect(await cluster.api('DELETE', '/v1/rooms/stage-http/pin', undefined, console)).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
  });

  it('only a streamer or moderator of the room (or an admin) may moderate over WebSocket', async () => {
    const streamerElsewhere = await connect(0, 'other-streamer', 'streamer', ['elsewhere']);
    const viewer = await connect(0, 'plain-viewer');
    for (const client of [streamerElsewhere, viewer]) {
      const answer = await moderate(client, 'guarded', 'mute', { uid: 'someone' });
      expect(answer).toMatchObject({ t: 'error', code: 'forbidden', room: 'guarded', ref: 'moderate' });
      expect(typeof answer.id).toBe('string');
    }
    expect((await cluster.api('GET', '/v1/rooms/guarded/moderation')).body).toEqual({ muted: [], banned: [] });

    const admin = await connect(1, 'the-admin', 'admin');
    expect(await moderate(admin, 'guarded', 'ban', { uid: 'troll', durationMs: 60_000 })).toMatchObject({ t: 'moderated', action: 'ban', room: 'guarded' });
    const moderator = await connect(1, 'guard-mod', 'moderator', ['guarded']);
    const list = await moderate(moderator, 'guarded', 'list');
    expect(list).toMatchObject({ t: 'moderated', action: 'list', muted: [], banned: [{ uid: 'troll' }] });
    expect(list.banned as Array<{ untilMs: number }>).toEqual((await cluster.api('GET', '/v1/rooms/guarded/moderation')).body.banned);
    expect(await moderate(moderator, 'guarded', 'unban', { uid: 'troll' })).toMatchObject({ t: 'moderated', action: 'unban' });
    expect((await moderate(moderator, 'guarded', 'list')).banned).toEqual([]);
    expect(await moderate(admin, 'nowhere', 'list')).toMatchObject({ t: 'error', code: 'unknown_room', room: 'nowhere', ref: 'moderate' });
  });

  it('a mute reaches the muted viewer\'s connections in the room, whose next send is refused as muted; unmute lifts it', async () => {
    const muted = await connect(1, 'loud-viewer');
    await join(muted, 'guarded');
    // A second device of the same user (another device type, so the first stays connected).
    const sameUserOutside = await connect(0, 'loud-viewer', 'viewer', undefined, 'ios');
    await join(sameUserOutside, 'elsewhere');
    const moderator = await connect(0, 'mute-mod', 'moderator', ['guarded']);

    expect(await moderate(moderator, 'guarded', 'mute', { uid: 'loud-viewer', durationMs: 60_000 })).toMatchObject({ t: 'moderated', action: 'mute' });
    const notice = await muted.next((f) => f.t === 'notice' && f.code === 'muted');
    expect(notice).toMatchObject({ room: 'guarded' });
    expect(notice.untilMs as number).toBeGreaterThan(Date.now() + 50_000);
    const id = 'after-mute';
    muted.send({ t: 'send', room: 'guarded', id, text: 'can you hear me' });
    expect(await muted.next((f) => f.t === 'error' && f.id === id)).toMatchObject({ code: 'muted', room: 'guarded', ref: 'send' });
    expect((await moderate(moderator, 'guarded', 'list')).muted).toEqual([{ uid: 'loud-viewer', untilMs: notice.untilMs }]);

    expect(await moderate(moderator, 'guarded', 'unmute', { uid: 'loud-viewer' })).toMatchObject({ t: 'moderated', action: 'unmute' });
    await muted.next((f) => f.t === 'notice' && f.code === 'unmuted' && f.room === 'guarded');
    await sendChat(muted, 'guarded', 'back again');
    // The same user's connection that is not in the room was told nothing (it would have had both by now).
    sameUserOutside.send({ t: 'ping', ts: 1 });
    await sameUserOutside.next((f) => f.t === 'pong');
    expect(sameUserOutside.frames.filter((f) => f.t === 'notice')).toEqual([]);
  });

  it('slow mode on and off is announced to the room\'s viewers on every gateway, and holds viewers to it', async () => {
    const here = await connect(0, 'slow-here');
    const there = await connect(1, 'slow-there');
    const outside = await connect(1, 'slow-outside');
    for (const client of [here, there]) await join(client, 'slow');
    await join(outside, 'elsewhere');
    const streamer = await connect(0, 'slow-streamer', 'streamer', ['slow']);

    expect(await moderate(streamer, 'slow', 'slow_mode', { intervalMs: 10_000 })).toMatchObject({ t: 'moderated', action: 'slow_mode' });
    for (const client of [here, there]) {
      expect(await client.next((f) => f.t === 'notice' && f.code === 'slow_mode')).toEqual({
        t: 'notice', code: 'slow_mode', room: 'slow', intervalMs: 10_000, text: 'Slow mode is on: one message every 10 seconds',
      });
    }
    await sendChat(there, 'slow', 'first');
    there.send({ t: 'send', room: 'slow', id: 'too-soon', text: 'second' });
    expect((await there.next((f) => f.t === 'error' && f.id === 'too-soon')).code).toBe('slow_mode');

    expect(await moderate(streamer, 'slow', 'slow_mode', { intervalMs: 0 })).toMatchObject({ t: 'moderated' });
    for (const client of [here, there]) await client.next((f) => f.t === 'notice' && f.code === 'slow_mode' && f.intervalMs === 0 && f.text === 'Slow mode is off');
    await sendChat(there, 'slow', 'no longer slow');
    // Updating the room's settings over HTTP is announced the same way.
    expect((await cluster.api('PUT', '/v1/rooms/slow', { slowModeMs: 60_000 })).status).toBe(200);
    for (const client of [here, there]) await client.next((f) => f.t === 'notice' && f.code === 'slow_mode' && f.intervalMs === 60_000 && f.text === 'Slow mode is on: one message every 1 minute');
    expect(outside.frames.filter((f) => f.t === 'notice')).toEqual([]);
  });

  it('room_stats answers this gateway\'s figures for a joined room, and not_in_room otherwise', async () => {
    const viewer = await connect(0, 'stats-viewer');
    await join(viewer, 'counted');
    let last = 0;
    for (let i = 0; i < 5; i++) last = await sendChat(viewer, 'counted', `count ${i}`);
    await viewer.until(() => (viewer.messages('counted').some((m) => m.seq === last) ? true : undefined), 10_000, 'the last message');
    const seq = await sendChat(viewer, 'counted', 'pin this');
    const moderator = await connect(0, 'stats-mod', 'moderator', ['counted']);
    const pinSeq = (await moderate(moderator, 'counted', 'pin', { seq })).seq as number;
    await liveMessage(viewer, 'counted', (m) => m.seq === pinSeq);

    viewer.send({ t: 'room_stats', room: 'counted' });
    const stats = await viewer.next((f) => f.t === 'room_stats');
    expect(stats).toMatchObject({
      room: 'counted', seq: pinSeq, delivered: 7, sampled: 0,
      dropped: { backpressure: 0, gap_unrecoverable: 0, duplicate: 0 },
      pinned: { seq, text: 'pin this', uid: 'stats-viewer' },
    });
    expect(stats.viewers).toBeGreaterThanOrEqual(1);
    expect(typeof stats.msgsPerSec).toBe('number');
    expect(stats.msgsPerSec).toBeGreaterThanOrEqual(0);

    moderator.send({ t: 'room_stats', room: 'counted' });
    expect(await moderator.next((f) => f.t === 'error')).toMatchObject({ code: 'not_in_room', room: 'counted', ref: 'room_stats' });
  });

  it('malformed or refused moderate frames answer errors that carry id, room and ref', async () => {
    const moderator = await connect(0, 'strict-mod', 'moderator', ['guarded']);
    const cases: Array<{ frame: Record<string, unknown>; code: string; room?: string }> = [
      { frame: { action: 'shout' }, code: 'bad_frame', room: 'guarded' },
      { frame: {}, code: 'bad_frame', room: 'guarded' },
      { frame: { action: 'mute', uid: 42 }, code: 'bad_frame', room: 'guarded' },
      { frame: { action: 'delete', seq: -1 }, code: 'bad_frame', room: 'guarded' },
      { frame: { action: 'mute', room: 'bad.room' }, code: 'bad_room', room: 'bad.room' },
      { frame: { action: 'mute' }, code: 'bad_request', room: 'guarded' },
      { frame: { action: 'mute', uid: 'a b' }, code: 'bad_request', room: 'guarded' },
      { frame: { action: 'ban', uid: 'x', durationMs: 0 }, code: 'bad_request', room: 'guarded' },
      { frame: { action: 'mute', uid: 'x', durationMs: 366 * 24 * 3600 * 1000 }, code: 'bad_request', room: 'guarded' },
      { frame: { action: 'slow_mode' }, code: 'bad_request', room: 'guarded' },
      { frame: { action: 'slow_mode', intervalMs: 3_600_001 }, code: 'bad_request', room: 'guarded' },
      { frame: { action: 'delete' }, code: 'bad_request', room: 'guarded' },
      { frame: { action: 'delete', seq: 99_999 }, code: 'not_found', room: 'guarded' },
      { frame: { action: 'pin', seq: 99_999 }, code: 'not_found', room: 'guarded' },
      { frame: { action: 'unpin' }, code: 'not_found', room: 'guarded' },
    ];
    for (const [i, testCase] of cases.entries()) {
      const id = `bad-${i}`;
      moderator.send({ t: 'moderate', room: 'guarded', id, ...testCase.frame });
      const error = await moderator.next((f) => f.t === 'error' && f.id === id);
      expect(error, JSON.stringify(testCase.frame)).toMatchObject({ code: testCase.code, ref: 'moderate' });
      expect(error.room, JSON.stringify(testCase.frame)).toBe(testCase.room);
    }
    // An id that is not readable cannot be echoed; the rest still is.
    moderator.send({ t: 'moderate', room: 'guarded', id: '', action: 'list' });
    expect(await moderator.next((f) => f.t === 'error' && f.code === 'bad_frame' && f.id === undefined)).toMatchObject({ room: 'guarded', ref: 'moderate' });
    expect(moderator.closeCode).toBeNull();
  });

  it('the TypeScript SDK moderates, follows the pin and reads room_stats against the real server', async () => {
    const viewer = await sdk(0, 'sdk-viewer');
    const pins: Array<RoomMessage | null> = [];
    const notices: NoticeFrame[] = [];
    viewer.on('pinned', (room, message) => { if (room === 'sdk-room') pins.push(message); });
    viewer.on('notice', (notice) => notices.push(notice));
    await viewer.join('sdk-room');
    const streamer = await sdk(1, 'sdk-streamer', 'streamer', ['sdk-room']);
    const { seq } = await viewer.send('sdk-room', 'from the SDK');

    const pinned = await streamer.pin('sdk-room', seq);
    expect(pinned).toMatchObject({ t: 'moderated', room: 'sdk-room', action: 'pin' });
    await eventually(() => pins.some((m) => m?.seq === seq), { what: 'the pinned event' });
    expect(pins.at(-1)).toMatchObject({ seq, uid: 'sdk-viewer', kind: 'chat', text: 'from the SDK' });
    await eventually(() => notices.some((n) => n.code === 'pinned' && n.room === 'sdk-room'), { what: 'the pinned notice' });

    const late = await sdk(1, 'sdk-late');
    const latePins: Array<RoomMessage | null> = [];
    late.on('pinned', (_room, message) => latePins.push(message));
    expect((await late.join('sdk-room')).pinned).toMatchObject({ seq, text: 'from the SDK' });
    await eventually(() => latePins.length > 0, { what: 'the pinned event of a join' });
    expect(latePins[0]).toMatchObject({ seq });

    const stats = await viewer.roomStats('sdk-room');
    expect(stats).toMatchObject({ t: 'room_stats', room: 'sdk-room', pinned: { seq } });
    expect(stats.seq).toBe(pinned.seq);
    await streamer.mute('sdk-room', 'sdk-late', 60_000);
    expect((await streamer.moderationLists('sdk-room')).muted.map((entry) => entry.uid)).toEqual(['sdk-late']);
    await expect(viewer.mute('sdk-room', 'sdk-late')).rejects.toMatchObject({ code: 'forbidden' });

    const unpinned = await streamer.unpin('sdk-room');
    await eventually(() => pins.at(-1) === null, { what: 'the unpinned event' });
    expect(viewer.state).toBe('open');
    expect(unpinned.seq).toBeGreaterThan(pinned.seq!);
  });
});
