/**
 * The rooms a client is in: join, switch and leave, the automatic rejoin of every room after a
 * reconnect from the last seq received (with backoff while the rejoin fails for a passing reason),
 * duplicate suppression by seq, gaps, viewer counts, the pinned message, and the hand-off of each new
 * message to the delay queue. It sends through the connection and the request table it is given.
 */
import type { ErrorCode } from '../shared/errors.js';
import {
  MESSAGE_KINDS, priorityOf,
  type ErrorFrame, type Gap, type JoinedFrame, type LeftFrame, type MessageKind, type MessagesFrame, type RoomId, type RoomMessage, type Seq,
  type ViewersFrame,
} from '../shared/protocol/frames.js';
import { fullJitterDelayMs, type BackoffSettings } from './backoff.js';
import { ClientError } from './client-error.js';
import type { OutgoingFrame } from './client-socket.js';
import { deliverNew } from './dedup.js';
import { DelayQueue } from './delay-queue.js';
import type { RequestTable } from './request-table.js';

/** Failures worth retrying a rejoin for on the same connection; any other failure drops the room. */
const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['unavailable', 'timeout', 'internal', 'rate_limited', 'overloaded']);

export type LeftReason = LeftFrame['reason'];

/** What the sessions report; the client turns each into its event of the same name. */
export interface SessionListener {
  message(room: RoomId, message: RoomMessage): void;
  viewers(room: RoomId, count: number): void;
  gap(room: RoomId, gap: Gap): void;
  left(room: RoomId, reason: LeftReason): void;
  pinned(room: RoomId, message: RoomMessage | null): void;
  /** A rejoin failed for good. */
  error(frame: ErrorFrame): void;
}

export interface SessionDeps {
  transmit(frame: OutgoingFrame): boolean;
  isOpen(): boolean;
  /** Why a request cannot be made now (no open connection); null when it can. */
  notOpen(): ClientError | null;
  requests: RequestTable;
  /** The room's join settled (joined or given up): sends held for it may go. */
  roomSettled(room: RoomId): void;
  listener: SessionListener;
  backoff: BackoffSettings;
  random: () => number;
  requestTimeoutMs: number;
  /** See RoomcastClientOptions.delayMs. */
  delayMs: number;
}

type Timer = ReturnType<typeof setTimeout>;

interface Membership {
  /** The highest seq received (or reported lost) in the room: the duplicate mark and the rejoin point. */
  lastSeq: Seq;
  /** Whether the current connection is in the room; false while it is joined or rejoined. */
  joined: boolean;
}

/** A join, a switch or an automatic rejoin in flight, keyed by the room it joins. */
interface PendingJoin {
  kind: 'join' | 'switch' | 'rejoin';
  room: RoomId;
  /** The room a switch leaves. */
  from: RoomId | null;
  /** Failed tries of a rejoin, for its backoff. */
  attempt: number;
  timer: Timer | null;
  resolve(frame: JoinedFrame): void;
  reject(error: ClientError): void;
  /** Called once it settles, either way (leave() and switchRoom() wait for it). */
  settled: Array<() => void>;
}

const noop = (): void => undefined;

export class RoomSessions {
  private readonly memberships = new Map<RoomId, Membership>();
  private readonly joins = new Map<RoomId, PendingJoin>();
  private readonly delay: DelayQueue;
  private readonly push: (room: RoomId, message: RoomMessage) => void;

  constructor(private readonly deps: SessionDeps) {
    this.delay = new DelayQueue(deps.delayMs, (room, message) => this.release(room, message));
    this.push = (room, message) => this.delay.push(room, message);
  }

  get rooms(): RoomId[] {
    return [...this.memberships.keys()];
  }

  lastSeq(room: RoomId): Seq | undefined {
    return this.memberships.get(room)?.lastSeq;
  }

  has(room: RoomId): boolean {
    return this.memberships.has(room);
  }

  /** Whether a join, switch or rejoin of `room` is in flight: sends to it wait. */
  isJoining(room: RoomId): boolean {
    return this.joins.has(room);
  }

  get delayMs(): number {
    return this.delay.delayMs;
  }

  setDelay(delayMs: number): void {
    this.delay.setDelay(delayMs);
  }

  // ---- requests ------------------------------------------------------------------------------------

  /** See RoomcastClient.join; the caller has checked the arguments and the connection. */
  join(room: RoomId, lastSeq: Seq | undefined): Promise<JoinedFrame> {
    if (this.memberships.has(room)) return Promise.reject(new ClientError('already_in_room', `already in (or joining) room '${room}'`, { room }));
    this.memberships.set(room, { lastSeq: lastSeq ?? 0, joined: false });
    return new Promise<JoinedFrame>((resolve, reject) => {
      const pending = newPendingJoin('join', room, null, resolve, reject);
      this.joins.set(room, pending);
      this.requestJoin(pending, lastSeq === undefined ? { t: 'join', room } : { t: 'join', room, lastSeq });
    });
  }

  /** See RoomcastClient.switchRoom. */
  async switchRoom(from: RoomId, to: RoomId): Promise<JoinedFrame> {
    await this.joinSettled(from);
    const notOpen = this.deps.notOpen();
    if (notOpen) throw notOpen;
    if (!this.memberships.has(from)) throw new ClientError('not_in_room', `not in room '${from}'`, { room: from });
    if (from === to || this.memberships.has(to)) throw new ClientError('already_in_room', `already in (or joining) room '${to}'`, { room: to });
    this.memberships.set(to, { lastSeq: 0, joined: false });
    return new Promise<JoinedFrame>((resolve, reject) => {
      const pending = newPendingJoin('switch', to, from, resolve, reject);
      this.joins.set(to, pending);
      this.requestJoin(pending, { t: 'switch', from, to });
    });
  }

  /** See RoomcastClient.leave. */
  async leave(room: RoomId): Promise<void> {
    await this.joinSettled(room);
    if (!this.memberships.has(room)) throw new ClientError('not_in_room', `not in room '${room}'`, { room });
    if (!this.deps.isOpen()) {
      this.forget(room);
      this.deps.listener.left(room, 'leave');
      return;
    }
    return this.deps.requests.request<void>('leave', room, { t: 'leave', room }, (frame) => {
      // The server is the judge of membership: not in the room means not to rejoin it.
      if (frame.code === 'not_in_room') this.forget(room);
    });
  }

  // ---- frames from the server ----------------------------------------------------------------------

  onMessages(frame: MessagesFrame): void {
    const membership = this.memberships.get(frame.room);
    if (membership) membership.lastSeq = deliverNew(frame.room, frame.msgs, membership.lastSeq, this.push);
  }

  onViewers(frame: ViewersFrame): void {
    if (this.memberships.has(frame.room)) this.deps.listener.viewers(frame.room, frame.count);
  }

  onJoined(frame: JoinedFrame): void {
    const { room } = frame;
    const pending = this.joins.get(room);
    if (pending) {
      this.joins.delete(room);
      if (pending.timer) clearTimeout(pending.timer);
    }
    const membership = this.memberships.get(room);
    if (!membership) {
      // Nobody wants this room any more (its join timed out): leave it again.
      this.deps.transmit({ t: 'leave', room });
      if (pending) settle(pending);
      return;
    }
    membership.joined = true;
    if (frame.gap) this.onGap(room, frame.gap);
    // The pin as of joined.seq; pin and unpin messages among msgs replay to the same state.
    this.deps.listener.pinned(room, frame.pinned ?? null);
    membership.lastSeq = deliverNew(room, frame.msgs, membership.lastSeq, this.push);
    if (frame.seq > membership.lastSeq) membership.lastSeq = frame.seq;
    this.deps.listener.viewers(room, frame.viewers);
    if (pending) {
      pending.resolve(frame);
      settle(pending);
    }
    this.deps.roomSettled(room);
  }

  onLeft(frame: LeftFrame): void {
    const { room, reason } = frame;
    const wasMember = this.forget(room);
    const answered = reason === 'leave' && this.deps.requests.answer('leave', room, undefined);
    // A room left quietly after an abandoned join is nobody's business.
    if (wasMember || answered) this.deps.listener.left(room, reason);
  }

  onGap(room: RoomId, gap: Gap): void {
    const membership = this.memberships.get(room);
    if (!membership) return;
    if (gap.to > membership.lastSeq) membership.lastSeq = gap.to;
    this.deps.listener.gap(room, gap);
  }

  /** Errors of joins and switches, matched by `ref` and room; false when the error answers none. */
  onError(frame: ErrorFrame): boolean {
    const { room } = frame;
    if (room === undefined) return false;
    if (frame.ref === 'join') {
      const pending = this.joins.get(room);
      if (pending && pending.kind !== 'switch') { this.joinFailed(pending, frame); return true; }
    } else if (frame.ref === 'switch') {
      const pending = this.pendingSwitch(room);
      if (pending) { this.joinFailed(pending, frame); return true; }
    }
    return false;
  }

  // ---- the connection ------------------------------------------------------------------------------

  /** A connection opened: rejoin every room from the last seq received. */
  rejoinAll(): void {
    for (const room of this.memberships.keys()) this.rejoin(room);
  }

  /** The connection was lost: joins and switches in flight fail; the rooms stay, to be rejoined. */
  connectionLost(error: ClientError): void {
    const joins = [...this.joins.values()];
    this.joins.clear();
    for (const pending of joins) {
      if (pending.timer) clearTimeout(pending.timer);
      if (pending.kind !== 'rejoin') {
        // The join did not happen: the room is not one to rejoin.
        if (this.memberships.get(pending.room)?.joined === false) this.forget(pending.room);
        pending.reject(new ClientError(error.code, error.message, { room: pending.room }));
      }
      settle(pending);
    }
    for (const membership of this.memberships.values()) membership.joined = false;
  }

  /** The client closed: every room is forgotten, with the messages held for it. */
  clear(): void {
    this.memberships.clear();
    this.delay.clear();
  }

  // ---- joins ---------------------------------------------------------------------------------------

  private rejoin(room: RoomId): void {
    const pending = newPendingJoin('rejoin', room, null, noop, noop);
    this.joins.set(room, pending);
    this.requestJoin(pending, { t: 'join', room, lastSeq: this.memberships.get(room)?.lastSeq ?? 0 });
  }

  private requestJoin(pending: PendingJoin, frame: OutgoingFrame): void {
    this.deps.transmit(frame);
    pending.timer = setTimeout(() => {
      pending.timer = null;
      this.joinFailed(pending, null);
    }, this.deps.requestTimeoutMs);
  }

  /** A join, switch or rejoin failed with the server's error, or timed out (`frame` null). */
  private joinFailed(pending: PendingJoin, frame: ErrorFrame | null): void {
    const { room } = pending;
    if (pending.timer) clearTimeout(pending.timer);
    pending.timer = null;
    if (pending.kind === 'rejoin' && (frame === null || TRANSIENT_CODES.has(frame.code)) && this.memberships.has(room)) {
      // Still joining: retry on this connection after a backoff; sends to the room keep waiting.
      const delayMs = fullJitterDelayMs(pending.attempt++, this.deps.backoff, this.deps.random);
      pending.timer = setTimeout(() => {
        pending.timer = null;
        if (this.joins.get(room) === pending) this.requestJoin(pending, { t: 'join', room, lastSeq: this.memberships.get(room)?.lastSeq ?? 0 });
      }, delayMs);
      return;
    }
    this.joins.delete(room);
    const membership = this.memberships.get(room);
    if (membership && !membership.joined) this.forget(room);
    const error = frame ? ClientError.fromFrame(frame) : new ClientError('timeout', `no answer within ${this.deps.requestTimeoutMs} ms`, { room });
    if (pending.kind === 'rejoin') {
      if (membership) {
        this.deps.listener.error(frame ?? { t: 'error', code: error.code, message: error.message, room, ref: 'join' });
        this.deps.listener.left(room, frame?.code === 'banned' ? 'banned' : 'leave');
      }
    } else {
      pending.reject(error);
    }
    settle(pending);
    // Sends held for the room go out now; the server answers them (not_in_room).
    this.deps.roomSettled(room);
  }

  /** The switch in flight to `room`, or from it (errors about `from` name `from`). */
  private pendingSwitch(room: RoomId): PendingJoin | undefined {
    const to = this.joins.get(room);
    if (to?.kind === 'switch') return to;
    for (const pending of this.joins.values()) if (pending.kind === 'switch' && pending.from === room) return pending;
    return undefined;
  }

  /** Resolves once no join, switch or rejoin of `room` is in flight. */
  private joinSettled(room: RoomId): Promise<void> | void {
    const pending = this.joins.get(room);
    if (!pending) return;
    return new Promise<void>((resolve) => pending.settled.push(resolve));
  }

  /** Forgets a room and the messages held for it; whether the client was in it. */
  private forget(room: RoomId): boolean {
    this.delay.dropRoom(room);
    return this.memberships.delete(room);
  }

  /** A message's time has come (at once without a delay). */
  private release(room: RoomId, message: RoomMessage): void {
    const { listener } = this.deps;
    listener.message(room, message);
    if (message.kind === 'pin') listener.pinned(room, pinnedBy(message));
    else if (message.kind === 'unpin') listener.pinned(room, null);
  }
}

/** The pinned message a `pin` message stands for: its target, author and kind, with the pin's text and ts. */
function pinnedBy(pin: RoomMessage): RoomMessage {
  const from = pin.data?.from;
  const kind = pin.data?.kind;
  const pinnedKind: MessageKind = (MESSAGE_KINDS as readonly unknown[]).includes(kind) ? kind as MessageKind : 'chat';
  return {
    seq: pin.target ?? 0,
    uid: typeof from === 'string' ? from : '',
    kind: pinnedKind,
    prio: priorityOf(pinnedKind),
    text: pin.text,
    ts: pin.ts,
  };
}

function newPendingJoin(
  kind: PendingJoin['kind'], room: RoomId, from: RoomId | null,
  resolve: (frame: JoinedFrame) => void, reject: (error: ClientError) => void,
): PendingJoin {
  return { kind, room, from, attempt: 0, timer: null, resolve, reject, settled: [] };
}

function settle(pending: PendingJoin): void {
  const callbacks = pending.settled;
  pending.settled = [];
  for (const callback of callbacks) callback();
}
