/**
 * Room state: settings, the per-room sequence, the capped history, moderation (mutes, bans, slow
 * mode), per-user send limits and duplicate detection (viewer counts are fleet state: src/shared/fleet). Redis in distributed mode (all
 * keys of a room share the hash tag `{room}`, and one Lua script makes each send atomic), in memory
 * in the all-in-one mode; one contract suite runs against both.
 */
import {
  PINNABLE_KINDS,
  type ClientMsgId, type MessageKind, type ModerationEntry, type Priority, type RoomId, type RoomMessage, type Seq, type Uid,
} from '../protocol/frames.js';

export interface RoomSettings {
  /** Minimum time between two messages of one viewer in this room; 0 turns slow mode off. */
  slowModeMs: number;
}

export const DEFAULT_ROOM_SETTINGS: RoomSettings = Object.freeze({ slowModeMs: 0 });

export interface RoomInfo {
  room: RoomId;
  settings: RoomSettings;
  /** The seq of the newest message; 0 for a room with none. */
  lastSeq: Seq;
  createdAtMs: number;
  /** The pinned message, as it was when pinned; absent when none is. */
  pinned?: RoomMessage;
}

/** Token bucket per (room, uid): `ratePerSec` tokens refill each second, up to `burst`. */
export interface RateLimit { ratePerSec: number; burst: number }

/** The checks an ordinary viewer's message goes through; backends and moderators skip them. */
export interface SendChecks {
  rateLimit: RateLimit;
  /** Slow mode, mutes and bans apply to viewers; streamers, moderators and admins are exempt. */
  moderated: boolean;
}

export interface AppendInput {
  room: RoomId;
  uid: Uid;
  kind: MessageKind;
  text: string;
  nowMs: number;
  /** The client's message id: a second append with the same (uid, cid) is a duplicate. */
  cid?: ClientMsgId;
  data?: Record<string, unknown>;
  /** Overrides the kind's priority (priorityOf(kind)); backends may send low-priority system messages. */
  prio?: Priority;
  /** For `retract`: the seq withdrawn; the store also marks that message deleted in history. */
  target?: Seq;
  /** Absent for backends and moderation actions. */
  checks?: SendChecks;
}

export type AppendRejection = 'unknown_room' | 'muted' | 'banned' | 'slow_mode' | 'rate_limited' | 'not_found';

export type AppendResult =
  /** `unpin`: a retraction of the pinned message also unpinned it, with this message right after. */
  | { status: 'appended'; message: RoomMessage; unpin?: RoomMessage }
  | { status: 'duplicate'; seq: Seq }
  | { status: 'rejected'; code: AppendRejection; /** With slow_mode: when the user may send again, in ms from now. */ retryAfterMs?: number };

export interface RangeQuery {
  /** Only messages with a seq greater than this. */
  afterSeq?: Seq;
  /** Only messages with a seq less than this. */
  beforeSeq?: Seq;
  /** At most this many: the oldest ones when afterSeq is given, otherwise the newest ones. */
  limit: number;
}

export interface RangeResult {
  msgs: RoomMessage[];
  lastSeq: Seq;
  /** The oldest seq history still holds; lastSeq + 1 when it holds none. */
  firstSeq: Seq;
  /** The pinned message as of lastSeq, when one is. */
  pinned?: RoomMessage;
}

export interface PinInput {
  room: RoomId;
  /** The seq of the message to pin; it must still be in history and not withdrawn. */
  target: Seq;
  /** Who pins. */
  uid: Uid;
  nowMs: number;
}

/** `not_found`: no such message in history (or withdrawn); `not_pinnable`: a kind that cannot be pinned. */
export type PinRejection = 'unknown_room' | 'not_found' | 'not_pinnable';
export type PinResult =
  | { status: 'pinned'; message: RoomMessage; pinned: RoomMessage }
  | { status: 'rejected'; code: PinRejection };

export interface UnpinInput { room: RoomId; uid: Uid; nowMs: number }
export type UnpinResult =
  | { status: 'unpinned'; message: RoomMessage }
  | { status: 'rejected'; code: 'unknown_room' | 'not_pinned' };

/** Mutes and bans still in force, each sorted by uid. */
export interface ModerationLists { muted: ModerationEntry[]; banned: ModerationEntry[] }

export interface JoinInfo {
  banned: boolean;
  lastSeq: Seq;
  /** The newest `recent` messages, oldest first. */
  recent: RoomMessage[];
}

export interface RoomStoreLimits {
  /** Messages kept per room; older ones are trimmed on append. */
  historyLimit: number;
  /** How long (uid, cid) pairs are remembered for duplicate detection. */
  dedupTtlMs: number;
  /** A room with no message for this long expires with all its keys (Redis); 0 keeps rooms forever. */
  roomIdleTtlMs: number;
}

export interface RoomStore {
  /** Creates the room, or leaves an existing one as it is. Resolves true when it created it. */
  createRoom(room: RoomId, settings: RoomSettings, nowMs: number): Promise<boolean>;
  getRoom(room: RoomId): Promise<RoomInfo | null>;
  /** Resolves false for an unknown room. */
  updateSettings(room: RoomId, settings: Partial<RoomSettings>): Promise<boolean>;
  /** Assigns the next seq and appends, atomically with every check in `input.checks`. */
  append(input: AppendInput): Promise<AppendResult>;
  /**
   * Appends each input as `append` would, in order (a later input sees what an earlier one stored),
   * in as few round trips as the store allows; one result per input, in the same order.
   */
  appendBatch(inputs: readonly AppendInput[]): Promise<AppendResult[]>;
  /** Null for an unknown room. */
  range(room: RoomId, query: RangeQuery): Promise<RangeResult | null>;
  /** Null for an unknown room. */
  joinInfo(room: RoomId, uid: Uid, recent: number, nowMs: number): Promise<JoinInfo | null>;
  /** `untilMs` null lifts the mute. Resolves false for an unknown room. */
  setMute(room: RoomId, uid: Uid, untilMs: number | null): Promise<boolean>;
  /** `untilMs` null lifts the ban. Resolves false for an unknown room. */
  setBan(room: RoomId, uid: Uid, untilMs: number | null): Promise<boolean>;
  /** Null for an unknown room. */
  moderationLists(room: RoomId, nowMs: number): Promise<ModerationLists | null>;
  /**
   * Appends a `pin` message and makes its target the room's pinned message, atomically; a pin
   * replaces the previous one. A retraction of the pinned message unpins it (see AppendResult).
   */
  pin(input: PinInput): Promise<PinResult>;
  /** Appends an `unpin` message and clears the pin, atomically. */
  unpin(input: UnpinInput): Promise<UnpinResult>;
  close(): Promise<void>;
}

/** Whether a message of history may be pinned: a kind people read, and not withdrawn. */
export function isPinnable(message: RoomMessage): boolean {
  return message.deleted !== true && PINNABLE_KINDS.includes(message.kind);
}

/**
 * What a `pin` message carries besides who pinned and when: the pinned text, and `data` with the
 * author and kind, so that a client can show the pin from this one message.
 */
export function pinMessageFields(pinned: RoomMessage): Pick<RoomMessage, 'text' | 'target' | 'data'> {
  return { text: pinned.text, target: pinned.seq, data: { from: pinned.uid, kind: pinned.kind } };
}
