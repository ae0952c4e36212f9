/**
 * The SDK's live-room additions against a scripted WebSocket: the viewer delay (delayMs, setDelay),
 * moderation requests correlated by a generated id, room stats matched by room, the pinned event,
 * and what makes the SDK bundle for browsers. Fake timers drive every delay and the clock.
 */
import { readFileSync } from 'node:fs';
import { dirname, join as joinPath, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RoomcastClient } from '../../src/client/roomcast-client.js';
import type { RoomMessage, RoomStatsFrame } from '../../src/shared/protocol/frames.js';
import { FakeWebSocket, connected, newClient, roomMessage } from '../helpers/fake-web-socket.js';

const T0 = 1_700_000_000_000;
/** A message stamped `tsMs` after T0. */
const at = (seq: number, tsMs: number, extra: Partial<RoomMessage> = {}): RoomMessage => roomMessage(seq, { ts: T0 + tsMs, ...extra });


/** Records 'message' events as `room:seq@ms after T0`. */
function recordMessages(client: RoomcastClient): string[] {
  const seen: string[] = [];
  client.on('message', (room, m) => seen.push(`${room}:${m.seq}@${Date.now() - T0}`));
  return seen;
}

beforeEach(() => {
  FakeWebSocket.all = [];
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('viewer delay', () => {
  it('emits catch-up and live messages no earlier than ts + delayMs, in seq order per room', async () => {
    const client = newClient({ delayMs: 2000 });
    const socket = await connected(client);
    const seen = recordMessages(client);
    vi.setSystemTime(T0 + 1000);
    const join = client.join('r1');
    socket.receive({ t: 'joined', room: 'r1', seq: 2, msgs: [at(1, 0), at(2, 900)], viewers: 3 });
    await join;
    socket.receive({ t: 'messages', room: 'r1', msgs: [at(3, 950), at(4, 1000)] });
    const join2 = client.join('r2');
    socket.receive({ t: 'joined', room: 'r2', seq: 0, msgs: [], viewers: 1 });
    await join2;
    socket.receive({ t: 'messages', room: 'r2', msgs: [at(8, 500)] }); // rooms do not wait for each other
    expect(client.lastSeq('r1')).toBe(4); // received, though not yet emitted

    await vi.advanceTimersByTimeAsync(999);
    expect(seen).toEqual([]);
    await vi.advanceTimersByTimeAsync(1); // T0 + 2000: seq 1 is due
    expect(seen).toEqual(['r1:1@2000']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen).toEqual(['r1:1@2000', 'r2:8@2500', 'r1:2@2900', 'r1:3@2950', 'r1:4@3000']);
    client.close();
  });

  it('drops the held messages of a room when it is left', async () => {
    const client = newClient({ delayMs: 5000 });
    const socket = await connected(client);
    const seen = recordMessages(client);
    const join = client.join('r1');
    socket.receive({ t: 'joined', room: 'r1', seq: 0, msgs: [], viewers: 1 });
    await join;
    socket.receive({ t: 'messages', room: 'r1', msgs: [at(1, 0), at(2, 10)] });
    const leave = client.leave('r1');
    await vi.advanceTimersByTimeAsync(0);
    socket.receive({ t: 'left', room: 'r1', reason: 'leave' });
    await leave;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(seen).toEqual([]);
    client.close();
  });

  it('changes the delay at run time; 0 releases what is held at once and holds nothing after', async () => {
    const client = newClient();
    const socket = await connected(client);
    const seen = recordMessages(client);
    const join = client.join('r1');
    socket.receive({ t: 'joined', room: 'r1', seq: 0, msgs: [], viewers: 1 });
    await join;
    const timers = vi.getTimerCount();
    socket.receive({ t: 'messages', room: 'r1', msgs: [at(1, 0), at(2, 0)] });
    expect(seen).toEqual(['r1:1@0', 'r1:2@0']);
    expect(vi.getTimerCount()).toBe(timers); // no delay: no timer of its own

    client.setDelay(3000);
    expect(client.delayMs).toBe(3000);
    socket.receive({ t: 'messages', room: 'r1', msgs: [at(3, 0), at(4, 100)] });
    expect(vi.getTimerCount()).toBe(timers + 1); // one for the room, not one per message
    await vi.advanceTimersByTimeAsync(1000);
    client.setDelay(1500); // seq 3 is due at 1500 now, seq 4 at 1600
    await vi.advanceTimersByTimeAsync(499);
    expect(seen).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen.slice(2)).toEqual(['r1:3@1500']);
    client.setDelay(0);
    expect(seen.slice(2)).toEqual(['r1:3@1500', 'r1:4@1500']);
    expect(() => client.setDelay(Number.NaN)).toThrow(RangeError);
    expect(() => newClient({ delayMs: -5 })).toThrow(RangeError);
    client.close();
  });
});

describe('moderation', () => {
  it('sends moderate frames with a generated id and matches answers and errors by it', async () => {
    const client = newClient();
    const socket = await connected(client);
    const mute = client.mute('r1', 'troll', 60_000);
    const pin = client.pin('r1', 42);
    const [muteFrame, pinFrame] = socket.sent.slice(-2);
    expect(muteFrame).toMatchObject({ t: 'moderate', room: 'r1', action: 'mute', uid: 'troll', durationMs: 60_000 });
    expect(pinFrame).toMatchObject({ t: 'moderate', room: 'r1', action: 'pin', seq: 42 });
    const muteId = muteFrame!.id as string;
    const pinId = pinFrame!.id as string;
    expect(typeof muteId).toBe('string');
    expect(muteId.length).toBeGreaterThan(0);
    expect(muteId.length).toBeLessThanOrEqual(64);
    expect(pinId).not.toBe(muteId);

    // Answers in the other order: each goes to its own request.
    socket.receive({ t: 'moderated', id: pinId, room: 'r1', action: 'pin', seq: 43 });
    socket.receive({ t: 'error', code: 'forbidden', message: 'may not moderate', id: muteId, room: 'r1', ref: 'moderate' });
    await expect(pin).resolves.toEqual({ t: 'moderated', id: pinId, room: 'r1', action: 'pin', seq: 43 });
    await expect(mute).rejects.toMatchObject({ name: 'ClientError', code: 'forbidden', room: 'r1', id: muteId });
    client.close();
  });

  it('builds each convenience request and returns the lists', async () => {
    const client = newClient();
    const socket = await connected(client);
    const calls = [
      client.unmute('r1', 'u1'), client.ban('r1', 'u2'), client.unban('r1', 'u3'), client.deleteMessage('r1', 7),
      client.unpin('r1'), client.setSlowMode('r1', 10_000), client.setSlowMode('r1', 0),
    ];
    const frames = socket.sent.slice(-calls.length).map(({ id: _id, ...rest }) => rest);
    expect(frames).toEqual([
      { t: 'moderate', room: 'r1', action: 'unmute', uid: 'u1' },
      { t: 'moderate', room: 'r1', action: 'ban', uid: 'u2' },
      { t: 'moderate', room: 'r1', action: 'unban', uid: 'u3' },
      { t: 'moderate', room: 'r1', action: 'delete', seq: 7 },
      { t: 'moderate', room: 'r1', action: 'unpin' },
      { t: 'moderate', room: 'r1', action: 'slow_mode', intervalMs: 10_000 },
      { t: 'moderate', room: 'r1', action: 'slow_mode', intervalMs: 0 },
    ]);
    for (const frame of socket.sent.slice(-calls.length)) {
      socket.receive({ t: 'moderated', id: frame.id as string, room: 'r1', action: frame.action as 'ban' });
    }
    await expect(Promise.all(calls)).resolves.toHaveLength(calls.length);

    const lists = client.moderationLists('r1');
    const listFrame = socket.lastSent();
    expect(listFrame).toMatchObject({ t: 'moderate', room: 'r1', action: 'list' });
    const muted = [{ uid: 'a', untilMs: T0 + 1000 }];
    socket.receive({ t: 'moderated', id: listFrame.id as string, room: 'r1', action: 'list', muted, banned: [] });
    await expect(lists).resolves.toEqual({ muted, banned: [] });
    client.close();
  });

  it('refuses bad arguments without a round trip, times out, and fails with a lost connection without resending', async () => {
    const client = newClient({ requestTimeoutMs: 1000 });
    await expect(client.mute('r1', 'u1')).rejects.toMatchObject({ code: 'unavailable' });
    const socket = await connected(client);
    const before = socket.sent.length;
    await expect(client.pin('bad room', 1)).rejects.toMatchObject({ code: 'bad_room' });
    await expect(client.deleteMessage('r1', -1)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(client.mute('r1', '')).rejects.toMatchObject({ code: 'bad_request' });
    expect(socket.sent.length).toBe(before);

    const slow = client.ban('r1', 'u1').catch((error: unknown) => error);
    const late = socket.lastSent();
    await vi.advanceTimersByTimeAsync(999);
    socket.receive({ t: 'moderated', id: 'someone-else', room: 'r1', action: 'ban' }); // not its id
    await vi.advanceTimersByTimeAsync(1);
    await expect(slow).resolves.toMatchObject({ code: 'timeout', room: 'r1' });
    socket.receive({ t: 'moderated', id: late.id as string, room: 'r1', action: 'ban' }); // too late: ignored
    const errors: string[] = [];
    client.on('error', (frame) => errors.push(frame.code));

    const lost = client.unban('r1', 'u1');
    socket.drop(1006);
    await expect(lost).rejects.toMatchObject({ code: 'unavailable' });
    await vi.advanceTimersByTimeAsync(125);
    const second = FakeWebSocket.last();
    second.open();
    expect(second.sent.filter((f) => f.t === 'moderate')).toEqual([]);
    expect(errors).toEqual([]);
    client.close();
  });
});

describe('room stats', () => {
  const stats = (room: string, delivered: number): RoomStatsFrame => ({
    t: 'room_stats', room, viewers: 10, seq: 99, msgsPerSec: 2.5, delivered, sampled: 0,
    dropped: { backpressure: 0, gap_unrecoverable: 0, duplicate: 0 },
  });

  it('matches answers by room, first in first out, and errors by ref and room', async () => {
    const client = newClient();
    const socket = await connected(client);
    const a1 = client.roomStats('a');
    const b1 = client.roomStats('b');
    const a2 = client.roomStats('a');
    expect(socket.sent.slice(-3)).toEqual([{ t: 'room_stats', room: 'a' }, { t: 'room_stats', room: 'b' }, { t: 'room_stats', room: 'a' }]);
    socket.receive({ t: 'error', code: 'not_in_room', message: 'join first', room: 'b', ref: 'room_stats' });
    socket.receive(stats('a', 1));
    socket.receive(stats('a', 2));
    await expect(a1).resolves.toMatchObject({ room: 'a', delivered: 1 });
    await expect(a2).resolves.toMatchObject({ room: 'a', delivered: 2 });
    await expect(b1).rejects.toMatchObject({ code: 'not_in_room', room: 'b' });
    client.close();
  });
});

describe('pinned event', () => {
  it('comes from joined.pinned, then from pin and unpin messages as they are delivered', async () => {
    const client = newClient({ delayMs: 1000 });
    const socket = await connected(client);
    const events: string[] = [];
    client.on('message', (room, m) => events.push(`message:${room}:${m.seq}`));
    client.on('pinned', (room, m) => events.push(m ? `pinned:${room}:${m.seq}:${m.uid}:${m.kind}:${m.text}` : `pinned:${room}:none`));

    const original = at(5, 0, { uid: 'star', kind: 'streamer', prio: 1, text: 'welcome all' });
    const join1 = client.join('r1');
    socket.receive({ t: 'joined', room: 'r1', seq: 5, msgs: [], viewers: 1, pinned: original });
    await join1;
    const join2 = client.join('r2');
    socket.receive({ t: 'joined', room: 'r2', seq: 0, msgs: [], viewers: 1 });
    await join2;
    expect(events).toEqual(['pinned:r1:5:star:streamer:welcome all', 'pinned:r2:none']);

    events.length = 0;
    socket.receive({ t: 'messages', room: 'r1', msgs: [
      at(6, 100, { uid: 'mod1', kind: 'pin', prio: 1, text: 'hello', target: 3, data: { from: 'bob', kind: 'chat' } }),
      at(7, 200, { uid: 'mod1', kind: 'unpin', prio: 1, text: '', target: 3 }),
    ] });
    expect(events).toEqual([]); // held by the delay like any message
    await vi.advanceTimersByTimeAsync(1100);
    expect(events).toEqual(['message:r1:6', 'pinned:r1:3:bob:chat:hello']);
    await vi.advanceTimersByTimeAsync(100);
    expect(events).toEqual(['message:r1:6', 'pinned:r1:3:bob:chat:hello', 'message:r1:7', 'pinned:r1:none']);
    client.close();
  });
});

describe('browser use', () => {
  it('defaults to globalThis.WebSocket', async () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    const client = new RoomcastClient({ url: 'wss://chat.test/ws', token: 'jwt' });
    const welcome = client.connect();
    await vi.advanceTimersByTimeAsync(0);
    FakeWebSocket.last().open();
    await expect(welcome).resolves.toMatchObject({ t: 'welcome' });
    expect(FakeWebSocket.last().url).toBe('wss://chat.test/ws?token=jwt');
    client.close();
  });

  it('imports nothing of Node on any path from the SDK', () => {
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
    const seen = new Set<string>();
    const problems: string[] = [];
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, 'utf8');
      // Comments may name Node; code may not.
      const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      for (const [, specifier] of code.matchAll(/from\s+'([^']+)'/g)) {
        if (specifier!.startsWith('.')) visit(joinPath(dirname(file), specifier!.replace(/\.js$/, '.ts')));
        else if (specifier!.startsWith('node:') || ['fs', 'path', 'crypto', 'os', 'net', 'ws'].includes(specifier!)) problems.push(`${file}: ${specifier}`);
      }
      if (/\b(Buffer|process|require)\b/.test(code)) problems.push(`${file}: uses Buffer, process or require`);
    };
    visit(joinPath(root, 'src/client/roomcast-client.ts'));
    expect(seen.size).toBeGreaterThan(8); // the facade, its collaborators and the shared protocol
    expect([...seen].some((file) => file.endsWith('src/client/delay-queue.ts'))).toBe(true);
    expect(problems).toEqual([]);
  });
});
