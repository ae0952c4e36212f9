/**
 * The SDK backs off on `overloaded`: a send is tried again with the same id after the server's
 * retryAfterMs (plus jitter), a few times, instead of failing or hammering the server.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ClientError, RoomcastClient } from '../../src/client/roomcast-client.js';
import { OVERLOAD_RETRIES } from '../../src/client/request-table.js';
import { FakeWebSocket } from '../helpers/fake-web-socket.js';

beforeEach(() => {
  FakeWebSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

async function joinedClient(random: () => number): Promise<{ client: RoomcastClient; socket: FakeWebSocket }> {
  const client = new RoomcastClient({ url: 'ws://gateway.test/ws', token: 'jwt', WebSocket: FakeWebSocket, random });
  const connecting = client.connect();
  await vi.advanceTimersByTimeAsync(0);
  const socket = FakeWebSocket.last();
  socket.open();
  await connecting;
  const joining = client.join('lobby');
  socket.receive({ t: 'joined', room: 'lobby', seq: 0, msgs: [], viewers: 1 });
  await joining;
  return { client, socket };
}

const sendsOf = (socket: FakeWebSocket, id: string) => socket.sent.filter((frame) => frame.t === 'send' && frame.id === id).length;

describe('the SDK and overloaded', () => {
  it('resends the same id after retryAfterMs plus jitter, and resolves with the ack that follows', async () => {
    const { client, socket } = await joinedClient(() => 0.5);
    const sent = client.send('lobby', 'hi', { id: 'm1' });
    expect(sendsOf(socket, 'm1')).toBe(1);
    socket.receive({ t: 'error', code: 'overloaded', message: 'busy', id: 'm1', room: 'lobby', ref: 'send', retryAfterMs: 400 });
    await vi.advanceTimersByTimeAsync(599);
    expect(sendsOf(socket, 'm1')).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sendsOf(socket, 'm1')).toBe(2);
    socket.receive({ t: 'ack', id: 'm1', room: 'lobby', seq: 7 });
    expect((await sent).seq).toBe(7);
  });

  it(`gives up after ${OVERLOAD_RETRIES} retries with the overloaded error`, async () => {
    const { client, socket } = await joinedClient(() => 0);
    const sent = client.send('lobby', 'hi', { id: 'm2' });
    const failure = sent.catch((error: unknown) => error);
    for (let attempt = 0; attempt <= OVERLOAD_RETRIES; attempt++) {
      socket.receive({ t: 'error', code: 'overloaded', message: 'busy', id: 'm2', room: 'lobby', ref: 'send', retryAfterMs: 100 });
      await vi.advanceTimersByTimeAsync(100);
    }
    const error = await failure;
    expect(error).toBeInstanceOf(ClientError);
    expect((error as ClientError).code).toBe('overloaded');
    expect(sendsOf(socket, 'm2')).toBe(OVERLOAD_RETRIES + 1);
  });
});
