/**
 * The Roomcast client SDK, for browsers and Node 20: one WebSocket to a gateway, the rooms joined
 * over it, sends the server acknowledges, moderation, and reconnection that rejoins every room from
 * the last seq seen and resends every unacknowledged send (sends are idempotent by their id), so
 * callers see each room message once and every send settle. docs/protocol.md is the contract this
 * implements.
 *
 * This class is the public facade: it checks arguments and wires its collaborators together, each
 * owning one concern: ClientSocket (the connection, wire format and frame dispatch), RoomSessions
 * (rooms, rejoin, dedup, gaps, the delay queue), RequestTable (correlation, timeouts, resends) and
 * ChatChannel (private and group chat).
 *
 * Nothing here needs Node: browsers use their own WebSocket (the default); Node passes the `ws`
 * package's class as `options.WebSocket`.
 */
import {
  CLIENT_MSG_ID_MAX_LENGTH, ROOM_ID_PATTERN, isRoomId,
  type AckFrame, type ClientMsgId, type ErrorFrame, type Gap, type HistoryFrame, type HistoryResultFrame, type JoinedFrame,
  type MessageKind, type ModerateAction, type ModerateFrame, type ModeratedFrame, type ModerationEntry, type NoticeFrame,
  type RoomId, type RoomMessage, type RoomStatsFrame, type Seq, type SendFrame, type Uid, type WelcomeFrame, type WireFormat,
} from '../shared/protocol/frames.js';
import { DEFAULT_RECONNECT_BASE_MS, DEFAULT_RECONNECT_MAX_MS } from './backoff.js';
import { ChatChannel } from './chat-channel.js';
import { ClientError } from './client-error.js';
import {
  ClientSocket, type ClientState, type DisconnectInfo, type ReconnectInfo, type WebSocketConstructor,
} from './client-socket.js';
import { RequestTable } from './request-table.js';
import { RoomSessions, type LeftReason } from './room-sessions.js';
import { Emitter } from './emitter.js';

export { ClientError } from './client-error.js';
export { STABLE_CONNECTION_MS } from './client-socket.js';
export type {
  ClientState, CloseEventLike, DisconnectInfo, MessageEventLike, ReconnectInfo, WebSocketConstructor, WebSocketLike,
} from './client-socket.js';
export type { LeftReason } from './room-sessions.js';
export type {
  AckFrame, ErrorFrame, Gap, HistoryResultFrame, JoinedFrame, MessageKind, ModerateAction, ModeratedFrame, ModerationEntry,
  NoticeFrame, RoomId, RoomMessage, RoomStatsFrame, Seq, WelcomeFrame, WireFormat,
} from '../shared/protocol/frames.js';

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Failed attempts in a row on dispatched addresses before one attempt goes to `url`. */
export const DEFAULT_DISPATCH_FAILURES_BEFORE_FALLBACK = 3;
const CLOSE_NORMAL = 1000;

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
  /**
   * With `dispatchUrl`: after this many attempts in a row on dispatched addresses fail (closed before
   * the welcome), the next attempt connects to `url`; then dispatch is asked again. Default 3.
   */
  dispatchFailuresBeforeFallback?: number;
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
  /**
   * The viewer delay, in ms (default 0: none). Each room message, live or caught up on join, is
   * emitted as 'message' no earlier than its `ts` + delayMs by the local clock (so this assumes clocks
   * synced by NTP), in seq order per room. Change it at run time with setDelay().
   */
  delayMs?: number;
}

export interface RoomcastClientEvents {
  /** A room message not delivered before: each seq of a room once, in increasing order (after the delay, if any). */
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
  /**
   * The room's pinned message, or null for none: on every join (from `joined.pinned`), then as `pin`
   * and `unpin` messages are delivered (right after their 'message' event). For a pin, the message is
   * the pinned one: its seq, author and kind, with the pin's text and ts.
   */
  pinned: [room: RoomId, message: RoomMessage | null];
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

/** The fields of a `moderate` request besides room and action; which ones an action needs is in docs/protocol.md. */
export interface ModerateParams {
  uid?: Uid;
  seq?: Seq;
  /** For mute and ban, in ms. Default (and maximum) one year. */
  durationMs?: number;
  /** For slow_mode: the interval between a viewer's messages, in ms; 0 turns slow mode off. */
  intervalMs?: number;
}

export class RoomcastClient extends Emitter<RoomcastClientEvents> {
  /** Private and group chat over this connection: sends, events, automatic ack and sync. */
  readonly chat: ChatChannel;
  private readonly socket: ClientSocket;
  private readonly requests: RequestTable;
  private readonly sessions: RoomSessions;
  private idCounter = 0;
  private readonly isJoining = (room: RoomId): boolean => this.sessions.isJoining(room);

  constructor(options: RoomcastClientOptions) {
    super();
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketImpl) throw new TypeError('no WebSocket class: pass options.WebSocket (in Node 20, the ws package\'s WebSocket)');
    const requestTimeoutMs = positive(options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 'requestTimeoutMs');
    const backoff = {
      baseMs: positive(options.reconnect?.baseMs, DEFAULT_RECONNECT_BASE_MS, 'reconnect.baseMs'),
      maxMs: positive(options.reconnect?.maxMs, DEFAULT_RECONNECT_MAX_MS, 'reconnect.maxMs'),
    };
    const random = options.random ?? Math.random;

    this.socket = new ClientSocket({
      url: options.url,
      dispatchUrl: options.dispatchUrl ?? null,
      token: options.token,
      format: options.format ?? 'msgpack',
      WebSocket: WebSocketImpl,
      backoff,
      reconnectEnabled: options.reconnect?.enabled ?? true,
      random,
      requestTimeoutMs,
      dispatchFailuresBeforeFallback: count(options.dispatchFailuresBeforeFallback, DEFAULT_DISPATCH_FAILURES_BEFORE_FALLBACK, 'dispatchFailuresBeforeFallback'),
    }, {
      opened: (welcome) => this.opened(welcome),
      lost: (info, error) => this.lost(info, error),
      stopped: (error) => this.stopped(error),
      reconnecting: (info) => this.emit('reconnecting', info),
      undecodable: (frame) => this.emit('error', frame),
    }, {
      messages: (frame) => this.sessions.onMessages(frame),
      ack: (frame) => this.requests.ack(frame),
      viewers: (frame) => this.sessions.onViewers(frame),
      joined: (frame) => this.sessions.onJoined(frame),
      left: (frame) => this.sessions.onLeft(frame),
      history: (frame) => this.requests.answer('history', frame.room, frame),
      moderated: (frame) => this.requests.answerId(frame.id, frame),
      room_stats: (frame) => this.requests.answer('room_stats', frame.room, frame),
      error: (frame) => this.onError(frame),
      gap: (frame) => this.sessions.onGap(frame.room, { from: frame.from, to: frame.to }),
      notice: (frame) => this.emit('notice', frame),
      // Private and group chat frames; any other type is of a newer protocol and ignored.
      other: (frame) => this.chat.onFrame(frame),
    });
    this.requests = new RequestTable({
      transmit: (frame) => this.socket.transmit(frame),
      write: (data) => this.socket.write(data),
      encode: (frame) => this.socket.encode(frame),
      maxFrameBytes: () => this.socket.welcome?.limits.maxFrameBytes,
      requestTimeoutMs,
    }, random);
    this.sessions = new RoomSessions({
      transmit: (frame) => this.socket.transmit(frame),
      isOpen: () => this.socket.isOpen,
      notOpen: () => this.notOpen(),
      requests: this.requests,
      roomSettled: (room) => this.flushSends(room),
      listener: {
        message: (room, message) => this.emit('message', room, message),
        viewers: (room, count) => this.emit('viewers', room, count),
        gap: (room, gap) => this.emit('gap', room, gap),
        left: (room, reason) => this.emit('left', room, reason),
        pinned: (room, message) => this.emit('pinned', room, message),
        error: (frame) => this.emit('error', frame),
      },
      backoff,
      random,
      requestTimeoutMs,
      delayMs: options.delayMs ?? 0,
    });
    this.chat = new ChatChannel({
      transmit: (frame) => this.socket.transmit(frame),
      isOpen: () => this.socket.isOpen,
      newMessageId: () => this.newMessageId(),
      requestTimeoutMs,
    });
  }

  get state(): ClientState {
    return this.socket.state;
  }

  /** The current connection's welcome (its session, role and limits); null when not connected. */
  get welcome(): WelcomeFrame | null {
    return this.socket.welcome;
  }

  /** The rooms the client is in, or is joining or rejoining. */
  get rooms(): RoomId[] {
    return this.sessions.rooms;
  }

  /** The highest seq received in a room the client is in (held back by the delay or not); undefined for other rooms. */
  lastSeq(room: RoomId): Seq | undefined {
    return this.sessions.lastSeq(room);
  }

  /** The viewer delay in ms (see RoomcastClientOptions.delayMs). */
  get delayMs(): number {
    return this.sessions.delayMs;
  }

  /**
   * Changes the viewer delay, in ms: messages held now are rescheduled for their `ts` + delayMs
   * (0 releases them at once), still in order. Throws a RangeError for a negative or non-finite value.
   */
  setDelay(delayMs: number): void {
    this.sessions.setDelay(delayMs);
  }

  // ---- connection ----------------------------------------------------------------------------------

  /**
   * Opens the connection and resolves with its welcome. While reconnection is enabled, failed attempts
   * are retried with backoff until one succeeds; it rejects with `unauthorized` when the server
   * refuses the token, with `unavailable` when the attempt fails and reconnection is disabled or when
   * close() is called first. Called again after a 4001, it reconnects and rejoins the rooms it was in.
   */
  connect(): Promise<WelcomeFrame> {
    return this.socket.connect();
  }

  /**
   * Closes the connection for good: no reconnection; every pending request, send included, rejects
   * with `unavailable`, and the rooms (with messages held by the delay) are forgotten. connect() may
   * be called again afterwards.
   */
  close(): void {
    const closed = new ClientError('unavailable', 'the client was closed');
    const hadSocket = this.socket.close(closed);
    this.failRequests(closed);
    this.requests.rejectSends(closed);
    this.chat.closed(closed);
    this.sessions.clear();
    if (hadSocket) this.emit('disconnected', { code: CLOSE_NORMAL, reason: 'closed by the client' });
  }

  // ---- rooms ---------------------------------------------------------------------------------------

  /**
   * Joins a room. Resolves with `joined` once the server has added the connection: its `msgs` (the
   * latest messages, or with `lastSeq` the ones after it) are also delivered as 'message' events,
   * minus any already delivered. Rejects with already_in_room (also while a join of the room is in
   * flight), too_many_rooms, unknown_room, banned, ...
   */
  join(room: RoomId, options: { lastSeq?: Seq } = {}): Promise<JoinedFrame> {
    const problem = roomProblem(room) ?? seqProblem(options.lastSeq, 'lastSeq') ?? this.notOpen();
    if (problem) return Promise.reject(problem);
    return this.sessions.join(room, options.lastSeq);
  }

  /**
   * Leaves `from` and joins `to` as one request. Resolves with the `joined` of `to`; a 'left' event
   * (reason 'switch') for `from` comes first. When `to` cannot be joined it rejects with the server's
   * error, and the client stays in `from` unless a 'left' event for `from` came before the error.
   */
  async switchRoom(from: RoomId, to: RoomId): Promise<JoinedFrame> {
    const problem = roomProblem(from) ?? roomProblem(to) ?? this.notOpen();
    if (problem) throw problem;
    return this.sessions.switchRoom(from, to);
  }

  /**
   * Leaves a room (after a join of it in flight has settled); messages of it held by the delay are
   * dropped. Without a connection it resolves at once: the room is simply not rejoined. Rejects with
   * not_in_room when the client is not in it.
   */
  async leave(room: RoomId): Promise<void> {
    const problem = roomProblem(room);
    if (problem) throw problem;
    return this.sessions.leave(room);
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
    if (this.requests.hasSend(id)) return Promise.reject(new ClientError('bad_request', `a send with id '${id}' is already pending`, { room, id }));
    const { state } = this.socket;
    if (state === 'idle' || state === 'closed') {
      return Promise.reject(new ClientError('unavailable', 'not connected: call connect() first', { room, id }));
    }
    const frame: SendFrame = options.kind === undefined ? { t: 'send', room, id, text } : { t: 'send', room, id, text, kind: options.kind };
    return this.requests.send(room, id, frame, state === 'open' && !this.sessions.isJoining(room));
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
    return this.requests.request<HistoryResultFrame>('history', room, frame);
  }

  /**
   * This gateway's figures for a room the connection has joined (viewers, seq, msgsPerSec, delivered,
   * sampled, dropped by reason, pinned). Rejects with not_in_room when the connection has not joined it.
   */
  roomStats(room: RoomId): Promise<RoomStatsFrame> {
    const problem = roomProblem(room) ?? this.notOpen();
    if (problem) return Promise.reject(problem);
    return this.requests.request<RoomStatsFrame>('room_stats', room, { t: 'room_stats', room });
  }

  // ---- moderation (streamers and moderators of the room, admins) ------------------------------------

  /**
   * Sends a `moderate` request with a generated id and resolves with its `moderated` answer. Rejects
   * with the server's error: forbidden (the token may not moderate the room), unknown_room, not_found
   * (an unknown seq), bad_request (a missing uid or seq, a bad duration, an unpinnable kind), ...
   * Not retried after a lost connection: it rejects with `unavailable`.
   */
  moderate(room: RoomId, action: ModerateAction, params: ModerateParams = {}): Promise<ModeratedFrame> {
    const problem = roomProblem(room) ?? moderateProblem(params) ?? this.notOpen();
    if (problem) return Promise.reject(problem);
    const id = this.newMessageId();
    const frame: ModerateFrame = { t: 'moderate', room, id, action };
    if (params.uid !== undefined) frame.uid = params.uid;
    if (params.seq !== undefined) frame.seq = params.seq;
    if (params.durationMs !== undefined) frame.durationMs = params.durationMs;
    if (params.intervalMs !== undefined) frame.intervalMs = params.intervalMs;
    return this.requests.requestById<ModeratedFrame>('moderate', id, room, frame);
  }

  /** Mutes `uid` in the room for `durationMs` (default one year). */
  mute(room: RoomId, uid: Uid, durationMs?: number): Promise<ModeratedFrame> {
    return this.moderate(room, 'mute', durationMs === undefined ? { uid } : { uid, durationMs });
  }

  unmute(room: RoomId, uid: Uid): Promise<ModeratedFrame> {
    return this.moderate(room, 'unmute', { uid });
  }

  /** Bans `uid` from the room for `durationMs` (default one year); its connections leave the room. */
  ban(room: RoomId, uid: Uid, durationMs?: number): Promise<ModeratedFrame> {
    return this.moderate(room, 'ban', durationMs === undefined ? { uid } : { uid, durationMs });
  }

  unban(room: RoomId, uid: Uid): Promise<ModeratedFrame> {
    return this.moderate(room, 'unban', { uid });
  }

  /** Withdraws message `seq`; the answer's `seq` is that of the `retract` message. */
  deleteMessage(room: RoomId, seq: Seq): Promise<ModeratedFrame> {
    return this.moderate(room, 'delete', { seq });
  }

  /** Pins message `seq` (replacing any pin); the answer's `seq` is that of the `pin` message. */
  pin(room: RoomId, seq: Seq): Promise<ModeratedFrame> {
    return this.moderate(room, 'pin', { seq });
  }

  /** Takes the pin down; the answer's `seq` is that of the `unpin` message. */
  unpin(room: RoomId): Promise<ModeratedFrame> {
    return this.moderate(room, 'unpin');
  }

  /** Allows a viewer one message per `intervalMs` in the room; 0 turns slow mode off. */
  setSlowMode(room: RoomId, intervalMs: number): Promise<ModeratedFrame> {
    return this.moderate(room, 'slow_mode', { intervalMs });
  }

  /** The mutes and bans in force in the room, sorted by uid. */
  async moderationLists(room: RoomId): Promise<{ muted: ModerationEntry[]; banned: ModerationEntry[] }> {
    const answer = await this.moderate(room, 'list');
    return { muted: answer.muted ?? [], banned: answer.banned ?? [] };
  }

  // ---- the connection's turns ----------------------------------------------------------------------

  private opened(welcome: WelcomeFrame): void {
    this.sessions.rejoinAll();
    this.requests.flushSends(this.isJoining);
    this.chat.connected();
    this.emit('connected', welcome);
  }

  private lost(info: DisconnectInfo, error: ClientError): void {
    this.failRequests(error);
    this.emit('disconnected', info);
  }

  /** The socket gave up: sends reject too. The rooms are kept for a later connect(). */
  private stopped(error: ClientError): void {
    this.requests.rejectSends(error);
    this.chat.closed(error);
  }

  /**
   * Rejects the requests that cannot outlive the connection (joins, switches, leaves, history, stats,
   * moderation) and puts sends back to waiting for the next one. Rooms stay, to be rejoined.
   */
  private failRequests(error: ClientError): void {
    this.sessions.connectionLost(error);
    this.requests.connectionLost(error);
    this.chat.connectionLost(error);
  }

  /** Sends what waits for the connection, in order, except sends to rooms still being joined. */
  private flushSends(room?: RoomId): void {
    if (this.socket.isOpen) this.requests.flushSends(this.isJoining, room);
  }

  /** Errors go to the request they answer: by id, by `ref` and room, then chat; the rest are the connection's. */
  private onError(frame: ErrorFrame): void {
    if (this.requests.onError(frame) || this.sessions.onError(frame) || this.chat.onError(frame)) return;
    this.socket.noteConnectionError(frame);
    this.emit('error', frame);
  }

  // ---- small helpers -------------------------------------------------------------------------------

  private notOpen(): ClientError | null {
    const { state } = this.socket;
    if (state === 'open') return null;
    const hint = state === 'idle' ? 'call connect() first' : `the client is ${state}`;
    return new ClientError('unavailable', `not connected: ${hint}`);
  }

  private newMessageId(): ClientMsgId {
    const crypto = globalThis.crypto as { randomUUID?: () => string } | undefined;
    // randomUUID is missing in browsers' insecure contexts (plain http other than localhost).
    if (typeof crypto?.randomUUID === 'function') return crypto.randomUUID();
    return `${Date.now().toString(36)}-${(this.idCounter++).toString(36)}-${Math.floor(Math.random() * 2 ** 48).toString(36)}`;
  }
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

/** The shapes a moderate frame's fields must have; which fields an action needs is the server's call. */
function moderateProblem(params: ModerateParams): ClientError | null {
  if (params.uid !== undefined && !(typeof params.uid === 'string' && params.uid.length > 0)) return new ClientError('bad_request', "'uid' must be a non-empty string");
  return seqProblem(params.seq, 'seq') ?? seqProblem(params.durationMs, 'durationMs') ?? seqProblem(params.intervalMs, 'intervalMs');
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) throw new RangeError(`${name} must be a positive number of ms`);
  return value;
}

function count(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(Number.isSafeInteger(value) && value >= 1)) throw new RangeError(`${name} must be a whole number ≥ 1`);
  return value;
}
