/**
 * The SDK's state machine against a scripted WebSocket: request correlation, duplicate suppression,
 * reconnection with rejoin and resend. Frames are encoded and decoded with @msgpack/msgpack, as an
 * independent client would, so the SDK's wire format is checked too. Fake timers drive every delay.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ClientError, RoomcastClient } from '../../src/client/roomcast-client.js';
import type { RoomMessage } from '../../src/shared/protocol/frames.js';
import { FakeWebSocket, connected, newClient } from '../helpers/fake-web-socket.js';


const message = (seq: number, extra: Partial<RoomMessage> = {}): RoomMessage => ({ seq, uid: 'bob', kind: 'chat', prio: 0, text: `m${seq}`, ts: 1_700_000_000_000 + seq, ...extra });


async function joined(client: RoomcastClient, socket: FakeWebSocket, room: string, seq: number, msgs: RoomMessage[] = []): Promise<void> {
  const join = client.join(room);
  socket.receive({ t: 'joined', room, seq, msgs, viewers: 1 });
  await join;
}

beforeEach(() => {
  FakeWebSocket.all = [];
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('RoomcastClient', () => {
  it('connects with the token in the query and the subprotocol of its format', async () => {
    const client = newClient({ format: 'json' });
    const welcome = client.connect();
    const socket = FakeWebSocket.last();
    expect(socket.url).toBe('ws://gateway.test/ws?token=jwt');
    expect(socket.protocols).toBe('roomcast.v1.json');
    expect(socket.binaryType).toBe('arraybuffer');
    socket.open({ session: 'abc' });
    await expect(welcome).resolves.toMatchObject({ t: 'welcome', session: 'abc' });
    expect(client.state).toBe('open');
    client.close();
  });

  it('delivers each room message once, from joined and from batches', async () => {
    const client = newClient();
    const socket = await connected(client);
    const seen: number[] = [];
    client.on('message', (room, m) => { expect(room).toBe('r1'); seen.push(m.seq); });
    const join = client.join('r1');
    expect(socket.lastSent()).toEqual({ t: 'join', room: 'r1' });
    socket.receive({ t: 'joined', room: 'r1', seq: 3, msgs: [message(2), message(3)], viewers: 7 });
    await expect(join).resolves.toMatchObject({ room: 'r1', seq: 3 });
    socket.receive({ t: 'messages', room: 'r1', msgs: [message(3), message(4), message(5)] });
    socket.receive({ t: 'messages', room: 'r1', msgs: [message(5), message(7)] });
    socket.receive({ t: 'messages', room: 'elsewhere', msgs: [message(9)] });
    expect(seen).toEqual([2, 3, 4, 5, 7]);
    expect(client.lastSeq('r1')).toBe(7);
    client.close();
  });

  it('answers sends by id and errors by id, ref and room', async () => {
    const client = newClient();
    const socket = await connected(client);
    await joined(client, socket, 'r1', 0);
    const ok = client.send('r1', 'hello', { id: 'm-1' });
    const refused = client.send('r1', 'x'.repeat(600), { id: 'm-2' });
    expect(socket.sent.slice(-2)).toEqual([
      { t: 'send', room: 'r1', id: 'm-1', text: 'hello' },
      { t: 'send', room: 'r1', id: 'm-2', text: 'x'.repeat(600) },
    ]);
    socket.receive({ t: 'error', code: 'text_too_long', message: 'too long', id: 'm-2', room: 'r1', ref: 'send' });
    socket.receive({ t: 'ack', id: 'm-1', room: 'r1', seq: 11 });
    await expect(ok).resolves.toEqual({ t: 'ack', id: 'm-1', room: 'r1', seq: 11 });
    const error = await refused.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({ name: 'ClientError', code: 'text_too_long', id: 'm-2', room: 'r1' });

    const history1 = client.history('r1', { limit: 2 });
    const history2 = client.history('r1', { beforeSeq: 5 });
    const unknown = client.join('nope');
    socket.receive({ t: 'error', code: 'unknown_room', message: 'no such room', room: 'nope', ref: 'join' });
    socket.receive({ t: 'history', room: 'r1', msgs: [message(10), message(11)], more: true });
    socket.receive({ t: 'error', code: 'unavailable', message: 'try later', room: 'r1', ref: 'history' });
    await expect(history1).resolves.toMatchObject({ more: true });
    await expect(history2).rejects.toMatchObject({ code: 'unavailable' });
    await expect(unknown).rejects.toMatchObject({ code: 'unknown_room', room: 'nope' });
    expect(client.rooms).toEqual(['r1']);
    client.close();
  });

  it('refuses what it would not send, without a round trip', async () => {
    const client = newClient();
    await expect(client.join('r1')).rejects.toMatchObject({ code: 'unavailable' });
    const socket = await connected(client);
    const sentBefore = socket.sent.length;
    await expect(client.join('bad room')).rejects.toMatchObject({ code: 'bad_room' });
    await expect(client.send('r1', 'hi', { id: '' })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(client.history('r1', { limit: 0 })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(client.leave('r1')).rejects.toMatchObject({ code: 'not_in_room' });
    await joined(client, socket, 'r1', 0);
    await expect(client.join('r1')).rejects.toMatchObject({ code: 'already_in_room' });
    await expect(client.send('r1', 'x'.repeat(20_000))).rejects.toMatchObject({ code: 'frame_too_large' });
    expect(socket.sent.length).toBe(sentBefore + 1); // only the join
    client.close();
  });

  it('switches rooms: left for the old one, then joined for the new one', async () => {
    const client = newClient();
    const socket = await connected(client);
    await joined(client, socket, 'a', 4);
    const left: string[] = [];
    client.on('left', (room, reason) => left.push(`${room}:${reason}`));
    const switched = client.switchRoom('a', 'b');
    await vi.advanceTimersByTimeAsync(0);
    expect(socket.lastSent()).toEqual({ t: 'switch', from: 'a', to: 'b' });
    socket.receive({ t: 'left', room: 'a', reason: 'switch' });
    socket.receive({ t: 'joined', room: 'b', seq: 9, msgs: [], viewers: 2 });
    await expect(switched).resolves.toMatchObject({ room: 'b' });
    expect(left).toEqual(['a:switch']);
    expect(client.rooms).toEqual(['b']);

    const failed = client.switchRoom('b', 'c');
    await vi.advanceTimersByTimeAsync(0);
    socket.receive({ t: 'error', code: 'banned', message: 'banned', room: 'c', ref: 'switch' });
    await expect(failed).rejects.toMatchObject({ code: 'banned', room: 'c' });
    expect(client.rooms).toEqual(['b']);
    client.close();
  });

  it('reconnects with backoff, rejoins from the last seq and resends unacknowledged sends', async () => {
    const client = newClient();
    const socket = await connected(client);
    const seen: number[] = [];
    client.on('message', (_room, m) => seen.push(m.seq));
    const events: string[] = [];
    client.on('disconnected', (info) => events.push(`disconnected:${info.code}`));
    client.on('reconnecting', (info) => events.push(`reconnecting:${info.attempt}:${info.delayMs}`));
    await joined(client, socket, 'r1', 5, [message(5)]);
    const send = client.send('r1', 'hi', { id: 'm-1' });
    const history = client.history('r1');

    socket.drop(1006);
    expect(events).toEqual(['disconnected:1006', 'reconnecting:1:125']);
    await expect(history).rejects.toMatchObject({ code: 'unavailable' });
    expect(client.state).toBe('reconnecting');
    const sendWhileDown = client.send('r1', 'again', { id: 'm-2' });

    await vi.advanceTimersByTimeAsync(125);
    const second = FakeWebSocket.last();
    expect(second).not.toBe(socket);
    second.open();
    expect(second.sent).toEqual([{ t: 'join', room: 'r1', lastSeq: 5 }]); // sends wait for the rejoin
    second.receive({ t: 'joined', room: 'r1', seq: 8, msgs: [message(5), message(6), message(7)], viewers: 1 });
    expect(second.sent.slice(1)).toEqual([
      { t: 'send', room: 'r1', id: 'm-1', text: 'hi' },
      { t: 'send', room: 'r1', id: 'm-2', text: 'again' },
    ]);
    second.receive({ t: 'ack', id: 'm-1', room: 'r1', seq: 6 });
    second.receive({ t: 'ack', id: 'm-2', room: 'r1', seq: 9 });
    await expect(send).resolves.toMatchObject({ seq: 6 });
    await expect(sendWhileDown).resolves.toMatchObject({ seq: 9 });
    expect(seen).toEqual([5, 6, 7]);
    expect(client.lastSeq('r1')).toBe(8);
    client.close();
  });

  it('grows the backoff while attempts fail', async () => {
    const client = newClient({ random: () => 0.999 });
    const delays: number[] = [];
    client.on('reconnecting', (info) => delays.push(info.delayMs));
    const welcome = client.connect();
    for (let i = 0; i < 7; i++) {
      FakeWebSocket.last().drop(1006);
      await vi.advanceTimersByTimeAsync(delays.at(-1)!);
    }
    expect(delays).toEqual([249, 499, 999, 1998, 3996, 7992, 9990]);
    client.close();
    await expect(welcome).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('stops on 4001 and rejects connect with unauthorized', async () => {
    const client = newClient();
    const welcome = client.connect();
    const socket = FakeWebSocket.last();
    socket.readyState = 1;
    socket.receive({ t: 'error', code: 'unauthorized', message: 'invalid token: expired' });
    socket.drop(4001, 'unauthorized');
    await expect(welcome).rejects.toMatchObject({ code: 'unauthorized', message: 'invalid token: expired' });
    expect(client.state).toBe('closed');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeWebSocket.all.length).toBe(1);
  });

  it('reconnects when the server asks, after the delay it gives', async () => {
    const tokens = ['t1', 't2'];
    const client = newClient({ token: async () => tokens.shift()! });
    const welcome = client.connect();
    await vi.advanceTimersByTimeAsync(0);
    const socket = FakeWebSocket.last();
    expect(socket.url).toContain('token=t1');
    socket.open();
    await welcome;
    await joined(client, socket, 'r1', 3);
    socket.receive({ t: 'reconnect', delayMs: 1000 });
    await vi.advanceTimersByTimeAsync(999);
    expect(FakeWebSocket.all.length).toBe(1);
    await vi.advanceTimersByTimeAsync(1 + 125);
    expect(socket.closedWith).toMatchObject({ code: 1000 });
    const second = FakeWebSocket.last();
    expect(second.url).toContain('token=t2');
    second.open();
    expect(second.sent).toEqual([{ t: 'join', room: 'r1', lastSeq: 3 }]);
    client.close();
  });

  it('pings when quiet and drops a connection whose ping goes unanswered', async () => {
    const client = newClient();
    const socket = await connected(client);
    const codes: number[] = [];
    client.on('disconnected', (info) => codes.push(info.code));
    await vi.advanceTimersByTimeAsync(15_000);
    expect(socket.lastSent()).toMatchObject({ t: 'ping' });
    socket.receive({ t: 'pong', ts: 1 });
    await vi.advanceTimersByTimeAsync(15_000);
    const pings = socket.sent.filter((f) => f.t === 'ping').length;
    expect(pings).toBe(2);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(codes).toEqual([1006]);
    expect(socket.closedWith).not.toBeNull();
    client.close();
  });

  it('while frames keep arriving, pings only after three quarters of heartbeatMs without sending, before the server would', async () => {
    const client = newClient();
    const socket = await connected(client);
    await joined(client, socket, 'r1', 1);
    const pingTimes: number[] = [];
    for (let second = 1; second <= 60; second++) {
      await vi.advanceTimersByTimeAsync(1000);
      socket.receive({ t: 'pong', ts: second });
      const pings = socket.sent.filter((f) => f.t === 'ping').length;
      if (pings > pingTimes.length) pingTimes.push(second);
    }
    // heartbeatMs 30 s: a ping once 22.5 s have passed without a send (the join went out just before
    // the first second counted here), each before 30 s of silence: two in a minute, not four.
    expect(pingTimes).toHaveLength(2);
    expect(pingTimes[0]).toBeGreaterThanOrEqual(22);
    expect(pingTimes[0]).toBeLessThan(30);
    expect(pingTimes[1]! - pingTimes[0]!).toBeGreaterThanOrEqual(22);
    expect(pingTimes[1]! - pingTimes[0]!).toBeLessThan(30);
    client.close();
  });

  it('rejoins after a transient failure, and gives a room up after a lasting one', async () => {
    const client = newClient();
    const socket = await connected(client);
    await joined(client, socket, 'a', 1);
    await joined(client, socket, 'b', 2);
    const events: string[] = [];
    client.on('left', (room, reason) => events.push(`left:${room}:${reason}`));
    client.on('error', (frame) => events.push(`error:${frame.room}:${frame.code}`));
    socket.drop(1012);
    await vi.advanceTimersByTimeAsync(125);
    const second = FakeWebSocket.last();
    second.open();
    second.receive({ t: 'error', code: 'banned', message: 'banned', room: 'a', ref: 'join' });
    second.receive({ t: 'error', code: 'unavailable', message: 'later', room: 'b', ref: 'join' });
    expect(events).toEqual(['error:a:banned', 'left:a:banned']);
    await vi.advanceTimersByTimeAsync(125);
    expect(second.lastSent()).toEqual({ t: 'join', room: 'b', lastSeq: 2 });
    second.receive({ t: 'joined', room: 'b', seq: 2, msgs: [], viewers: 1 });
    expect(client.rooms).toEqual(['b']);
    client.close();
  });

  it('rejects everything pending when closed', async () => {
    const client = newClient();
    const socket = await connected(client);
    await joined(client, socket, 'r1', 0);
    const send = client.send('r1', 'hi');
    const join = client.join('r2');
    client.close();
    await expect(send).rejects.toMatchObject({ code: 'unavailable' });
    await expect(join).rejects.toMatchObject({ code: 'unavailable' });
    expect(client.state).toBe('closed');
    expect(client.rooms).toEqual([]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeWebSocket.all.length).toBe(1);
  });
});
