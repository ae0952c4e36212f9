/**
 * One connection's conversation with the gateway: decode and check each frame, answer it, and keep
 * the connection's limits (rooms, frame rate, bad frames). Decisions about rooms and messages belong
 * to the room service; membership and fan-out to RoomFanout.
 */
import type { Identity } from '../shared/auth.js';
import type { Clock } from '../shared/clock.js';
import { decodeJson, decodeMsgpack, encodeFrame } from '../shared/codec/codec.js';
import { closeCodeOf, fail, RoomcastError, toRoomcastError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { GatewayMetrics } from '../shared/metrics.js';
import type { Caller } from '../shared/protocol/bus-messages.js';
import {
  CLIENT_FRAME_TYPES, PROTOCOL_VERSION, parseClientFrame,
  type ClientFrame, type ErrorFrame, type HistoryFrame, type Limits, type ModerateFrame, type RoomId, type SendFrame, type ServerFrame,
  type SwitchFrame,
} from '../shared/protocol/frames.js';
import type { ChatClientFrame } from '../shared/protocol/chat-frames.js';
import type { ChatClient } from './chat-client.js';
import { CompactMultimap } from './compact-multimap.js';
import type { RoomClient } from './room-client.js';
import type { RoomAccess } from './room-access.js';
import type { RoomFanout } from './room-fanout.js';
import type { Conn } from './uws-server.js';

export interface SessionSettings {
  limits: Limits;
  heartbeatMs: number;
  badFrameLimit: number;
  /** Frames a connection may send per second on average, and at once. */
  frameRatePerSec: number;
  frameBurst: number;
}

export interface SessionDeps {
  fanout: RoomFanout;
  roomClient: RoomClient;
  /** Join decisions from the room's rules held on this gateway. */
  access: Pick<RoomAccess, 'check'>;
  /** Private and group chat frames go here. */
  chat: ChatClient;
  clock: Clock;
  log: Logger;
  metrics: GatewayMetrics;
  settings: SessionSettings;
}

const DEFAULT_HISTORY_PAGE = 50;

/** What a session keeps per connection; the connection carries it (see ConnectionHandlers). */
export interface SessionState {
  badFrames: number;
  frameTokens: number;
  tokensAtMs: number;
}

export class Sessions {
  /** Rooms with a join in flight, per connection: they count against the room limit. */
  private readonly joining = new CompactMultimap<Conn, RoomId>();
  constructor(private readonly deps: SessionDeps) {}

  opened(conn: Conn): SessionState {
    this.deps.metrics.connectionOpened();
    this.send(conn, {
      t: 'welcome', session: conn.id, uid: conn.identity.uid, role: conn.identity.role,
      heartbeatMs: this.deps.settings.heartbeatMs, protocol: PROTOCOL_VERSION, limits: this.deps.settings.limits,
    });
    return { badFrames: 0, frameTokens: this.deps.settings.frameBurst, tokensAtMs: this.deps.clock.now() };
  }

  closed(conn: Conn): void {
    this.deps.fanout.leaveAll(conn);
    this.deps.metrics.connectionClosed();
  }

  /** Asks the client to move to another gateway after `delayMs` (draining). */
  requestReconnect(conn: Conn, delayMs: number): void {
    this.send(conn, { t: 'reconnect', delayMs });
  }

  /** Sends the error that rejected a connection, then closes it with the error's close code. */
  reject(conn: Conn, error: RoomcastError): void {
    this.sendError(conn, error);
    conn.end(closeCodeOf(error.code) ?? 4001, error.code);
  }

  message(conn: Conn, state: SessionState, data: ArrayBuffer, isBinary: boolean): void {
    const { maxFrameBytes } = this.deps.settings.limits;
    if (data.byteLength > maxFrameBytes) {
      this.deps.metrics.frameIn('invalid');
      this.reject(conn, fail.frame_too_large(maxFrameBytes));
      return;
    }
    let decoded: unknown;
    try {
      const bytes = new Uint8Array(data);
      decoded = isBinary ? decodeMsgpack(bytes) : decodeJson(bytes);
    } catch (error) {
      this.deps.metrics.frameIn('invalid');
      this.badFrame(conn, state, toRoomcastError(error), {});
      return;
    }
    let frame: ClientFrame;
    try {
      frame = parseClientFrame(decoded);
    } catch (error) {
      this.deps.metrics.frameIn('invalid');
      this.badFrame(conn, state, toRoomcastError(error), requestContextOf(decoded));
      return;
    }
    this.deps.metrics.frameIn(frame.t);
    if (!this.takeFrameToken(state)) {
      // Not a bad frame: a client resending its backlog after a reconnect may burst legitimately.
      this.sendError(conn, fail.rate_limited('frames'), refOf(frame));
      return;
    }
    this.dispatch(conn, frame);
  }

  private dispatch(conn: Conn, frame: ClientFrame): void {
    switch (frame.t) {
      case 'join':
        void this.join(conn, frame.room, frame.lastSeq);
        return;
      case 'switch':
        void this.switchRoom(conn, frame);
        return;
      case 'leave':
        if (this.deps.fanout.leave(conn, frame.room)) this.send(conn, { t: 'left', room: frame.room, reason: 'leave' });
        else this.sendError(conn, notInRoom(frame.room), { room: frame.room, ref: 'leave' });
        return;
      case 'send':
        void this.sendMessage(conn, frame);
        return;
      case 'history':
        void this.history(conn, frame);
        return;
      case 'ping':
        this.send(conn, frame.ts === undefined ? { t: 'pong' } : { t: 'pong', ts: frame.ts });
        return;
      case 'moderate':
        void this.moderate(conn, frame);
        return;
      case 'room_stats': {
        const stats = this.deps.fanout.stats(conn, frame.room);
        if (stats) this.send(conn, stats);
        else this.sendError(conn, notInRoom(frame.room), { room: frame.room, ref: 'room_stats' });
        return;
      }
      default:
        void this.forwardChat(conn, frame);
    }
  }

  private async forwardChat(conn: Conn, frame: ChatClientFrame): Promise<void> {
    try {
      const answer = await this.deps.chat.forward(conn, frame);
      if (answer && !conn.closed) this.answer(conn, answer);
    } catch (error) {
      if (!conn.closed) this.answer(conn, this.errorFrame(conn, toRoomcastError(error), refOf(frame)));
    }
  }

  private async join(conn: Conn, room: RoomId, lastSeq: number | undefined): Promise<void> {
    const context = { room, ref: 'join' };
    const { fanout, access } = this.deps;
    if (fanout.isMember(conn, room) || this.joining.has(conn, room)) {
      this.sendError(conn, fail.already_in_room(room), context);
      return;
    }
    if (fanout.roomCountOf(conn) + this.joining.count(conn) >= this.deps.settings.limits.maxRooms) {
      this.sendError(conn, fail.too_many_rooms(this.deps.settings.limits.maxRooms), context);
      return;
    }
    this.joining.add(conn, room);
    try {
      await fanout.join(conn, room, lastSeq, () => access.check(room, conn.identity.uid));
    } catch (error) {
      this.sendError(conn, toRoomcastError(error), context);
    } finally {
      this.joining.delete(conn, room);
    }
  }

  /** Leaves `from` and joins `to` as one signal; if `to` cannot be joined the connection stays in `from`. */
  private async switchRoom(conn: Conn, frame: SwitchFrame): Promise<void> {
    const { fanout, access } = this.deps;
    if (!fanout.isMember(conn, frame.from)) {
      this.sendError(conn, notInRoom(frame.from), { room: frame.from, ref: 'switch' });
      return;
    }
    if (frame.from === frame.to || fanout.isMember(conn, frame.to) || this.joining.has(conn, frame.to)) {
      this.sendError(conn, fail.already_in_room(frame.to), { room: frame.to, ref: 'switch' });
      return;
    }
    this.joining.add(conn, frame.to);
    try {
      await fanout.join(conn, frame.to, frame.lastSeq, () => {
        access.check(frame.to, conn.identity.uid);
        if (fanout.leave(conn, frame.from)) this.send(conn, { t: 'left', room: frame.from, reason: 'switch' });
      });
    } catch (error) {
      this.sendError(conn, toRoomcastError(error), { room: frame.to, ref: 'switch' });
    } finally {
      this.joining.delete(conn, frame.to);
    }
  }

  private async sendMessage(conn: Conn, frame: SendFrame): Promise<void> {
    const context = { room: frame.room, id: frame.id, ref: 'send' };
    if (!this.deps.fanout.isMember(conn, frame.room)) {
      this.sendError(conn, notInRoom(frame.room), context);
      return;
    }
    try {
      const reply = await this.deps.roomClient.send(callerOf(conn.identity), frame.room, frame.id, frame.text, frame.kind ?? 'chat');
      this.answer(conn, { t: 'ack', id: frame.id, room: frame.room, seq: reply.seq }, frame.room);
    } catch (error) {
      this.answer(conn, this.errorFrame(conn, toRoomcastError(error), context), frame.room);
    }
  }

  /** The room service checks the permission and applies the action; the gateway only carries it. */
  private async moderate(conn: Conn, frame: ModerateFrame): Promise<void> {
    try {
      const answer = await this.deps.roomClient.moderate(callerOf(conn.identity), frame);
      if (!conn.closed) this.send(conn, answer);
    } catch (error) {
      if (!conn.closed) this.sendError(conn, toRoomcastError(error), { id: frame.id, room: frame.room, ref: 'moderate' });
    }
  }

  private async history(conn: Conn, frame: HistoryFrame): Promise<void> {
    const limit = Math.min(frame.limit ?? DEFAULT_HISTORY_PAGE, this.deps.settings.limits.historyPageMax);
    try {
      const page = await this.deps.roomClient.history(frame.room, {
        limit, ...(frame.beforeSeq === undefined ? {} : { beforeSeq: frame.beforeSeq }),
      }, callerOf(conn.identity));
      const oldest = page.msgs[0]?.seq;
      const more = oldest === undefined ? false : oldest > page.firstSeq;
      this.send(conn, { t: 'history', room: frame.room, msgs: page.msgs, more });
    } catch (error) {
      this.sendError(conn, toRoomcastError(error), { room: frame.room, ref: 'history' });
    }
  }

  private badFrame(conn: Conn, state: SessionState, error: RoomcastError, context: Partial<ErrorFrame>): void {
    state.badFrames++;
    if (state.badFrames >= this.deps.settings.badFrameLimit) {
      const fatal = fail.too_many_errors(state.badFrames);
      this.sendError(conn, fatal);
      conn.end(closeCodeOf('too_many_errors')!, 'too_many_errors');
      return;
    }
    this.sendError(conn, error, context);
  }

  private takeFrameToken(state: SessionState): boolean {
    const { frameBurst, frameRatePerSec } = this.deps.settings;
    const now = this.deps.clock.now();
    state.frameTokens = Math.min(frameBurst, state.frameTokens + ((now - state.tokensAtMs) / 1000) * frameRatePerSec);
    state.tokensAtMs = now;
    if (state.frameTokens < 1) return false;
    state.frameTokens -= 1;
    return true;
  }

  private send(conn: Conn, frame: ServerFrame): void {
    conn.send(encodeFrame(conn.format, frame));
  }

  /**
   * Sends a send's or chat frame's answer from the room service: such answers arrive together for a
   * batch, so they are written once per connection per turn, a send's with its room's frame when the
   * room is written in that turn (AnswerOutbox).
   */
  private answer(conn: Conn, frame: ServerFrame, room?: RoomId): void {
    this.deps.fanout.answer(conn, encodeFrame(conn.format, frame), room);
  }

  private sendError(conn: Conn, error: RoomcastError, context: Partial<ErrorFrame> = {}): void {
    this.send(conn, this.errorFrame(conn, error, context));
  }

  /** The error frame for `error`, counted (and logged when internal). */
  private errorFrame(conn: Conn, error: RoomcastError, context: Partial<ErrorFrame>): ErrorFrame {
    this.deps.metrics.errorSent(error.code);
    if (error.code === 'internal') this.deps.log.error('internal error', { conn: conn.id, error, cause: (error as { cause?: unknown }).cause });
    const frame: ErrorFrame = { t: 'error', code: error.code, message: error.message, ...context };
    if (error.retryAfterMs !== undefined) frame.retryAfterMs = error.retryAfterMs;
    return frame;
  }
}

/** Made per request rather than kept per connection: an idle connection makes none. */
function callerOf(identity: Identity): Caller {
  return { uid: identity.uid, role: identity.role, ...(identity.rooms ? { rooms: identity.rooms } : {}) };
}

function notInRoom(room: RoomId): RoomcastError {
  return fail.not_in_room(room);
}

/**
 * What can be read of a frame that failed its check, so that the error still names the request
 * (docs/protocol.md 6.13): its type when it is one of ours, its `id`, and its room (for a switch the
 * room it was going to). Only strings of plausible size are echoed.
 */
function requestContextOf(decoded: unknown): Partial<ErrorFrame> {
  if (typeof decoded !== 'object' || decoded === null) return {};
  const { t, id, room, to } = decoded as Record<string, unknown>;
  const context: Partial<ErrorFrame> = {};
  if (typeof t === 'string' && (CLIENT_FRAME_TYPES as readonly string[]).includes(t)) context.ref = t;
  if (isEcho(id)) context.id = id;
  const about = t === 'switch' ? to : room;
  if (isEcho(about)) context.room = about;
  return context;
}

const MAX_ECHO_LENGTH = 256;
function isEcho(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ECHO_LENGTH;
}

function refOf(frame: ClientFrame): Partial<ErrorFrame> {
  const context: Partial<ErrorFrame> = { ref: frame.t };
  if ('room' in frame) context.room = frame.room;
  if (frame.t === 'send' || frame.t === 'pm' || frame.t === 'gm' || frame.t === 'moderate') context.id = frame.id;
  return context;
}
