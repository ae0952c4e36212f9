/**
 * Request correlation for the room protocol: every request in flight, its timeout, and the matching
 * of answers and errors to it (docs/protocol.md 6.13). Requests with an id (`moderate`) are matched
 * by id; the others by their type and room, first in first out. `send`s are kept apart: they survive
 * a lost connection and are resent with their original id (idempotent on the server) once the
 * connection is back and their room rejoined; every other request fails with the connection.
 * It writes through the socket it is given and knows nothing of rooms beyond their ids.
 */
import type { AckFrame, ClientMsgId, ErrorFrame, RoomId } from '../shared/protocol/frames.js';
import { ClientError } from './client-error.js';
import type { OutgoingFrame } from './client-socket.js';

/** What the table needs of the connection. */
export interface RequestTransport {
  transmit(frame: OutgoingFrame): boolean;
  write(data: Uint8Array | string): boolean;
  encode(frame: OutgoingFrame): Uint8Array | string;
  /** The server's frame size limit (welcome.limits.maxFrameBytes); undefined before a welcome. */
  maxFrameBytes(): number | undefined;
  requestTimeoutMs: number;
}

type Timer = ReturnType<typeof setTimeout>;

interface Waiter {
  resolve(value: never): void;
  reject(error: ClientError): void;
  timer: Timer | null;
  room: RoomId;
  /** Told of the server's error before the promise rejects, for bookkeeping that must not wait. */
  refused: ((frame: ErrorFrame) => void) | undefined;
}

interface IdWaiter extends Waiter {
  /** The request's frame type, which the error's `ref` names. */
  type: string;
}

interface PendingSend {
  resolve(ack: AckFrame): void;
  reject(error: ClientError): void;
  timer: Timer | null;
  room: RoomId;
  id: ClientMsgId;
  /** The encoded frame, kept for resends. */
  data: Uint8Array | string;
  /** Sent on the current connection and not answered yet. */
  onWire: boolean;
  /** `overloaded` answers so far: each is retried after the server's hint, a few times. */
  overloads: number;
}

/** How often a send answered `overloaded` is tried again before its promise fails with that code. */
export const OVERLOAD_RETRIES = 5;
const DEFAULT_RETRY_AFTER_MS = 500;

export class RequestTable {
  /** Keyed by `type room`: the answers of one key are matched first in, first out. */
  private readonly queues = new Map<string, Waiter[]>();
  private readonly byId = new Map<string, IdWaiter>();
  /** In the order they were made, which is the order they are resent in. */
  private readonly sends = new Map<ClientMsgId, PendingSend>();

  constructor(private readonly transport: RequestTransport, private readonly random: () => number = Math.random) {}

  // ---- requests matched by type and room -----------------------------------------------------------

  /**
   * Sends `frame`, whose answer (or error with `ref: type`) is matched by `type` and `room`, and arms
   * its timeout. `refused` hears the server's error synchronously, before the promise rejects.
   */
  request<T>(type: string, room: RoomId, frame: OutgoingFrame, refused?: (frame: ErrorFrame) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = { resolve: resolve as (value: never) => void, reject, timer: null, room, refused };
      const key = keyOf(type, room);
      let queue = this.queues.get(key);
      if (!queue) this.queues.set(key, (queue = []));
      queue.push(waiter);
      this.transport.transmit(frame);
      // A timed-out waiter stays queued, so the late answer is matched to it (and ignored), not to the next.
      waiter.timer = setTimeout(() => {
        waiter.timer = null;
        waiter.reject(this.timeoutError(room));
      }, this.transport.requestTimeoutMs);
    });
  }

  /** Settles the oldest request of `type` in `room` with `value`; false when there is none. */
  answer<T>(type: string, room: RoomId, value: T): boolean {
    const waiter = this.shift(keyOf(type, room));
    if (!waiter) return false;
    (waiter.resolve as (value: T) => void)(value);
    return true;
  }

  private shift(key: string): Waiter | undefined {
    const queue = this.queues.get(key);
    if (!queue) return undefined;
    const waiter = queue.shift();
    if (queue.length === 0) this.queues.delete(key);
    if (waiter?.timer) clearTimeout(waiter.timer);
    return waiter;
  }

  // ---- requests matched by id ----------------------------------------------------------------------

  /** Sends `frame` (of type `type`, carrying `id`), whose answer and errors carry the same id. */
  requestById<T>(type: string, id: string, room: RoomId, frame: OutgoingFrame): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.byId.has(id)) {
        reject(new ClientError('bad_request', `a request with id '${id}' is already pending`, { room, id }));
        return;
      }
      const waiter: IdWaiter = { type, resolve: resolve as (value: never) => void, reject, timer: null, room, refused: undefined };
      this.byId.set(id, waiter);
      this.transport.transmit(frame);
      waiter.timer = setTimeout(() => {
        if (this.byId.get(id) !== waiter) return;
        this.byId.delete(id);
        waiter.reject(this.timeoutError(room, id));
      }, this.transport.requestTimeoutMs);
    });
  }

  /** Settles the request with this id with `value`; false when there is none. */
  answerId<T>(id: string, value: T): boolean {
    const waiter = this.byId.get(id);
    if (!waiter) return false;
    this.byId.delete(id);
    if (waiter.timer) clearTimeout(waiter.timer);
    (waiter.resolve as (value: T) => void)(value);
    return true;
  }

  // ---- sends ---------------------------------------------------------------------------------------

  hasSend(id: ClientMsgId): boolean {
    return this.sends.has(id);
  }

  /**
   * Records a send and resolves with its ack. It is written now when `writeNow`, otherwise by a later
   * flushSends() (the connection is not open, or its room is being joined).
   */
  send(room: RoomId, id: ClientMsgId, frame: OutgoingFrame, writeNow: boolean): Promise<AckFrame> {
    const data = this.transport.encode(frame);
    return new Promise<AckFrame>((resolve, reject) => {
      const pending: PendingSend = { room, id, data, onWire: false, overloads: 0, timer: null, resolve, reject };
      this.sends.set(id, pending);
      if (writeNow) this.transmitSend(pending);
    });
  }

  ack(frame: AckFrame): void {
    const pending = this.sends.get(frame.id);
    if (!pending) return; // it timed out, or was settled by an earlier answer
    this.sends.delete(frame.id);
    if (pending.timer) clearTimeout(pending.timer);
    pending.resolve(frame);
  }

  /**
   * Writes the sends that wait for the connection, in order: those to `room` only when given, and
   * never those to a room `held` says is still being joined. Call only on an open connection.
   */
  flushSends(held: (room: RoomId) => boolean, room?: RoomId): void {
    for (const pending of this.sends.values()) {
      if (pending.onWire || (room !== undefined && pending.room !== room) || held(pending.room)) continue;
      this.transmitSend(pending);
    }
  }

  private transmitSend(pending: PendingSend): void {
    const maxBytes = this.transport.maxFrameBytes();
    if (maxBytes !== undefined && byteLengthOver(pending.data, maxBytes)) {
      // The server would close the connection (1009), and the resend after reconnecting would again.
      this.sends.delete(pending.id);
      pending.reject(new ClientError('frame_too_large', `the send frame is larger than the server's limit of ${maxBytes} bytes`, { room: pending.room, id: pending.id }));
      return;
    }
    if (!this.transport.write(pending.data)) return;
    pending.onWire = true;
    pending.timer = setTimeout(() => {
      if (this.sends.get(pending.id) !== pending) return;
      this.sends.delete(pending.id);
      pending.reject(new ClientError('timeout', `no ack within ${this.transport.requestTimeoutMs} ms`, { room: pending.room, id: pending.id }));
    }, this.transport.requestTimeoutMs);
  }

  /**
   * Sends `pending` again (same id: idempotent) after the server's hint plus up to as much again of
   * jitter, so that the clients an overloaded server turned away do not all come back at once.
   */
  private retryLater(pending: PendingSend, retryAfterMs: number): void {
    if (pending.timer) clearTimeout(pending.timer);
    pending.onWire = false;
    pending.timer = setTimeout(() => {
      pending.timer = null;
      if (this.sends.get(pending.id) === pending) this.transmitSend(pending);
    }, retryAfterMs * (1 + this.random()));
  }

  // ---- errors and lost connections -----------------------------------------------------------------

  /** Rejects the request an error frame answers: sends by id, then id requests, then by `ref` and room. False when none. */
  onError(frame: ErrorFrame): boolean {
    const { id, ref, room } = frame;
    if (id !== undefined) {
      if (ref === undefined || ref === 'send') {
        const pending = this.sends.get(id);
        if (pending && frame.code === 'overloaded' && pending.overloads++ < OVERLOAD_RETRIES) {
          this.retryLater(pending, frame.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS);
          return true;
        }
        if (pending) {
          this.sends.delete(id);
          if (pending.timer) clearTimeout(pending.timer);
          pending.reject(ClientError.fromFrame(frame));
          return true;
        }
      }
      const waiter = this.byId.get(id);
      if (waiter && (ref === undefined || ref === waiter.type)) {
        this.byId.delete(id);
        if (waiter.timer) clearTimeout(waiter.timer);
        waiter.reject(ClientError.fromFrame(frame));
        return true;
      }
    }
    if (ref === undefined || room === undefined) return false;
    const waiter = this.shift(keyOf(ref, room));
    if (!waiter) return false;
    waiter.refused?.(frame);
    waiter.reject(ClientError.fromFrame(frame));
    return true;
  }

  /** Rejects every request but the sends, which go back to waiting for the next connection. */
  connectionLost(error: ClientError): void {
    const queues = [...this.queues.values()];
    this.queues.clear();
    for (const queue of queues) {
      for (const waiter of queue) {
        if (waiter.timer) clearTimeout(waiter.timer);
        waiter.reject(new ClientError(error.code, error.message, { room: waiter.room }));
      }
    }
    const waiters = [...this.byId.entries()];
    this.byId.clear();
    for (const [id, waiter] of waiters) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.reject(new ClientError(error.code, error.message, { room: waiter.room, id }));
    }
    for (const pending of this.sends.values()) {
      if (pending.timer) clearTimeout(pending.timer);
      pending.timer = null;
      pending.onWire = false;
    }
  }

  /** Rejects the sends too (the client closed or gave up). */
  rejectSends(error: ClientError): void {
    const sends = [...this.sends.values()];
    this.sends.clear();
    for (const pending of sends) {
      if (pending.timer) clearTimeout(pending.timer);
      pending.reject(new ClientError(error.code, error.message, { room: pending.room, id: pending.id }));
    }
  }

  private timeoutError(room: RoomId, id?: string): ClientError {
    return new ClientError('timeout', `no answer within ${this.transport.requestTimeoutMs} ms`, id === undefined ? { room } : { room, id });
  }
}

function keyOf(type: string, room: RoomId): string {
  // Room ids have no spaces (ROOM_ID_PATTERN), so the key is unambiguous.
  return `${type} ${room}`;
}

/** Whether the UTF-8 encoding of `data` is longer than `maxBytes`, without encoding short strings. */
function byteLengthOver(data: Uint8Array | string, maxBytes: number): boolean {
  if (typeof data !== 'string') return data.byteLength > maxBytes;
  if (data.length * 3 <= maxBytes) return false;
  return new TextEncoder().encode(data).byteLength > maxBytes;
}
