/**
 * The room store of the all-in-one mode: the same contract as the Redis store, in one process's
 * memory. Every method runs to completion synchronously, so each append is atomic as in Redis.
 * There are no timers: entries that expire (duplicate ids, slow-mode marks, rate-limit buckets)
 * are dropped lazily, against the `nowMs` the callers pass. Rooms never expire here
 * (`roomIdleTtlMs` is for Redis).
 */
import { priorityOf, type ModerationEntry, type RoomId, type RoomMessage, type Seq, type Uid } from '../protocol/frames.js';
import { fullAgainAtMs, refill, type TokenBucket } from './token-bucket.js';
import {
  isPinnable, pinMessageFields,
  type AppendInput, type AppendRejection, type AppendResult, type JoinInfo, type ModerationLists, type PinInput, type PinResult,
  type RangeQuery, type RangeResult, type RoomInfo, type RoomSettings, type RoomStore, type RoomStoreLimits,
  type UnpinInput, type UnpinResult,
} from './room-store.js';


/**
 * A map whose entries expire at a given time. Entries are kept in the order they were last set;
 * `prune` drops expired ones from the front and stops at the first live one, so its cost is
 * proportional to what it drops (entries set with a later expiry than a newer one wait a little longer).
 */
class ExpiringMap<K, V> {
  private readonly entries = new Map<K, { value: V; expiresAtMs: number }>();

  get(key: K, nowMs: number): V | undefined {
    const entry = this.entries.get(key);
    return entry && entry.expiresAtMs > nowMs ? entry.value : undefined;
  }

  set(key: K, value: V, expiresAtMs: number): void {
    // Deleting first moves the key to the back, keeping the order of last writes.
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAtMs });
  }

  prune(nowMs: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAtMs > nowMs) return;
      this.entries.delete(key);
    }
  }
}

type Bucket = TokenBucket;

interface Room {
  settings: RoomSettings;
  createdAtMs: number;
  lastSeq: Seq;
  /** The newest messages, oldest first; `history[i]` has seq lastSeq - history.length + 1 + i. */
  history: RoomMessage[];
  /** uid → until when (ms since the epoch). */
  mutes: Map<Uid, number>;
  bans: Map<Uid, number>;
  /** uid → until when the next message is refused. */
  /** uid → until when (ms since the epoch) slow mode holds the uid's next message back. */
  slowMode: ExpiringMap<Uid, number>;
  /** A bucket that would be full again expires: a missing bucket is a full one. */
  buckets: ExpiringMap<Uid, Bucket>;
  /** (uid, cid) → the seq the first message got. */
  dedup: ExpiringMap<string, Seq>;
  /** The pinned message as it was when pinned (it outlives history's trimming). */
  pinned: RoomMessage | undefined;
}


export class MemoryRoomStore implements RoomStore {
  private readonly rooms = new Map<RoomId, Room>();
  /** Kept apart from rooms: gateways may report a room that does not exist (any longer). */

  constructor(private readonly limits: RoomStoreLimits) {}

  async createRoom(room: RoomId, settings: RoomSettings, nowMs: number): Promise<boolean> {
    if (this.rooms.has(room)) return false;
    this.rooms.set(room, {
      settings: { ...settings }, createdAtMs: nowMs, lastSeq: 0, history: [],
      mutes: new Map(), bans: new Map(),
      slowMode: new ExpiringMap(), buckets: new ExpiringMap(), dedup: new ExpiringMap(), pinned: undefined,
    });
    return true;
  }

  async getRoom(room: RoomId): Promise<RoomInfo | null> {
    const state = this.rooms.get(room);
    if (!state) return null;
    return {
      room, settings: { ...state.settings }, lastSeq: state.lastSeq, createdAtMs: state.createdAtMs,
      ...(state.pinned ? { pinned: state.pinned } : {}),
    };
  }

  async updateSettings(room: RoomId, settings: Partial<RoomSettings>): Promise<boolean> {
    const state = this.rooms.get(room);
    if (!state) return false;
    state.settings = { ...state.settings, ...definedFields(settings) };
    return true;
  }

  async appendBatch(inputs: readonly AppendInput[]): Promise<AppendResult[]> {
    const results: AppendResult[] = [];
    for (const input of inputs) results.push(await this.append(input));
    return results;
  }

  async append(input: AppendInput): Promise<AppendResult> {
    const state = this.rooms.get(input.room);
    if (!state) return rejected('unknown_room');
    const { nowMs, uid, cid, checks, target } = input;
    state.dedup.prune(nowMs);
    state.slowMode.prune(nowMs);
    state.buckets.prune(nowMs);

    const dedupKey = cid === undefined ? undefined : pairKey(uid, cid);
    if (dedupKey !== undefined) {
      const seq = state.dedup.get(dedupKey, nowMs);
      if (seq !== undefined) return { status: 'duplicate', seq };
    }
    let bucket: Bucket | undefined;
    if (checks) {
      if (checks.moderated) {
        if (isActive(state.bans, uid, nowMs)) return rejected('banned');
        if (isActive(state.mutes, uid, nowMs)) return rejected('muted');
        const slowUntilMs = state.settings.slowModeMs > 0 ? state.slowMode.get(uid, nowMs) : undefined;
        if (slowUntilMs !== undefined) return { status: 'rejected', code: 'slow_mode', retryAfterMs: slowUntilMs - nowMs };
      }
      bucket = refill(state.buckets.get(uid, nowMs), checks.rateLimit, nowMs);
      if (bucket.tokens < 1) return rejected('rate_limited');
    }
    if (target !== undefined && (target < 1 || target > state.lastSeq)) return rejected('not_found');

    // Every check passed: from here on the append commits.
    const message = this.push(state, newMessage(input, state.lastSeq + 1));
    if (target !== undefined) tombstone(state, target);
    // Withdrawing the pinned message unpins it, in the same step.
    let unpin: RoomMessage | undefined;
    if (input.kind === 'retract' && target !== undefined && state.pinned?.seq === target) {
      state.pinned = undefined;
      unpin = this.push(state, newMessage({ uid, kind: 'unpin', text: '', target, nowMs }, state.lastSeq + 1));
    }
    if (dedupKey !== undefined) state.dedup.set(dedupKey, message.seq, nowMs + this.limits.dedupTtlMs);
    if (checks && bucket) {
      const spent = { tokens: bucket.tokens - 1, atMs: nowMs };
      state.buckets.set(uid, spent, fullAgainAtMs(spent, checks.rateLimit));
      if (checks.moderated && state.settings.slowModeMs > 0) state.slowMode.set(uid, nowMs + state.settings.slowModeMs, nowMs + state.settings.slowModeMs);
    }
    return unpin ? { status: 'appended', message, unpin } : { status: 'appended', message };
  }

  async pin(input: PinInput): Promise<PinResult> {
    const state = this.rooms.get(input.room);
    if (!state) return { status: 'rejected', code: 'unknown_room' };
    const pinned = state.history[input.target - (state.lastSeq - state.history.length + 1)];
    if (!pinned || input.target < 1 || pinned.deleted) return { status: 'rejected', code: 'not_found' };
    if (!isPinnable(pinned)) return { status: 'rejected', code: 'not_pinnable' };
    const message = this.push(state, newMessage({ uid: input.uid, kind: 'pin', nowMs: input.nowMs, ...pinMessageFields(pinned) }, state.lastSeq + 1));
    state.pinned = pinned;
    return { status: 'pinned', message, pinned };
  }

  async unpin(input: UnpinInput): Promise<UnpinResult> {
    const state = this.rooms.get(input.room);
    if (!state) return { status: 'rejected', code: 'unknown_room' };
    if (!state.pinned) return { status: 'rejected', code: 'not_pinned' };
    const message = this.push(state, newMessage({ uid: input.uid, kind: 'unpin', text: '', target: state.pinned.seq, nowMs: input.nowMs }, state.lastSeq + 1));
    state.pinned = undefined;
    return { status: 'unpinned', message };
  }

  async moderationLists(room: RoomId, nowMs: number): Promise<ModerationLists | null> {
    const state = this.rooms.get(room);
    if (!state) return null;
    return { muted: inForce(state.mutes, nowMs), banned: inForce(state.bans, nowMs) };
  }

  async range(room: RoomId, query: RangeQuery): Promise<RangeResult | null> {
    const state = this.rooms.get(room);
    if (!state) return null;
    const firstSeq = state.lastSeq - state.history.length + 1;
    let low = Math.max(firstSeq, (query.afterSeq ?? 0) + 1);
    let high = Math.min(state.lastSeq, (query.beforeSeq ?? Infinity) - 1);
    if (query.afterSeq === undefined) low = Math.max(low, high - query.limit + 1);
    else high = Math.min(high, low + query.limit - 1);
    const msgs = low > high ? [] : state.history.slice(low - firstSeq, high - firstSeq + 1);
    return { msgs, lastSeq: state.lastSeq, firstSeq, ...(state.pinned ? { pinned: state.pinned } : {}) };
  }

  async joinInfo(room: RoomId, uid: Uid, recent: number, nowMs: number): Promise<JoinInfo | null> {
    const state = this.rooms.get(room);
    if (!state) return null;
    return {
      banned: isActive(state.bans, uid, nowMs),
      lastSeq: state.lastSeq,
      recent: recent > 0 ? state.history.slice(-recent) : [],
    };
  }

  async setMute(room: RoomId, uid: Uid, untilMs: number | null): Promise<boolean> {
    return this.setUntil(room, 'mutes', uid, untilMs);
  }

  async setBan(room: RoomId, uid: Uid, untilMs: number | null): Promise<boolean> {
    return this.setUntil(room, 'bans', uid, untilMs);
  }

  async close(): Promise<void> {}

  /** Appends a message that has the room's next seq, trimming history to its limit. */
  private push(state: Room, message: RoomMessage): RoomMessage {
    state.lastSeq = message.seq;
    state.history.push(message);
    if (state.history.length > this.limits.historyLimit) state.history.splice(0, state.history.length - this.limits.historyLimit);
    return message;
  }

  private setUntil(room: RoomId, which: 'mutes' | 'bans', uid: Uid, untilMs: number | null): boolean {
    const state = this.rooms.get(room);
    if (!state) return false;
    if (untilMs === null) state[which].delete(uid);
    else state[which].set(uid, untilMs);
    return true;
  }
}

function rejected(code: AppendRejection): AppendResult {
  return { status: 'rejected', code };
}

/** The entries still in force, sorted by uid. */
function inForce(untilByUid: Map<Uid, number>, nowMs: number): ModerationEntry[] {
  const entries: ModerationEntry[] = [];
  for (const [uid, untilMs] of untilByUid) if (untilMs > nowMs) entries.push({ uid, untilMs });
  return entries.sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
}

/** Whether a mute or ban is in force; an expired one is dropped. */
function isActive(untilByUid: Map<Uid, number>, uid: Uid, nowMs: number): boolean {
  const untilMs = untilByUid.get(uid);
  if (untilMs === undefined) return false;
  if (untilMs > nowMs) return true;
  untilByUid.delete(uid);
  return false;
}

/** Marks a message of history withdrawn: its content goes, who sent it and when stay. */
function tombstone(state: Room, target: Seq): void {
  const index = target - (state.lastSeq - state.history.length + 1);
  const original = state.history[index];
  if (!original) return;
  const { text: _text, data: _data, ...header } = original;
  state.history[index] = Object.freeze({ ...header, text: '', deleted: true });
}

type MessageInput = Pick<AppendInput, 'uid' | 'kind' | 'text' | 'nowMs' | 'cid' | 'data' | 'prio' | 'target'>;

function newMessage(input: MessageInput, seq: Seq): RoomMessage {
  return Object.freeze({
    seq, uid: input.uid, kind: input.kind, prio: input.prio ?? priorityOf(input.kind), text: input.text, ts: input.nowMs,
    ...(input.cid === undefined ? {} : { cid: input.cid }),
    ...(input.target === undefined ? {} : { target: input.target }),
    // A copy, as Redis stores one: the caller may reuse its object.
    ...(input.data === undefined ? {} : { data: structuredClone(input.data) }),
  });
}

/** An unambiguous key for a (uid, cid) pair: the length prefix keeps 'a:b'+'c' apart from 'a'+'b:c'. */
function pairKey(uid: Uid, cid: string): string {
  return `${uid.length}:${uid}:${cid}`;
}

function definedFields<T extends object>(partial: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(partial).filter(([, value]) => value !== undefined)) as Partial<T>;
}
