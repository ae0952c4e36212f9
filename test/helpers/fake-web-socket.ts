/**
 * A scripted WebSocket for SDK unit tests: it records what the client sends (decoded with
 * @msgpack/msgpack, as an independent server would) and lets a test play the server's side.
 */
import { decode, encode } from '@msgpack/msgpack';
import { vi } from 'vitest';
import { RoomcastClient, type RoomcastClientOptions } from '../../src/client/roomcast-client.js';
import type { CloseEventLike, MessageEventLike, WebSocketLike } from '../../src/client/roomcast-client.js';
import type { RoomMessage, ServerFrame, WelcomeFrame } from '../../src/shared/protocol/frames.js';

export class FakeWebSocket implements WebSocketLike {
  static all: FakeWebSocket[] = [];
  static last(): FakeWebSocket {
    const socket = FakeWebSocket.all.at(-1);
    if (!socket) throw new Error('no socket was opened');
    return socket;
  }

  binaryType = 'blob';
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: MessageEventLike) => void) | null = null;
  onclose: ((event: CloseEventLike) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: Array<Record<string, unknown>> = [];
  closedWith: { code?: number; reason?: string } | null = null;

  constructor(readonly url: string, readonly protocols?: string | string[]) {
    FakeWebSocket.all.push(this);
  }

  send(data: string | Uint8Array): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push((typeof data === 'string' ? JSON.parse(data) : decode(data)) as Record<string, unknown>);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // ---- the server's side ----
  open(welcome: Partial<WelcomeFrame> = {}): void {
    this.readyState = 1;
    this.onopen?.({});
    this.receive({
      t: 'welcome', session: 's', uid: 'alice', role: 'viewer', heartbeatMs: 30_000, protocol: 1,
      limits: { maxFrameBytes: 16_384, maxTextLength: 500, maxRooms: 5, historyPageMax: 100 }, ...welcome,
    });
  }

  receive(frame: ServerFrame): void {
    const bytes = encode(frame);
    this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  }

  drop(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  lastSent(): Record<string, unknown> {
    const frame = this.sent.at(-1);
    if (!frame) throw new Error('nothing was sent');
    return frame;
  }
}

/** A chat message of `bob` with seq `seq`, stamped `ts` (default: a fixed epoch + seq). */
export const roomMessage = (seq: number, extra: Partial<RoomMessage> = {}): RoomMessage => ({
  seq, uid: 'bob', kind: 'chat', prio: 0, text: `m${seq}`, ts: 1_700_000_000_000 + seq, ...extra,
});

/** A client on scripted sockets (fixed jitter), for SDK unit tests. */
export function newClient(options: Partial<RoomcastClientOptions> = {}): RoomcastClient {
  return new RoomcastClient({ url: 'ws://gateway.test/ws', token: 'jwt', WebSocket: FakeWebSocket, random: () => 0.5, ...options });
}

/** Connects `client` (fake timers on) and plays the welcome; resolves with its socket. */
export async function connected(client: RoomcastClient): Promise<FakeWebSocket> {
  const welcome = client.connect();
  await vi.advanceTimersByTimeAsync(0);
  const socket = FakeWebSocket.last();
  socket.open();
  await welcome;
  return socket;
}
