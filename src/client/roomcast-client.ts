/**
 * The Roomcast client SDK, for browsers and Node 20: one WebSocket to a gateway, the rooms joined
 * over it, sends the server acknowledges, and reconnection that rejoins every room from the last seq
 * seen and resends every unacknowledged send (sends are idempotent by their id), so callers see each
 * room message once and every send settle. docs/protocol.md is the contract this implements.
 *
 * Only the browser WebSocket API is used (binaryType, on* handlers, send, close, readyState), so Node
 * passes the `ws` package's class as `options.WebSocket`.
 */
import { decodeJson, decodeMsgpack, encodeFrame } from '../shared/codec/codec.js';
import { closeCodeOf, type ErrorCode } from '../shared/errors.js';
import {
  CLIENT_MSG_ID_MAX_LENGTH, ROOM_ID_PATTERN, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, isRoomId,
  type AckFrame, type ClientFrame, type ClientMsgId, type ErrorFrame, type Gap, type HistoryFrame,
  type HistoryResultFrame, type JoinedFrame, type LeftFrame, type MessageKind, type NoticeFrame,
  type ReconnectFrame, type RoomId, type RoomMessage, type Seq, type SendFrame, type ServerFrame,
  type WelcomeFrame, type WireFormat,
} from '../shared/protocol/frames.js';
import { DEFAULT_RECONNECT_BASE_MS, DEFAULT_RECONNECT_MAX_MS, fullJitterDelayMs, type BackoffSettings } from './backoff.js';
import { ChatChannel } from './chat-channel.js';
import { ClientError } from './client-error.js';
import { deliverNew } from './dedup.js';
import { Emitter } from './emitter.js';

export { ClientError } from './client-error.js';
export type {
  AckFrame, ErrorFrame, Gap, HistoryResultFrame, JoinedFrame, MessageKind, NoticeFrame, RoomId,
  RoomMessage, Seq, WelcomeFrame, WireFormat,
} from '../shared/protocol/frames.js';

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** A connection that stayed up this long resets the backoff: the next drop reconnects quickly again. */
export const STABLE_CONNECTION_MS = 10_000;
/** The heartbeat never ticks faster than this, whatever the server's heartbeatMs. */
const MIN_HEARTBEAT_TICK_MS = 500;

const WS_OPEN = 1;
const CLOSE_NORMAL = 1000;
/** What browsers report when a connection ended without a close frame; also used for drops the client decides. */
const CLOSE_ABNORMAL = 1006;
const CLOSE_SERVICE_RESTART = 1012;
const CLOSE_UNAUTHORIZED = closeCodeOf('unauthorized')!;
const CLOSE_DEVICE_REPLACED = closeCodeOf('device_replaced')!;

/** Failures worth retrying a rejoin for on the same connection; any other failure drops the room. */
const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['unavailable', 'timeout', 'internal', 'rate_limited']);

// ---- the WebSocket the client drives ------------------------------------------------------------

export interface MessageEventLike { readonly data: unknown }
export interface CloseEventLike { readonly code: number; readonly reason: string }

/** The part of the browser WebSocket API the client uses; the `ws` package's class has it too. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  // `never`: any handler type of a real implementation fits; the client assigns its own.
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

// ---- options and events -------------------------------------------------------------------------

export interface ReconnectOptions {
  /** The ceiling of the first reconnection delay, in ms. Default 250. */
  baseMs?: number;
  /** The largest reconnection delay, in ms. Default 10 000. */
  maxMs?: number;
  /** Reconnect after a lost connection. Default true. */
  enabled?: boolean;
}

export interface RoomcastClientOptions {
  /** The gateway's WebSocket endpoint, e.g. `wss://chat.example.com/ws`. */
  url: string;
  /**
   * The room service's dispatch endpoint (`https://api.example.com/v1/gateway`). When set, every
   * connection attempt first asks it for a lightly loaded gateway (with the token as Bearer) and
   * connects there; when it fails, the attempt uses `url`.
   */
  dispatchUrl?: string;
  /** A JWT, or a function that returns one; it is called before every connection attempt, so reconnects get a fresh token. */
  token: string | (() => string | Promise<string>);
  /** How the server encodes what it sends, and how the client encodes what it sends. Default msgpack. */
  format?: WireFormat;
  /** The WebSocket class. Default globalThis.WebSocket (browsers); Node 20 passes the `ws` package's class. */
  WebSocket?: WebSocketConstructor;
  reconnect?: ReconnectOptions;
  /** A number in [0, 1), for the reconnection jitter. Default Math.random. */
  random?: () => number;
  /** How long a request (and the wait for `welcome`) may take before it fails with `timeout`, in ms. Default 10 000. */
  requestTimeoutMs?: number;
}

/**
 * `idle` before connect(); `connecting` while a connection attempt waits for its welcome; `open` after
 * it; `reconnecting` while waiting to try again; `closed` after close(), after the server refused
 * the token (4001), or after a lost connection when reconnection is disabled.
 */
export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface DisconnectInfo {
  /**
   * The WebSocket close code (docs/protocol.md lists them). 1006 also stands for drops the client
   * decided itself: no welcome in time, no answer to a ping, a token provider that failed.
   */
  code: number;
  reason: string;
}

export interface ReconnectInfo {
  /** 1 for the first attempt after a connection was lost, counting up while attempts fail. */
  attempt: number;
  delayMs: number;
}

export type LeftReason = LeftFrame['reason'];

export interface RoomcastClientEvents {
  /** A room message not delivered before: each seq of a room once, in increasing order. */
  message: [room: RoomId, message: RoomMessage];
  /** The room's viewer count (on join, then when it changes). */
  viewers: [room: RoomId, count: number];
  /** Messages `from`..`to` of the room are lost for good (beyond history's retention). */
  gap: [room: RoomId, gap: Gap];
  /**
   * The client is no longer in the room: it left, it switched away, a moderator banned it, or the room
   * could not be rejoined after a reconnect ('banned' when that was the reason, otherwise 'leave';
   * an 'error' event with the server's error comes first).
   */
  left: [room: RoomId, reason: LeftReason];
  notice: [notice: NoticeFrame];
  /** An error frame that answers no pending request of this client (or a frame the client could not decode). */
  error: [error: ErrorFrame];
  /** A connection is ready (its welcome arrived); rooms are being rejoined. */
  connected: [welcome: WelcomeFrame];
  /** A connection, or an attempt to open one, ended. */
  disconnected: [info: DisconnectInfo];
  /** The next connection attempt is scheduled. */
  reconnecting: [info: ReconnectInfo];
}

// ---- the client's bookkeeping -------------------------------------------------------------------

type Timer = ReturnType<typeof setTimeout>;

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: ClientError): void;
  timer: Timer | null;
}

interface Membership {
  /** The highest seq delivered (or reported lost) in the room: the duplicate mark and the rejoin point. */
  lastSeq: Seq;
  /** Whether the current connection is in the room; false while it is joined or rejoined. */
  joined: boolean;
}

/** A join, a switch or an automatic rejoin in flight, keyed by the room it joins. */
interface PendingJoin extends Waiter<JoinedFrame> {
  kind: 'join' | 'switch' | 'rejoin';
  room: RoomId;
  /** The room a switch leaves. */
  from: RoomId | null;
  /** Failed tries of a rejoin, for its backoff. */
  attempt: number;
  /** Called once it settles, either way (leave() and switchRoom() wait for it). */
  settled: Array<() => void>;
}

interface PendingSend extends Waiter<AckFrame> {
  room: RoomId;
  id: ClientMsgId;
  /** The encoded frame, kept for resends. */
  data: Uint8Array | string;
  /** Sent on the current connection and not answered yet. */
  onWire: boolean;
}

const noop = (): void => undefined;

export class RoomcastClient extends Emitter<RoomcastClientEvents> {
  private readonly url: string;
  private readonly dispatchUrl: string | null;
  private readonly token: RoomcastClientOptions['token'];
  private readonly format: WireFormat;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly backoff: BackoffSettings;
  private readonly reconnectEnabled: boolean;
  private readonly random: () => number;
  private readonly requestTimeoutMs: number;
  /** Private and group chat over this connection: sends, events, automatic ack and sync. */
  readonly chat: ChatChannel;

  private currentState: ClientState = 'idle';
  private socket: WebSocketLike | null = null;
  private welcomeFrame: WelcomeFrame | null = null;
  /** Bumped by close() and by each connection attempt, so late callbacks of an older one do nothing. */
  private generation = 0;
  private connectWaiters: Array<Waiter<WelcomeFrame>> = [];
  private failedAttempts = 0;
  private openedAtMs = 0;
  /** When the server asked for a reconnect no sooner than (a `reconnect` frame); 0 when it did not. */
  private serverReconnectAtMs = 0;
  private reconnectTimer: Timer | null = null;
  private welcomeTimer: Timer | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private lastSentAtMs = 0;
  private lastReceivedAtMs = 0;
  private pingSentAtMs = 0;
  /** The last error frame that answered no request: it explains a close that follows (4001, 4000). */
  private connectionError: ErrorFrame | null = null;
  private idCounter = 0;

  private readonly memberships = new Map<RoomId, Membership>();
  private readonly joins = new Map<RoomId, PendingJoin>();
  private readonly leaves = new Map<RoomId, Array<Waiter<void>>>();
  private readonly histories = new Map<RoomId, Array<Waiter<HistoryResultFrame>>>();
  /** In the order they were made, which is the order they are resent in. */
  private readonly sends = new Map<ClientMsgId, PendingSend>();
  private readonly deliver = (room: RoomId, message: RoomMessage): void => this.emit('message', room, message);

  constructor(options: RoomcastClientOptions) {
    super();
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketImpl) throw new TypeError('no WebSocket class: pass options.WebSocket (in Node 20, the ws package\'s WebSocket)');
    this.url = options.url;
    this.dispatchUrl = options.dispatchUrl ?? null;
    this.token = options.token;
    this.format = options.format ?? 'msgpack';
    this.WebSocketImpl = WebSocketImpl;
    this.backoff = {
      baseMs: positive(options.reconnect?.baseMs, DEFAULT_RECONNECT_BASE_MS, 'reconnect.baseMs'),
      maxMs: positive(options.reconnect?.maxMs, DEFAULT_RECONNECT_MAX_MS, 'reconnect.maxMs'),
    };
    this.reconnectEnabled = options.reconnect?.enabled ?? true;
    this.random = options.random ?? Math.random;
    this.requestTimeoutMs = positive(options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 'requestTimeoutMs');
    this.chat = new ChatChannel({
      transmit: (frame) => this.transmit(frame),
      isOpen: () => this.currentState === 'open',
      newMessageId: () => this.newMessageId(),
      requestTimeoutMs: this.requestTimeoutMs,
    });
  }

  get state(): ClientState {
    return this.currentState;
  }

  /** The current connection's welcome (its session, role and limits); null when not connected. */
  get welcome(): WelcomeFrame | null {
    return this.welcomeFrame;
  }

  /** The rooms the client is in, or is joining or rejoining. */
  get rooms(): RoomId[] {
    return [...this.memberships.keys()];
  }

  /** The highest seq delivered in a room the client is in; undefined for other rooms. */
  lastSeq(room: RoomId): Seq | undefined {
    return this.memberships.get(room)?.lastSeq;
  }

  // ---- connection ----------------------------------------------------------------------------------

  /**
   * Opens the connection and resolves with its welcome. While reconnection is enabled, failed attempts
   * are retried with backoff until one succeeds; it rejects with `unauthorized` when the server
   * refuses the token, with `unavailable` when the attempt fails and reconnection is disabled or when
   * close() is called first. Called again after a 4001, it reconnects and rejoins the rooms it was in.
   */
  connect(): Promise<WelcomeFrame> {
    if (this.currentState === 'open' && this.welcomeFrame) return Promise.resolve(this.welcomeFrame);
    const welcome = new Promise<WelcomeFrame>((resolve, reject) => this.connectWaiters.push({ resolve, reject, timer: null }));
    if (this.currentState === 'idle' || this.currentState === 'closed') {
      this.failedAttempts = 0;
      this.serverReconnectAtMs = 0;
      void this.openSocket();
    }
    return welcome;
  }

  /**
   * Closes the connection for good: no reconnection; every pending request, send included, rejects
   * with `unavailable`, and the rooms are forgotten. connect() may be called again afterwards.
   */
  close(): void {
    const socket = this.socket;
    this.socket = null;
    this.currentState = 'closed';
    this.generation++;
    this.clearConnectionTimers();
    this.welcomeFrame = null;
    const closed = new ClientError('unavailable', 'the client was closed');
    this.failRequests(closed);
    this.rejectSends(closed);
    this.chat.closed(closed);
    this.rejectConnectWaiters(closed);
    this.memberships.clear();
    if (socket) {
      socket.close(CLOSE_NORMAL, 'client closed');
      this.emit('disconnected', { code: CLOSE_NORMAL, reason: 'closed by the client' });
    }
  }

  // ---- requests ------------------------------------------------------------------------------------

  /**
   * Joins a room. Resolves with `joined` once the server has added the connection: its `msgs` (the
   * latest messages, or with `lastSeq` the ones after it) are also delivered as 'message' events,
   * minus any already delivered. Rejects with already_in_room (also while a join of the room is in
   * flight), too_many_rooms, unknown_room, banned, ...
   */
  join(room: RoomId, options: { lastSeq?: Seq } = {}): Promise<JoinedFrame> {
    const problem = roomProblem(room) ?? seqProblem(options.lastSeq, 'lastSeq') ?? this.notOpen();
    if (problem) return Promise.reject(problem);
    if (this.memberships.has(room)) return Promise.reject(new ClientError('already_in_room', `already in (or joining) room '${room}'`, { room }));
    const { lastSeq } = options;
    this.memberships.set(room, { lastSeq: lastSeq ?? 0, joined: false });
    return new Promise<JoinedFrame>((resolve, reject) => {
      const pending = newPendingJoin('join', room, null, resolve, reject);
      this.joins.set(room, pending);
      this.requestJoin(pending, lastSeq === undefined ? { t: 'join', room } : { t: 'join', room, lastSeq });
    });
  }

  /**
   * Leaves `from` and joins `to` as one request. Resolves with the `joined` of `to`; a 'left' event
   * (reason 'switch') for `from` comes first. When `to` cannot be joined it rejects with the server's
   * error, and the client stays in `from` unless a 'left' event for `from` came before the error.
   */
  async switchRoom(from: RoomId, to: RoomId): Promise<JoinedFrame> {
    const problem = roomProblem(from) ?? roomProblem(to) ?? this.notOpen();
    if (problem) throw problem;
    await this.joinSettled(from);
    const stillProblem = this.notOpen();
    if (stillProblem) throw stillProblem;
    if (!this.memberships.has(from)) throw new ClientError('not_in_room', `not in room '${from}'`, { room: from });
    if (from === to || this.memberships.has(to)) throw new ClientError('already_in_room', `already in (or joining) room '${to}'`, { room: to });
    this.memberships.set(to, { lastSeq: 0, joined: false });
    return new Promise<JoinedFrame>((resolve, reject) => {
      const pending = newPendingJoin('switch', to, from, resolve, reject);
      this.joins.set(to, pending);
      this.requestJoin(pending, { t: 'switch', from, to });
    });
  }

  /**
   * Leaves a room (after a join of it in flight has settled). Without a connection it resolves at
   * once: the room is simply not rejoined. Rejects with not_in_room when the client is not in it.
   */
  async leave(room: RoomId): Promise<void> {
    const problem = roomProblem(room);
    if (problem) throw problem;
    await this.joinSettled(room);
    if (!this.memberships.has(room)) throw new ClientError('not_in_room', `not in room '${room}'`, { room });
    if (this.currentState !== 'open') {
      this.memberships.delete(room);
      this.emit('left', room, 'leave');
      return;
    }
    return new Promise<void>((resolve, reject) => {
      this.requestInQueue(this.leaves, room, { resolve, reject, timer: null }, { t: 'leave', room });
    });
  }

  /**
   * Sends a message to a room the client is in and resolves with its `ack` once the server has stored
   * it. `id` (default: a random UUID) makes it idempotent: if the connection drops before the ack, the
   * client resends it with the same id after rejoining, and the promise still resolves with the
   * original seq. Sends made while reconnecting wait for the connection. Rejects with the server's
   * error (text_too_long, rate_limited, slow_mode, muted, banned, forbidden, not_in_room, ...), with
   * `timeout` when no answer comes within requestTimeoutMs of sending (the message may still have been
   * stored: send again with the same id to find out), or `unavailable` when the client is closed.
   */
  send(room: RoomId, text: string, options: { kind?: MessageKind; id?: ClientMsgId } = {}): Promise<AckFrame> {
    const id = options.id ?? this.newMessageId();
    const problem = roomProblem(room) ?? idProblem(id) ?? (typeof text === 'string' ? null : new ClientError('bad_request', "'text' must be a string", { room }));
    if (problem) return Promise.reject(problem);
    if (this.sends.has(id)) return Promise.reject(new ClientError('bad_request', `a send with id '${id}' is already pending`, { room, id }));
    if (this.currentState === 'idle' || this.currentState === 'closed') {
      return Promise.reject(new ClientError('unavailable', 'not connected: call connect() first', { room, id }));
    }
    const frame: SendFrame = options.kind === undefined ? { t: 'send', room, id, text } : { t: 'send', room, id, text, kind: options.kind };
    const data = encodeFrame(this.format, frame);
    return new Promise<AckFrame>((resolve, reject) => {
      const pending: PendingSend = { room, id, data, onWire: false, timer: null, resolve, reject };
      this.sends.set(id, pending);
      if (this.currentState === 'open' && !this.joins.has(room)) this.transmitSend(pending);
    });
  }

  /**
   * Reads a page of a room's history: up to `limit` messages (server default 50, at most
   * welcome.limits.historyPageMax) older than `beforeSeq` (default: the newest), oldest first; `more`
   * tells whether older ones exist. The messages are not delivered as 'message' events.
   */
  history(room: RoomId, options: { beforeSeq?: Seq; limit?: number } = {}): Promise<HistoryResultFrame> {
    const { beforeSeq, limit } = options;
    const problem = roomProblem(room) ?? seqProblem(beforeSeq, 'beforeSeq') ?? limitProblem(limit) ?? this.notOpen();
    if (problem) return Promise.reject(problem);
    const frame: HistoryFrame = { t: 'history', room };
    if (beforeSeq !== undefined) frame.beforeSeq = beforeSeq;
    if (limit !== undefined) frame.limit = limit;
    return new Promise<HistoryResultFrame>((resolve, reject) => {
      this.requestInQueue(this.histories, room, { resolve, reject, timer: null }, frame);
    });
  }

  // ---- opening and losing connections --------------------------------------------------------------

  private async openSocket(): Promise<void> {
    const generation = ++this.generation;
    this.currentState = 'connecting';
    this.connectionError = null;
    let token: string;
    try {
      token = typeof this.token === 'string' ? this.token : await this.token();
    } catch (error) {
      if (generation === this.generation) this.connectionLost({ code: CLOSE_ABNORMAL, reason: `the token provider failed: ${messageOf(error)}` });
      return;
    }
    if (generation !== this.generation) return;
    const url = this.dispatchUrl ? await this.dispatchedUrl(token) : this.url;
    if (generation !== this.generation) return;
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketImpl(urlWithToken(url, token), this.format === 'json' ? SUBPROTOCOL_JSON : SUBPROTOCOL_MSGPACK);
    } catch (error) {
      // A malformed URL: no retry can help.
      this.stop(new ClientError('bad_request', `cannot open a WebSocket to ${this.url}: ${messageOf(error)}`, { cause: error }));
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.onmessage = (event: MessageEventLike) => {
      if (this.socket === socket) this.onData(event.data);
    };
    socket.onclose = (event: CloseEventLike) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.connectionLost({ code: event.code, reason: event.reason });
    };
    // Every error event is followed by a close event, which carries what is known.
    socket.onerror = noop;
    this.welcomeTimer = setTimeout(() => {
      this.welcomeTimer = null;
      this.abandon(socket, { code: CLOSE_ABNORMAL, reason: `no welcome within ${this.requestTimeoutMs} ms` });
    }, this.requestTimeoutMs);
  }

  /** The gateway the dispatch endpoint names, or `url` when it cannot answer. */
  private async dispatchedUrl(token: string): Promise<string> {
    try {
      const response = await fetch(this.dispatchUrl!, {
        headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
      const body = (await response.json()) as { url?: unknown };
      if (response.ok && typeof body.url === 'string') return body.url;
    } catch {
      // The configured url is the fallback; the dispatch endpoint is an optimisation.
    }
    return this.url;
  }

  /** Drops a connection the client gave up on, without waiting for the closing handshake. */
  private abandon(socket: WebSocketLike, info: DisconnectInfo): void {
    if (this.socket !== socket) return;
    this.socket = null;
    socket.close(CLOSE_NORMAL, 'reconnecting');
    this.connectionLost(info);
  }

  /** The current connection (or attempt) ended: settle what cannot survive it, then reconnect or stop. */
  private connectionLost(info: DisconnectInfo): void {
    const upForMs = this.welcomeFrame ? Date.now() - this.openedAtMs : 0;
    this.clearConnectionTimers();
    this.welcomeFrame = null;
    const detail = info.reason ? `${info.code}: ${info.reason}` : `${info.code}`;
    const lost = new ClientError('unavailable', `the connection was lost (${detail})`);
    this.failRequests(lost);
    this.emit('disconnected', info);
    if (this.currentState === 'closed') return; // a listener called close()
    if (info.code === CLOSE_UNAUTHORIZED) {
      const refused = this.connectionError?.code === 'unauthorized' ? this.connectionError.message : info.reason || 'the token was refused';
      this.stop(new ClientError('unauthorized', refused));
      return;
    }
    if (info.code === CLOSE_DEVICE_REPLACED) {
      // Reconnecting would replace the newer login in turn: leave it to the application.
      this.stop(new ClientError('device_replaced'));
      return;
    }
    if (!this.reconnectEnabled) {
      this.stop(lost);
      return;
    }
    if (upForMs >= STABLE_CONNECTION_MS) this.failedAttempts = 0;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const backoffMs = fullJitterDelayMs(this.failedAttempts, this.backoff, this.random);
    const delayMs = Math.max(backoffMs, this.serverReconnectAtMs - Date.now());
    this.failedAttempts++;
    this.currentState = 'reconnecting';
    const generation = this.generation;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (generation === this.generation) void this.openSocket();
    }, delayMs);
    this.emit('reconnecting', { attempt: this.failedAttempts, delayMs });
  }

  /** Gives up connecting (4001, reconnection disabled, a bad URL). The rooms are kept for a later connect(). */
  private stop(error: ClientError): void {
    this.currentState = 'closed';
    this.generation++;
    this.clearConnectionTimers();
    this.rejectSends(error);
    this.chat.closed(error);
    this.rejectConnectWaiters(error);
  }

  /**
   * Rejects the requests that cannot outlive the connection (joins, switches, leaves, history) and puts
   * sends back to waiting for the next one. Rooms stay, to be rejoined.
   */
  private failRequests(error: ClientError): void {
    const joins = [...this.joins.values()];
    this.joins.clear();
    for (const pending of joins) {
      if (pending.timer) clearTimeout(pending.timer);
      if (pending.kind !== 'rejoin') {
        // The join did not happen: the room is not one to rejoin.
        if (this.memberships.get(pending.room)?.joined === false) this.memberships.delete(pending.room);
        pending.reject(new ClientError(error.code, error.message, { room: pending.room }));
      }
      settle(pending);
    }
    for (const membership of this.memberships.values()) membership.joined = false;
    for (const queues of [this.leaves, this.histories] as Array<Map<RoomId, Array<Waiter<never>>>>) {
      for (const [room, queue] of queues) {
        for (const waiter of queue) {
          if (waiter.timer) clearTimeout(waiter.timer);
          waiter.reject(new ClientError(error.code, error.message, { room }));
        }
      }
      queues.clear();
    }
    for (const pending of this.sends.values()) {
      if (pending.timer) clearTimeout(pending.timer);
      pending.timer = null;
      pending.onWire = false;
    }
    this.chat.connectionLost(error);
  }

  private rejectSends(error: ClientError): void {
    const sends = [...this.sends.values()];
    this.sends.clear();
    for (const pending of sends) {
      if (pending.timer) clearTimeout(pending.timer);
      pending.reject(new ClientError(error.code, error.message, { room: pending.room, id: pending.id }));
    }
  }

  private rejectConnectWaiters(error: ClientError): void {
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private clearConnectionTimers(): void {
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.welcomeTimer = this.reconnectTimer = this.heartbeatTimer = null;
  }

  // ---- frames from the server ----------------------------------------------------------------------

  private onData(data: unknown): void {
    this.lastReceivedAtMs = Date.now();
    let frame: unknown;
    try {
      frame = typeof data === 'string' ? decodeJson(data) : decodeMsgpack(bytesOf(data));
    } catch (error) {
      this.emit('error', { t: 'error', code: 'bad_frame', message: `undecodable frame from the server: ${messageOf(error)}` });
      return;
    }
    if (typeof frame !== 'object' || frame === null || typeof (frame as { t?: unknown }).t !== 'string') {
      this.emit('error', { t: 'error', code: 'bad_frame', message: "a frame from the server is not a map with a string 't'" });
      return;
    }
    this.onFrame(frame as ServerFrame);
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.t) {
      case 'messages': {
        const membership = this.memberships.get(frame.room);
        if (membership) membership.lastSeq = deliverNew(frame.room, frame.msgs, membership.lastSeq, this.deliver);
        return;
      }
      case 'ack': {
        const pending = this.sends.get(frame.id);
        if (!pending) return; // it timed out, or was settled by an earlier answer
        this.sends.delete(frame.id);
        if (pending.timer) clearTimeout(pending.timer);
        pending.resolve(frame);
        return;
      }
      case 'viewers':
        if (this.memberships.has(frame.room)) this.emit('viewers', frame.room, frame.count);
        return;
      case 'joined': this.onJoined(frame); return;
      case 'left': this.onLeft(frame); return;
      case 'history': this.shiftWaiter(this.histories, frame.room)?.resolve(frame); return;
      case 'error': this.onError(frame); return;
      case 'gap': this.onGap(frame.room, { from: frame.from, to: frame.to }); return;
      case 'notice': this.emit('notice', frame); return;
      case 'welcome': this.onWelcome(frame); return;
      case 'reconnect': this.onReconnectRequest(frame); return;
      case 'pong': return; // its arrival is what the heartbeat waits for
      default:
        // Private and group chat frames; any other type is of a newer protocol and ignored.
        this.chat.onFrame(frame);
        return;
    }
  }

  private onWelcome(frame: WelcomeFrame): void {
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.welcomeTimer = null;
    this.welcomeFrame = frame;
    this.currentState = 'open';
    this.openedAtMs = this.lastReceivedAtMs;
    this.serverReconnectAtMs = 0;
    this.startHeartbeat(frame.heartbeatMs);
    for (const room of this.memberships.keys()) this.rejoin(room);
    this.flushSends();
    this.chat.connected();
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const waiter of waiters) waiter.resolve(frame);
    this.emit('connected', frame);
  }

  private onJoined(frame: JoinedFrame): void {
    const { room } = frame;
    const pending = this.joins.get(room);
    if (pending) {
      this.joins.delete(room);
      if (pending.timer) clearTimeout(pending.timer);
    }
    const membership = this.memberships.get(room);
    if (!membership) {
      // Nobody wants this room any more (its join timed out): leave it again.
      this.transmit({ t: 'leave', room });
      if (pending) settle(pending);
      return;
    }
    membership.joined = true;
    if (frame.gap) this.onGap(room, frame.gap);
    membership.lastSeq = deliverNew(room, frame.msgs, membership.lastSeq, this.deliver);
    if (frame.seq > membership.lastSeq) membership.lastSeq = frame.seq;
    this.emit('viewers', room, frame.viewers);
    if (pending) {
      pending.resolve(frame);
      settle(pending);
    }
    this.flushSends(room);
  }

  private onLeft(frame: LeftFrame): void {
    const { room, reason } = frame;
    const wasMember = this.memberships.delete(room);
    const waiter = reason === 'leave' ? this.shiftWaiter(this.leaves, room) : undefined;
    // A room left quietly after an abandoned join is nobody's business.
    if (wasMember || waiter) this.emit('left', room, reason);
    waiter?.resolve();
  }

  private onGap(room: RoomId, gap: Gap): void {
    const membership = this.memberships.get(room);
    if (!membership) return;
    if (gap.to > membership.lastSeq) membership.lastSeq = gap.to;
    this.emit('gap', room, gap);
  }

  /** Errors go to the request they answer: sends by id, the rest by `ref` and room. */
  private onError(frame: ErrorFrame): void {
    if (frame.id !== undefined && (frame.ref === undefined || frame.ref === 'send')) {
      const pending = this.sends.get(frame.id);
      if (pending) {
        this.sends.delete(frame.id);
        if (pending.timer) clearTimeout(pending.timer);
        pending.reject(ClientError.fromFrame(frame));
        return;
      }
    }
    const { room } = frame;
    if (room !== undefined) {
      switch (frame.ref) {
        case 'join': {
          const pending = this.joins.get(room);
          if (pending && pending.kind !== 'switch') { this.joinFailed(pending, frame); return; }
          break;
        }
        case 'switch': {
          const pending = this.pendingSwitch(room);
          if (pending) { this.joinFailed(pending, frame); return; }
          break;
        }
        case 'leave': {
          const waiter = this.shiftWaiter(this.leaves, room);
          if (waiter) {
            // The server is the judge of membership: not in the room means not to rejoin it.
            if (frame.code === 'not_in_room') this.memberships.delete(room);
            waiter.reject(ClientError.fromFrame(frame));
            return;
          }
          break;
        }
        case 'history': {
          const waiter = this.shiftWaiter(this.histories, room);
          if (waiter) { waiter.reject(ClientError.fromFrame(frame)); return; }
          break;
        }
      }
    }
    if (this.chat.onError(frame)) return;
    this.connectionError = frame;
    this.emit('error', frame);
  }

  private onReconnectRequest(frame: ReconnectFrame): void {
    const socket = this.socket;
    // Without reconnection, the server's close that follows ends the client anyway.
    if (!socket || !this.reconnectEnabled) return;
    const delayMs = Math.max(0, Number(frame.delayMs) || 0);
    this.serverReconnectAtMs = Date.now() + delayMs;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.abandon(socket, { code: CLOSE_SERVICE_RESTART, reason: 'the server asked for a reconnect' });
    }, delayMs);
  }

  // ---- joins ---------------------------------------------------------------------------------------

  /** Rejoins a room after a reconnect, from the last seq delivered. */
  private rejoin(room: RoomId): void {
    const pending = newPendingJoin('rejoin', room, null, noop, noop);
    this.joins.set(room, pending);
    this.requestJoin(pending, { t: 'join', room, lastSeq: this.memberships.get(room)?.lastSeq ?? 0 });
  }

  private requestJoin(pending: PendingJoin, frame: ClientFrame): void {
    this.transmit(frame);
    pending.timer = setTimeout(() => {
      pending.timer = null;
      this.joinFailed(pending, null);
    }, this.requestTimeoutMs);
  }

  /** A join, switch or rejoin failed with the server's error, or timed out (`frame` null). */
  private joinFailed(pending: PendingJoin, frame: ErrorFrame | null): void {
    const { room } = pending;
    if (pending.timer) clearTimeout(pending.timer);
    pending.timer = null;
    if (pending.kind === 'rejoin' && (frame === null || TRANSIENT_CODES.has(frame.code)) && this.memberships.has(room)) {
      // Still joining: retry on this connection after a backoff; sends to the room keep waiting.
      const delayMs = fullJitterDelayMs(pending.attempt++, this.backoff, this.random);
      pending.timer = setTimeout(() => {
        pending.timer = null;
        if (this.joins.get(room) === pending) this.requestJoin(pending, { t: 'join', room, lastSeq: this.memberships.get(room)?.lastSeq ?? 0 });
      }, delayMs);
      return;
    }
    this.joins.delete(room);
    const membership = this.memberships.get(room);
    if (membership && !membership.joined) this.memberships.delete(room);
    const error = frame ? ClientError.fromFrame(frame) : new ClientError('timeout', `no answer within ${this.requestTimeoutMs} ms`, { room });
    if (pending.kind === 'rejoin') {
      if (membership) {
        this.emit('error', frame ?? { t: 'error', code: error.code, message: error.message, room, ref: 'join' });
        this.emit('left', room, frame?.code === 'banned' ? 'banned' : 'leave');
      }
    } else {
      pending.reject(error);
    }
    settle(pending);
    // Sends held for the room go out now; the server answers them (not_in_room).
    this.flushSends(room);
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

  // ---- sending -------------------------------------------------------------------------------------

  /** Writes a frame on the open socket; false when there is none. */
  private transmit(frame: ClientFrame): boolean {
    return this.write(encodeFrame(this.format, frame));
  }

  private write(data: Uint8Array | string): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== WS_OPEN) return false;
    socket.send(data);
    this.lastSentAtMs = Date.now();
    return true;
  }

  /** Sends a request whose answer is matched by room, first in first out, and arms its timeout. */
  private requestInQueue<T>(queues: Map<RoomId, Array<Waiter<T>>>, room: RoomId, waiter: Waiter<T>, frame: ClientFrame): void {
    let queue = queues.get(room);
    if (!queue) queues.set(room, (queue = []));
    queue.push(waiter);
    this.transmit(frame);
    // A timed-out waiter stays queued, so the late answer is matched to it (and ignored), not to the next.
    waiter.timer = setTimeout(() => {
      waiter.timer = null;
      waiter.reject(new ClientError('timeout', `no answer within ${this.requestTimeoutMs} ms`, { room }));
    }, this.requestTimeoutMs);
  }

  private shiftWaiter<T>(queues: Map<RoomId, Array<Waiter<T>>>, room: RoomId): Waiter<T> | undefined {
    const queue = queues.get(room);
    if (!queue) return undefined;
    const waiter = queue.shift();
    if (queue.length === 0) queues.delete(room);
    if (waiter?.timer) clearTimeout(waiter.timer);
    return waiter;
  }

  private transmitSend(pending: PendingSend): void {
    const maxBytes = this.welcomeFrame?.limits.maxFrameBytes;
    if (maxBytes !== undefined && byteLengthOver(pending.data, maxBytes)) {
      // The server would close the connection (1009), and the resend after reconnecting would again.
      this.sends.delete(pending.id);
      pending.reject(new ClientError('frame_too_large', `the send frame is larger than the server's limit of ${maxBytes} bytes`, { room: pending.room, id: pending.id }));
      return;
    }
    if (!this.write(pending.data)) return;
    pending.onWire = true;
    pending.timer = setTimeout(() => {
      if (this.sends.get(pending.id) !== pending) return;
      this.sends.delete(pending.id);
      pending.reject(new ClientError('timeout', `no ack within ${this.requestTimeoutMs} ms`, { room: pending.room, id: pending.id }));
    }, this.requestTimeoutMs);
  }

  /** Sends what waits for the connection, in order, except sends to rooms still being joined. */
  private flushSends(room?: RoomId): void {
    if (this.currentState !== 'open') return;
    for (const pending of this.sends.values()) {
      if (pending.onWire || (room !== undefined && pending.room !== room) || this.joins.has(pending.room)) continue;
      this.transmitSend(pending);
    }
  }

  // ---- heartbeat -----------------------------------------------------------------------------------

  /**
   * Pings when either direction has been quiet for half of heartbeatMs, which keeps the server's idle
   * timeout away, and drops a connection whose ping goes unanswered for heartbeatMs (a dead peer the
   * TCP connection does not notice). Judging from the outstanding ping, not from the last frame, keeps
   * throttled timers (background tabs) from mistaking a quiet room for a dead connection.
   */
  private startHeartbeat(heartbeatMs: number): void {
    if (!(typeof heartbeatMs === 'number' && heartbeatMs > 0)) return;
    const socket = this.socket;
    if (!socket) return;
    this.pingSentAtMs = 0;
    this.heartbeatTimer = setInterval(() => {
      if (this.socket !== socket) return;
      const now = Date.now();
      if (this.pingSentAtMs > this.lastReceivedAtMs) {
        if (now - this.pingSentAtMs >= heartbeatMs) this.abandon(socket, { code: CLOSE_ABNORMAL, reason: `no answer to a ping within ${heartbeatMs} ms` });
        return;
      }
      const quietMs = heartbeatMs / 2;
      if (now - this.lastSentAtMs >= quietMs || now - this.lastReceivedAtMs >= quietMs) {
        if (this.transmit({ t: 'ping', ts: now })) this.pingSentAtMs = now;
      }
    }, Math.max(MIN_HEARTBEAT_TICK_MS, heartbeatMs / 2));
  }

  // ---- small helpers -------------------------------------------------------------------------------

  private notOpen(): ClientError | null {
    if (this.currentState === 'open') return null;
    const hint = this.currentState === 'idle' ? 'call connect() first' : `the client is ${this.currentState}`;
    return new ClientError('unavailable', `not connected: ${hint}`);
  }

  private newMessageId(): ClientMsgId {
    const crypto = globalThis.crypto as { randomUUID?: () => string } | undefined;
    // randomUUID is missing in browsers' insecure contexts (plain http other than localhost).
    if (typeof crypto?.randomUUID === 'function') return crypto.randomUUID();
    return `${Date.now().toString(36)}-${(this.idCounter++).toString(36)}-${Math.floor(Math.random() * 2 ** 48).toString(36)}`;
  }
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

function roomProblem(room: unknown): ClientError | null {
  return isRoomId(room) ? null : new ClientError('bad_room', `a room id must match ${ROOM_ID_PATTERN}`);
}

function seqProblem(value: unknown, field: string): ClientError | null {
  if (value === undefined) return null;
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
    ? null : new ClientError('bad_request', `'${field}' must be a non-negative integer`);
}

function limitProblem(value: unknown): ClientError | null {
  if (value === undefined) return null;
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? null : new ClientError('bad_request', "'limit' must be a positive integer");
}

function idProblem(id: unknown): ClientError | null {
  return typeof id === 'string' && id.length > 0 && id.length <= CLIENT_MSG_ID_MAX_LENGTH
    ? null : new ClientError('bad_request', `a message id must be a string of 1 to ${CLIENT_MSG_ID_MAX_LENGTH} characters`);
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) throw new RangeError(`${name} must be a positive number of ms`);
  return value;
}

function urlWithToken(url: string, token: string): string {
  const target = new URL(url);
  target.searchParams.set('token', token);
  return target.toString();
}

function bytesOf(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('a binary frame arrived in an unexpected form (binaryType must be arraybuffer)');
}

/** Whether the UTF-8 encoding of `data` is longer than `maxBytes`, without encoding short strings. */
function byteLengthOver(data: Uint8Array | string, maxBytes: number): boolean {
  if (typeof data !== 'string') return data.byteLength > maxBytes;
  if (data.length * 3 <= maxBytes) return false;
  return new TextEncoder().encode(data).byteLength > maxBytes;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
