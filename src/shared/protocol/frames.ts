/**
 * The client protocol: frames between a client and a gateway. docs/protocol.md is the contract;
 * these types and the validator below are its implementation. Every frame is a map with a string
 * field `t` naming its type.
 */
import { fail, type ErrorCode } from '../errors.js';
import { CHAT_CLIENT_FRAME_TYPES, isChatClientFrameType, parseChatFrame, type ChatClientFrame, type ChatServerFrame } from './chat-frames.js';

export type RoomId = string;
export type Uid = string;
export type Seq = number;
export type ClientMsgId = string;

export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL_MSGPACK = 'roomcast.v1.msgpack';
export const SUBPROTOCOL_JSON = 'roomcast.v1.json';
export type WireFormat = 'msgpack' | 'json';

export const ROLES = ['viewer', 'streamer', 'moderator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Message kinds. `chat` is ordinary chat (low priority, may be sampled under overload); every other
 * kind is high priority and never dropped. `retract` withdraws an earlier message (its `target`);
 * `pin` makes its `target` the room's pinned message and `unpin` ends that. Only moderators create
 * these three, through moderation, never through `send`.
 */
export const MESSAGE_KINDS = ['chat', 'streamer', 'moderator', 'system', 'gift', 'retract', 'pin', 'unpin'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/** The kinds a moderator may pin: what people wrote or were sent, never moderation records. */
export const PINNABLE_KINDS: readonly MessageKind[] = ['chat', 'streamer', 'moderator', 'system', 'gift'];

export const PRIORITY_LOW = 0;
export const PRIORITY_HIGH = 1;
export type Priority = typeof PRIORITY_LOW | typeof PRIORITY_HIGH;

export function priorityOf(kind: MessageKind): Priority {
  return kind === 'chat' ? PRIORITY_LOW : PRIORITY_HIGH;
}

/** The kinds a client of each role may send over WebSocket; gifts come only from backends. */
export const SENDABLE_KINDS: Readonly<Record<Role, readonly MessageKind[]>> = {
  viewer: ['chat'],
  streamer: ['chat', 'streamer'],
  moderator: ['chat', 'moderator'],
  admin: ['chat', 'streamer', 'moderator', 'system'],
};

/** A room message as stored and delivered. */
export interface RoomMessage {
  seq: Seq;
  uid: Uid;
  kind: MessageKind;
  prio: Priority;
  text: string;
  /** Server time when the room service accepted it, in ms since the epoch. */
  ts: number;
  /** The sender's clientMsgId, when a client sent it. */
  cid?: ClientMsgId;
  /** For `retract`: the seq of the withdrawn message; for `pin` and `unpin`: the seq pinned. */
  target?: Seq;
  /** Structured payload for gifts and system messages (gift id, count, ...); for `pin`: `{from, kind}` of the pinned message. */
  data?: Record<string, unknown>;
  /** Set in history on a message that was withdrawn later; its text is then empty. */
  deleted?: true;
}

// ---- client → server ----------------------------------------------------------------------------

export interface JoinFrame { t: 'join'; room: RoomId; lastSeq?: Seq }
export interface SwitchFrame { t: 'switch'; from: RoomId; to: RoomId; lastSeq?: Seq }
export interface LeaveFrame { t: 'leave'; room: RoomId }
export interface SendFrame { t: 'send'; room: RoomId; id: ClientMsgId; text: string; kind?: MessageKind }
export interface HistoryFrame { t: 'history'; room: RoomId; beforeSeq?: Seq; limit?: number }
export interface PingFrame { t: 'ping'; ts?: number }

/** What a moderator can do to a room over WebSocket: the same actions as the HTTP API's moderation endpoints. */
export const MODERATE_ACTIONS = ['mute', 'unmute', 'ban', 'unban', 'delete', 'pin', 'unpin', 'slow_mode', 'list'] as const;
export type ModerateAction = (typeof MODERATE_ACTIONS)[number];

/**
 * A moderation request. The frame check only vouches for the types of the fields; which fields an
 * action needs and their ranges are the room service's rules (bad_request), shared with the HTTP API.
 */
export interface ModerateFrame {
  t: 'moderate';
  room: RoomId;
  /** Chosen by the client, echoed in the answer. */
  id: string;
  action: ModerateAction;
  uid?: Uid;
  seq?: Seq;
  durationMs?: number;
  intervalMs?: number;
}
export interface RoomStatsRequestFrame { t: 'room_stats'; room: RoomId }

export type ClientFrame =
  | JoinFrame | SwitchFrame | LeaveFrame | SendFrame | HistoryFrame | PingFrame | ModerateFrame | RoomStatsRequestFrame
  | ChatClientFrame;
export type ClientFrameType = ClientFrame['t'];
export const CLIENT_FRAME_TYPES: readonly ClientFrameType[] = [
  'join', 'switch', 'leave', 'send', 'history', 'ping', 'moderate', 'room_stats', ...CHAT_CLIENT_FRAME_TYPES,
];

// ---- server → client ----------------------------------------------------------------------------

export interface Limits {
  maxFrameBytes: number;
  maxTextLength: number;
  maxRooms: number;
  historyPageMax: number;
}
export interface WelcomeFrame {
  t: 'welcome';
  session: string;
  uid: Uid;
  role: Role;
  heartbeatMs: number;
  protocol: number;
  limits: Limits;
}
/** A range of seqs that history no longer holds: the client cannot get them back. */
export interface Gap { from: Seq; to: Seq }
export interface JoinedFrame {
  t: 'joined';
  room: RoomId;
  /** The room's seq up to which `msgs` brings the client; live `messages` continue after it. */
  seq: Seq;
  msgs: RoomMessage[];
  viewers: number;
  gap?: Gap;
  /** The room's pinned message as of `seq` (the original message); absent when none is pinned. */
  pinned?: RoomMessage;
}
export interface LeftFrame { t: 'left'; room: RoomId; reason: 'leave' | 'switch' | 'banned' }
export interface MessagesFrame { t: 'messages'; room: RoomId; msgs: RoomMessage[] }
export interface AckFrame { t: 'ack'; id: ClientMsgId; room: RoomId; seq: Seq }
export interface HistoryResultFrame { t: 'history'; room: RoomId; msgs: RoomMessage[]; more: boolean }
export interface ErrorFrame {
  t: 'error'; code: ErrorCode; message: string; id?: ClientMsgId; room?: RoomId; ref?: string;
  /** With `overloaded` (plus a jitter of your own) and `slow_mode`: wait this long, in ms, before retrying. */
  retryAfterMs?: number;
}
export interface ViewersFrame { t: 'viewers'; room: RoomId; count: number }
/** Machine-readable reasons of a notice; `text` says the same for people. */
export type NoticeCode = 'slow_mode' | 'pinned' | 'unpinned' | 'muted' | 'unmuted';
export interface NoticeFrame {
  t: 'notice';
  text: string;
  room?: RoomId;
  code?: NoticeCode;
  /** `slow_mode`: the interval now in force; 0 = off. */
  intervalMs?: number;
  /** `muted`: when the mute ends, ms since the epoch. */
  untilMs?: number;
}
/** Messages a gateway did not write to its connections, by reason. */
export interface RoomDrops { backpressure: number; gap_unrecoverable: number; duplicate: number }
export interface GapFrame { t: 'gap'; room: RoomId; from: Seq; to: Seq }
export interface ReconnectFrame { t: 'reconnect'; delayMs: number }
export interface PongFrame { t: 'pong'; ts?: number }
/** A mute or ban in force, until `untilMs` (ms since the epoch). */
export interface ModerationEntry { uid: Uid; untilMs: number }
export interface ModeratedFrame {
  t: 'moderated';
  id: ClientMsgId;
  room: RoomId;
  action: ModerateAction;
  /** For delete: the retract message's seq; for pin / unpin: the pin or unpin message's seq. */
  seq?: Seq;
  /** For list: the mutes and bans in force, sorted by uid. */
  muted?: ModerationEntry[];
  banned?: ModerationEntry[];
}
/** A room's figures as the answering gateway sees them since it subscribed to the room; all count messages. */
export interface RoomStatsFrame {
  t: 'room_stats';
  room: RoomId;
  viewers: number;
  seq: Seq;
  /** Messages per second over the last 5 s. */
  msgsPerSec: number;
  delivered: number;
  /** Messages skipped by the room's budget. */
  sampled: number;
  dropped: RoomDrops;
  pinned?: RoomMessage;
}

export type ServerFrame =
  | WelcomeFrame | JoinedFrame | LeftFrame | MessagesFrame | AckFrame | HistoryResultFrame
  | ErrorFrame | ViewersFrame | NoticeFrame | GapFrame | ReconnectFrame | PongFrame | ModeratedFrame | RoomStatsFrame
  | ChatServerFrame;

// ---- validation ---------------------------------------------------------------------------------

/** Room ids are also NATS subject tokens and Redis key parts, so the alphabet is narrow. */
export const ROOM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const CLIENT_MSG_ID_MAX_LENGTH = 64;

export function isRoomId(value: unknown): value is RoomId {
  return typeof value === 'string' && ROOM_ID_PATTERN.test(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function isSeq(value: unknown): value is Seq {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function requireRoom(frame: Record<string, unknown>, field: string): RoomId {
  const value = frame[field];
  if (value === undefined) throw fail.bad_frame(`'${field}' is required`);
  if (!isRoomId(value)) throw fail.bad_room(field);
  return value;
}

function requireId(frame: Record<string, unknown>): string {
  const id = frame.id;
  if (typeof id !== 'string' || id.length === 0 || id.length > CLIENT_MSG_ID_MAX_LENGTH) {
    throw fail.bad_frame(`'id' must be a string of 1 to ${CLIENT_MSG_ID_MAX_LENGTH} characters`);
  }
  return id;
}

function optionalNumber(frame: Record<string, unknown>, field: string): number | undefined {
  const value = frame[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw fail.bad_frame(`'${field}' must be a number`);
  return value;
}

function parseModerate(frame: Record<string, unknown>): ModerateFrame {
  const room = requireRoom(frame, 'room');
  const id = requireId(frame);
  const { action, uid } = frame;
  if (!(MODERATE_ACTIONS as readonly unknown[]).includes(action)) {
    throw fail.bad_frame(`'action' must be one of ${MODERATE_ACTIONS.join(', ')}`);
  }
  if (uid !== undefined && typeof uid !== 'string') throw fail.bad_frame("'uid' must be a string");
  const seq = optionalSeq(frame, 'seq');
  const durationMs = optionalNumber(frame, 'durationMs');
  const intervalMs = optionalNumber(frame, 'intervalMs');
  return {
    t: 'moderate', room, id, action: action as ModerateAction,
    ...(uid === undefined ? {} : { uid }),
    ...(seq === undefined ? {} : { seq }),
    ...(durationMs === undefined ? {} : { durationMs }),
    ...(intervalMs === undefined ? {} : { intervalMs }),
  };
}

function optionalSeq(frame: Record<string, unknown>, field: string): Seq | undefined {
  const value = frame[field];
  if (value === undefined || value === null) return undefined;
  if (!isSeq(value)) throw fail.bad_frame(`'${field}' must be a non-negative integer`);
  return value;
}

/**
 * Checks that a decoded value is a well-formed client frame and returns it typed. Throws a
 * RoomcastError with code bad_frame, bad_room or unknown_type; never trusts a field it did not check.
 */
export function parseClientFrame(decoded: unknown): ClientFrame {
  if (!isPlainObject(decoded)) throw fail.bad_frame('a frame must be a map');
  const type = decoded.t;
  if (typeof type !== 'string') throw fail.bad_frame("a frame needs a string field 't'");
  switch (type) {
    case 'join': {
      const lastSeq = optionalSeq(decoded, 'lastSeq');
      return { t: 'join', room: requireRoom(decoded, 'room'), ...(lastSeq === undefined ? {} : { lastSeq }) };
    }
    case 'switch': {
      const lastSeq = optionalSeq(decoded, 'lastSeq');
      return {
        t: 'switch', from: requireRoom(decoded, 'from'), to: requireRoom(decoded, 'to'),
        ...(lastSeq === undefined ? {} : { lastSeq }),
      };
    }
    case 'leave':
      return { t: 'leave', room: requireRoom(decoded, 'room') };
    case 'send': {
      const room = requireRoom(decoded, 'room');
      const id = requireId(decoded);
      const { text, kind } = decoded;
      if (typeof text !== 'string') throw fail.bad_frame("'text' must be a string");
      if (kind !== undefined && !(MESSAGE_KINDS as readonly unknown[]).includes(kind)) {
        throw fail.bad_frame(`'kind' must be one of ${MESSAGE_KINDS.join(', ')}`);
      }
      return { t: 'send', room, id, text, ...(kind === undefined ? {} : { kind: kind as MessageKind }) };
    }
    case 'history': {
      const beforeSeq = optionalSeq(decoded, 'beforeSeq');
      const limit = decoded.limit;
      if (limit !== undefined && !(typeof limit === 'number' && Number.isSafeInteger(limit) && limit > 0)) {
        throw fail.bad_frame("'limit' must be a positive integer");
      }
      return {
        t: 'history', room: requireRoom(decoded, 'room'),
        ...(beforeSeq === undefined ? {} : { beforeSeq }),
        ...(limit === undefined ? {} : { limit: limit as number }),
      };
    }
    case 'ping': {
      const ts = decoded.ts;
      // Finite, so that the pong can echo it: JSON has no NaN or Infinity (it would write null).
      if (ts !== undefined && !(typeof ts === 'number' && Number.isFinite(ts))) throw fail.bad_frame("'ts' must be a finite number");
      return ts === undefined ? { t: 'ping' } : { t: 'ping', ts };
    }
    case 'moderate':
      return parseModerate(decoded);
    case 'room_stats':
      return { t: 'room_stats', room: requireRoom(decoded, 'room') };
    default:
      // Private and group chat frames: chat-frames.ts checks them.
      if (isChatClientFrameType(type)) return parseChatFrame(type, decoded);
      throw fail.unknown_type(type);
  }
}
