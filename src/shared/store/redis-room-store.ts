/**
 * The room store on Redis. Every operation that reads or changes several keys is one Lua script
 * (loaded with `defineCommand`, run with EVALSHA), so it is atomic and costs one round trip.
 *
 * Key layout (`rc:` is the default prefix; `{room}` is the Redis Cluster hash tag, so all keys of a
 * room live in one slot and a script may touch them together):
 *
 *   rc:room:{<room>}:meta                     HASH   createdAtMs, slowModeMs, renewedAtMs (see below; absent until the
 *                                                    first append). The room exists iff this key does.
 *   rc:room:{<room>}:seq                      STRING the newest seq (INCR); absent = 0.
 *   rc:room:{<room>}:hist                     LIST   the newest records, oldest first: `historyLimit` of them, and up to
 *                                                    2 % more that reads do not show (appends trim in steps). Records
 *                                                    carry no seq: element i has seq lastSeq - LLEN + 1 + i.
 *   rc:room:{<room>}:mute                     HASH   uid → untilMs
 *   rc:room:{<room>}:ban                      HASH   uid → untilMs
 *   rc:room:{<room>}:slow:<uid>               STRING untilMs: no message from uid before then (PX slowModeMs).
 *   rc:room:{<room>}:rl:<uid>                 HASH   tokens, ts: the uid's token bucket (PX until it is full again).
 *   rc:room:{<room>}:dedup:<len>:<uid>:<cid>  STRING "<seq>:<untilMs>" (PX dedupTtlMs); <len> is uid's length,
 *                                                    so that no two (uid, cid) pairs share a key.
 *   rc:room:{<room>}:pin                      HASH   seq, msg: the pinned message's seq and the message (msgpack)
 *                                                    as it was when pinned; absent when nothing is pinned.
 *
 * Appends come in batches (a gateway's sends of one window): one script call per batch on one Redis,
 * one per room of the batch on a cluster. The append script is named only each room's meta key and
 * derives the room's other keys from it: they carry the same hash tag, so they live in the same slot
 * on every node layout, and naming nine keys per message cost the room service more than the append
 * itself. It reads a room's state once per call and writes its seq and history once per call, so the
 * messages of a hot room share that work. Its one-command dedup (`SET NX GET`) needs Redis 7.0.
 *
 * Time: every decision compares against the `nowMs` the caller passes (stored untilMs values), as the
 * memory store does; Redis expiry (PX, PEXPIRE) only collects garbage, on Redis's own clock.
 *
 * Expiry of idle rooms: when `roomIdleTtlMs` > 0, creating a room sets that TTL on meta, and appends
 * set it on meta, seq, hist, mute, ban and pin whenever 1 % of it has passed since the room's
 * `renewedAtMs` (the caller's clock; a room without one, or one that is further off than that either
 * way, is renewed at once); a mute or ban set later takes the meta key's remaining TTL. A room with no
 * append for that long thus disappears with all its keys (the per-uid keys expire sooner).
 *
 * A history record is the msgpack array [header, content] with header = {uid, kind, prio, ts, cid?,
 * target?} and content = {text, data?}. A retraction replaces the target's content with
 * {text: '', deleted: true} inside the append script: Lua measures the header with
 * `cmsgpack.unpack_one` and keeps its bytes as they are, so who sent the message and when survive,
 * the withdrawn text does not, and only the codec ever encodes.
 *
 * Pins: the records of a `pin` or `unpin` message name the pinned seq, which only the script can
 * know for sure. So the store reads first (the target's record, or the pinned seq), encodes the
 * records, and the script commits only if what was read is still so (compare and set); otherwise the
 * store reads again. A retraction of the pinned message carries a ready `unpin` record that the
 * append script adds, and the pin it clears, in the same step.
 */
import type { Result } from 'ioredis';
import { asBuffer, defineScripts, execAll, DEFAULT_KEY_PREFIX, type RedisArg as Arg } from './redis-commands.js';
import { TOKEN_BUCKET_LUA } from './token-bucket.js';
import type { RedisConnection } from './redis-client.js';
import { decodeRecord, encodeRecord } from '../codec/codec.js';
import { priorityOf, type ModerationEntry, type RoomId, type RoomMessage, type Seq, type Uid } from '../protocol/frames.js';
import {
  isPinnable, pinMessageFields,
  type AppendInput, type AppendRejection, type AppendResult, type ModerationLists, type PinInput, type PinResult,
  type RangeQuery, type RangeResult, type RoomInfo, type RoomSettings, type RoomStore, type RoomStoreLimits, type UnpinInput,
  type UnpinResult,
} from './room-store.js';

/** Compare-and-set rounds of a pin or unpin; a record changes at most once (a tombstone), so two suffice. */
const PIN_ATTEMPTS = 3;
/** The append script's arguments before the records: historyLimit, dedupTtlMs, roomIdleTtlMs, tombstone, the packed fields. */
const APPEND_FIXED_ARGS = 5;
/** Appends let history grow by 1/this of historyLimit (at least one record) before they trim it: not an LTRIM per message. */
const HISTORY_TRIM_SLACK_DIVISOR = 50;
/** An append renews the room's idle TTL once 1/this of it has passed since the last renewal (so a room expires 99-100 % of the TTL after its last message). */
const IDLE_TTL_REFRESH_DIVISOR = 100;



/** What the read scripts answer: lastSeq, firstSeq, the seq of the first record, the records. */
type RawRange = [lastSeq: number, firstSeq: number, startSeq: number, records: Buffer[]];
type RawAppendResult = [status: 'appended', seq: number, unpinSeq: number] | [status: 'duplicate', seq: number] | [status: 'rejected', code: AppendRejection, retryAfterMs?: number];
/** The range script also answers the pinned message ('' when none). */
type RawRangeWithPin = [...RawRange, pinned: Buffer];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    roomcastCreateRoom(...args: Arg[]): Result<number, Context>;
    roomcastUpdateMeta(...args: Arg[]): Result<number, Context>;
    roomcastSetUntil(...args: Arg[]): Result<number, Context>;
    roomcastAppend(...args: Arg[]): Result<RawAppendResult[], Context>;
    roomcastAppendRoom(...args: Arg[]): Result<RawAppendResult[], Context>;
    roomcastPin(...args: Arg[]): Result<[status: 'pinned', seq: number] | [status: 'rejected', code: 'unknown_room' | 'not_found' | 'changed'], Context>;
    roomcastUnpin(...args: Arg[]): Result<[status: 'unpinned', seq: number] | [status: 'rejected', code: 'unknown_room' | 'not_pinned' | 'changed'], Context>;
    roomcastRangeBuffer(...args: Arg[]): Result<RawRangeWithPin | null, Context>;
  }
}

/**
 * history_bounds answers the newest seq, the oldest seq history shows (the newest `history_limit`) and
 * the seq of the list's first record (older when appends have not trimmed yet). read_range reads the
 * records with afterSeq < seq < beforeSeq (either may be nil): the oldest `limit` with afterSeq, else the newest.
 */
const READ_RANGE_LUA = `
local function history_bounds(seq_key, hist_key, history_limit)
  local last = tonumber(redis.call('GET', seq_key)) or 0
  local held_from = last - redis.call('LLEN', hist_key) + 1
  return last, math.max(held_from, last - history_limit + 1), held_from
end
local function read_range(seq_key, hist_key, after, before, limit, history_limit)
  local last, first, held_from = history_bounds(seq_key, hist_key, history_limit)
  local low = math.max(first, (after or 0) + 1)
  local high = math.min(last, (before or (last + 1)) - 1)
  if after then high = math.min(high, low + limit - 1) else low = math.max(low, high - limit + 1) end
  local records = {}
  if low <= high then records = redis.call('LRANGE', hist_key, low - held_from, high - held_from) end
  return {last, first, low, records}
end
`;

/**
 * The common part of the pin and unpin scripts (KEYS: meta, seq, hist, mute, ban, pin): answers
 * unknown_room first, and append_moderation(record) appends a record with the next seq, trims
 * history and keeps the room's keys alive like an append does.
 */
const APPEND_MODERATION_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'rejected', 'unknown_room'} end
local function append_moderation(record, history_limit, idle_ttl)
  local seq = redis.call('INCR', KEYS[2])
  redis.call('RPUSH', KEYS[3], record)
  redis.call('LTRIM', KEYS[3], -history_limit, -1)
  if idle_ttl > 0 then
    for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], idle_ttl) end
  end
  return seq
end
`;

/**
 * The append script (see SCRIPTS): `roomcastAppend` for a batch over several rooms, `roomcastAppendRoom`
 * for the messages of one room. Each room's state is read once per call (one HMGET of its meta hash,
 * one INCR of its seq); its seq, history and TTLs are written once per call, after its last message
 * (the seq only when more than one message took one). A message's own keys cost it its checks (bans,
 * mutes, slow mode, rate bucket) and one SET that both looks for its (uid, cid) pair and records it.
 */
const APPEND_LUA = `${TOKEN_BUCKET_LUA}
local history_limit, dedup_ttl, idle_ttl, tombstone_content = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
-- Arguments of redis.call as strings made once: Redis formats a Lua number as a double on every call.
local dedup_ttl_arg = ARGV[2]
-- A room's keys get their idle TTL again once the caller's clock has moved this far since the room's
-- renewedAtMs: not six PEXPIREs per message.
local renew_every = math.floor(idle_ttl / ${IDLE_TTL_REFRESH_DIVISOR})
local trim_above = history_limit + math.max(1, math.floor(history_limit / ${HISTORY_TRIM_SLACK_DIVISOR}))

local rooms = {}
-- The room of KEYS[index], read on its first message. The room's other keys share the meta key's hash
-- tag, so they live in its slot (see the header).
local function room_at(index)
  local room = rooms[index]
  if room then return room end
  local meta = KEYS[index]
  local base = string.sub(meta, 1, -6)
  local state = redis.call('HMGET', meta, 'createdAtMs', 'slowModeMs', 'renewedAtMs')
  room = { meta = meta, base = base, exists = state[1] ~= false, slow_ms = tonumber(state[2]) or 0,
    renewed_at = tonumber(state[3]), seq_key = base .. ':seq', hist = base .. ':hist', bans = base .. ':ban',
    mutes = base .. ':mute', pending = {} }
  rooms[index] = room
  return room
end

-- The room's newest seq. The first call takes the next one with INCR, which the room's first message
-- keeps, so a room with one message in the call writes its seq with one command; commit puts back
-- what no message took.
local function newest_seq(room)
  if not room.seq then
    room.stored_seq = redis.call('INCR', room.seq_key)
    room.seq = room.stored_seq - 1
  end
  return room.seq
end

-- Pushes the room's pending records to its history, trims it when it is over its slack; answers the list's length.
local function flush_history(room)
  local pending = room.pending
  if #pending == 0 then return nil end
  room.pending = {}
  local length = redis.call('RPUSH', room.hist, unpack(pending))
  if length <= trim_above then return length end
  redis.call('LTRIM', room.hist, -history_limit, -1)
  return history_limit
end

-- Replaces the content of the record with seq target (if history still holds it) by the tombstone.
local function tombstone(room, target)
  -- The retraction itself is pending, so the push answers the length.
  local index = target - (room.seq - flush_history(room) + 1)
  if index < 0 then return end
  local original = redis.call('LINDEX', room.hist, index)
  -- Skip the array's one-byte header; the answer is the 0-based offset where the content starts.
  local content_at = cmsgpack.unpack_one(original, 1)
  redis.call('LSET', room.hist, index, string.sub(original, 1, content_at) .. tombstone_content)
end

-- The seq a live (uid, cid) record names, or nil when there is none (or it has run out by now).
local function seen_seq(record, now)
  if not record then return nil end
  local seq, until_ms = string.match(record, '^(%d+):(%d+)$')
  if tonumber(until_ms) > now then return tonumber(seq) end
  return nil
end

-- A refused send still answers duplicate when its (uid, cid) pair was appended before.
local function refused(dedup, now, code, retry_after_ms)
  local seq = dedup and seen_seq(redis.call('GET', dedup), now)
  if seq then return {'duplicate', seq} end
  return {'rejected', code, retry_after_ms}
end

-- Whether the room has a mute or ban list at all, asked once per call: most rooms have neither, and
-- then their messages skip reading them. An empty hash does not exist in Redis, so lifting the last
-- mute and ban makes this false again, whoever wrote the lists.
local function has_lists(room)
  if room.has_lists == nil then room.has_lists = redis.call('EXISTS', room.bans, room.mutes) > 0 end
  return room.has_lists
end

local function until_active(hash, uid, now)
  local until_ms = tonumber(redis.call('HGET', hash, uid))
  return until_ms ~= nil and until_ms > now
end

local function append_one(record, input)
  local room_index, now, uid, dedup_tail, has_checks, moderated, rate, burst, target, unpin_at = unpack(input)
  local room = room_at(room_index)
  if not room.exists then return {'rejected', 'unknown_room'} end
  local base = room.base
  local dedup = dedup_tail ~= '' and (base .. ':dedup:' .. dedup_tail) or nil
  target = tonumber(target)

  -- Checks only read: a refused send leaves every key as it was.
  local slow, bucket, slow_ms, tokens = nil, nil, 0, 0
  if has_checks then
    if moderated then
      if has_lists(room) then
        if until_active(room.bans, uid, now) then return refused(dedup, now, 'banned') end
        if until_active(room.mutes, uid, now) then return refused(dedup, now, 'muted') end
      end
      slow_ms = room.slow_ms
      if slow_ms > 0 then
        slow = base .. ':slow:' .. uid
        local slow_until = tonumber(redis.call('GET', slow)) or 0
        if slow_until > now then return refused(dedup, now, 'slow_mode', slow_until - now) end
      end
    end
    bucket = base .. ':rl:' .. uid
    tokens = bucket_tokens(bucket, now, rate, burst)
    if tokens < 1 then return refused(dedup, now, 'rate_limited') end
  end
  if target and (target < 1 or target > newest_seq(room)) then return refused(dedup, now, 'not_found') end

  local seq = newest_seq(room) + 1
  if dedup then
    -- Records the pair unless it is there already: one command for the usual, new pair.
    local mark = string.format('%d:%d', seq, now + dedup_ttl)
    local previous = redis.call('SET', dedup, mark, 'NX', 'PX', dedup_ttl_arg, 'GET')
    if previous then
      local original = seen_seq(previous, now)
      if original then return {'duplicate', original} end
      -- Run out by the caller's clock, not yet by Redis's.
      redis.call('SET', dedup, mark, 'PX', dedup_ttl_arg)
    end
  end

  room.seq = seq
  room.appended_at = now
  table.insert(room.pending, record)
  local unpin_seq = 0
  if target then
    tombstone(room, target)
    if unpin_at > 0 and tonumber(redis.call('HGET', base .. ':pin', 'seq')) == target then
      room.seq = room.seq + 1
      unpin_seq = room.seq
      table.insert(room.pending, ARGV[unpin_at])
      redis.call('DEL', base .. ':pin')
    end
  end
  if has_checks then
    bucket_take(bucket, tokens, string.format('%d', now), rate, burst)
    if slow_ms > 0 then redis.call('SET', slow, string.format('%d', now + slow_ms), 'PX', slow_ms) end
  end
  return {'appended', seq, unpin_seq}
end

-- Writes what the room's messages changed: its seq, its history, and its idle TTL when due.
local function commit(room)
  if room.seq ~= nil and room.seq ~= room.stored_seq then
    -- A room without messages has no seq key (INCR made it just now).
    if room.seq == 0 then redis.call('DEL', room.seq_key)
    else redis.call('SET', room.seq_key, string.format('%d', room.seq), 'KEEPTTL') end
  end
  if not room.appended_at then return end
  flush_history(room)
  local now, renewed_at = room.appended_at, room.renewed_at
  if idle_ttl > 0 and (renewed_at == nil or math.abs(now - renewed_at) >= renew_every) then
    redis.call('HSET', room.meta, 'renewedAtMs', string.format('%d', now))
    for _, key in ipairs({room.meta, room.seq_key, room.hist, room.mutes, room.bans, room.base .. ':pin'}) do
      redis.call('PEXPIRE', key, idle_ttl)
    end
  end
end

local inputs = cmsgpack.unpack(ARGV[5])
local results = {}
for i = 1, #inputs do results[i] = append_one(ARGV[5 + i], inputs[i]) end
for _, room in pairs(rooms) do commit(room) end
return results`;

const SCRIPTS = {
  // KEYS: meta. ARGV: roomIdleTtlMs, then field/value pairs.
  roomcastCreateRoom: {
    numberOfKeys: 1,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
local idle_ttl = tonumber(ARGV[1])
if idle_ttl > 0 then redis.call('PEXPIRE', KEYS[1], idle_ttl) end
return 1`,
  },
  // KEYS: meta. ARGV: field/value pairs (possibly none).
  roomcastUpdateMeta: {
    numberOfKeys: 1,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return 1`,
  },
  // KEYS: meta, mute or ban hash. ARGV: uid, untilMs ('' lifts).
  roomcastSetUntil: {
    numberOfKeys: 2,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  -- Expire with the room, not after it.
  local room_ttl = redis.call('PTTL', KEYS[1])
  if room_ttl > 0 then redis.call('PEXPIRE', KEYS[2], room_ttl) end
end
return 1`,
  },
  // Appends a batch of messages, each with its own checks, in order; answers one result per message.
  // KEYS: the meta key of each room of the batch, once. ARGV: historyLimit, dedupTtlMs, roomIdleTtlMs,
  //   tombstone content, the messages' fields as one msgpack array of [room (index into KEYS), nowMs,
  //   uid, the dedup key's tail '<len>:<uid>:<cid>' ('' = no cid), hasChecks, moderated, ratePerSec,
  //   burst, target ('' = none), unpinAt], then
  //   each message's record, then any unpin records (appended after a retraction of the pinned
  //   message), each at the ARGV index its message's unpinAt names (0 = none). Records travel as
  //   arguments of their own: Redis's cmsgpack reads no msgpack bin.
  roomcastAppend: { lua: APPEND_LUA },
  // The same for the messages of one room: on a cluster, where the keys of one call must share a slot
  // and ioredis routes a call by its first key (which a batch call's leading key count would hide).
  roomcastAppendRoom: { numberOfKeys: 1, lua: APPEND_LUA },
  // KEYS: meta, seq, hist, mute, ban, pin.
  // ARGV: target, the target's record as read, pin record, pinned message, historyLimit, roomIdleTtlMs.
  roomcastPin: {
    numberOfKeys: 6,
    lua: `${APPEND_MODERATION_LUA}${READ_RANGE_LUA}
local target = tonumber(ARGV[1])
local last, first, held_from = history_bounds(KEYS[2], KEYS[3], tonumber(ARGV[5]))
if target < first or target > last then return {'rejected', 'not_found'} end
-- Withdrawn since the store read it: the caller reads again.
if redis.call('LINDEX', KEYS[3], target - held_from) ~= ARGV[2] then return {'rejected', 'changed'} end
redis.call('HSET', KEYS[6], 'seq', target, 'msg', ARGV[4])
return {'pinned', append_moderation(ARGV[3], tonumber(ARGV[5]), tonumber(ARGV[6]))}`,
  },
  // KEYS: meta, seq, hist, mute, ban, pin. ARGV: the pinned seq as read, unpin record, historyLimit, roomIdleTtlMs.
  roomcastUnpin: {
    numberOfKeys: 6,
    lua: `${APPEND_MODERATION_LUA}
local pinned = redis.call('HGET', KEYS[6], 'seq')
if not pinned then return {'rejected', 'not_pinned'} end
if pinned ~= ARGV[1] then return {'rejected', 'changed'} end
local seq = append_moderation(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
redis.call('DEL', KEYS[6])
return {'unpinned', seq}`,
  },
  // KEYS: meta, seq, hist, pin. ARGV: afterSeq ('' = none), beforeSeq ('' = none), limit, historyLimit.
  roomcastRange: {
    numberOfKeys: 4,
    lua: `${READ_RANGE_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local range = read_range(KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
table.insert(range, redis.call('HGET', KEYS[4], 'msg') or '')
return range`,
  },
} as const;

/** What a history record holds besides the seq, split so that a retraction can drop the content alone. */
type RecordHeader = Pick<RoomMessage, 'uid' | 'kind' | 'prio' | 'ts' | 'cid' | 'target'>;
type RecordContent = Pick<RoomMessage, 'text' | 'data' | 'deleted'>;

const TOMBSTONE_CONTENT = asBuffer(encodeRecord({ text: '', deleted: true } satisfies RecordContent));

export interface RedisRoomStoreOptions {
  /** The connection belongs to the caller, who also closes it. */
  redis: RedisConnection;
  limits: RoomStoreLimits;
  /** Prefix of every key; `rc:` by default. */
  keyPrefix?: string;
}

export class RedisRoomStore implements RoomStore {
  private readonly redis: RedisConnection;
  private readonly limits: RoomStoreLimits;
  private readonly keyPrefix: string;

  constructor(options: RedisRoomStoreOptions) {
    this.redis = options.redis;
    this.limits = options.limits;
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    defineScripts(this.redis, SCRIPTS);
  }

  async createRoom(room: RoomId, settings: RoomSettings, nowMs: number): Promise<boolean> {
    const fields = settingsFields({ ...settings, createdAtMs: nowMs });
    return (await this.redis.roomcastCreateRoom(this.keys(room).meta, this.limits.roomIdleTtlMs, ...fields)) === 1;
  }

  async getRoom(room: RoomId): Promise<RoomInfo | null> {
    const keys = this.keys(room);
    const [meta, lastSeq, pinned] = await execAll(this.redis.multi().hgetall(keys.meta).get(keys.seq).hgetBuffer(keys.pin, 'msg'));
    const fields = meta as Record<string, string>;
    if (fields.createdAtMs === undefined) return null;
    return {
      room,
      settings: { slowModeMs: Number(fields.slowModeMs ?? 0) },
      lastSeq: Number(lastSeq ?? 0),
      createdAtMs: Number(fields.createdAtMs),
      ...pinnedField(pinned as Buffer | null),
    };
  }

  async updateSettings(room: RoomId, settings: Partial<RoomSettings>): Promise<boolean> {
    return (await this.redis.roomcastUpdateMeta(this.keys(room).meta, ...settingsFields(settings))) === 1;
  }

  async append(input: AppendInput): Promise<AppendResult> {
    return (await this.appendBatch([input]))[0]!;
  }

  /**
   * One script call for the whole batch on one Redis; on a cluster, one per room (a room's keys share
   * its slot), which auto-pipelining sends to each node together.
   */
  async appendBatch(inputs: readonly AppendInput[]): Promise<AppendResult[]> {
    if (inputs.length === 0) return [];
    if (!this.redis.isCluster) {
      const replies = await this.redis.roomcastAppend(...this.appendArgs(inputs, true));
      return inputs.map((input, index) => appendResultOf(input, replies[index]!));
    }
    const results: AppendResult[] = new Array(inputs.length);
    await Promise.all([...positionsByRoom(inputs).values()].map(async (positions) => {
      const roomInputs = positions.map((position) => inputs[position]!);
      const replies = await this.redis.roomcastAppendRoom(...this.appendArgs(roomInputs, false));
      positions.forEach((position, index) => { results[position] = appendResultOf(roomInputs[index]!, replies[index]!); });
    }));
    return results;
  }

  /**
   * The script's arguments (see APPEND_LUA): each room's meta key once (after their count when
   * `withKeyCount`), the fixed arguments, the messages' fields packed, the records.
   */
  private appendArgs(inputs: readonly AppendInput[], withKeyCount: boolean): Arg[] {
    const roomIndexes = new Map<RoomId, number>();
    const keys: string[] = [];
    const records: Buffer[] = new Array(inputs.length);
    const unpinRecords: Buffer[] = [];
    const fields = inputs.map((input, position) => {
      const { room, uid, cid, checks, target, nowMs } = input;
      let roomIndex = roomIndexes.get(room);
      if (roomIndex === undefined) {
        keys.push(this.metaKey(room));
        roomIndex = keys.length;
        roomIndexes.set(room, roomIndex);
      }
      records[position] = encodeMessageRecord(input);
      let unpinAt = 0;
      if (input.kind === 'retract' && target !== undefined) {
        // Used only if the target turns out to be the pinned message.
        unpinRecords.push(encodeMessageRecord({ uid, kind: 'unpin', text: '', target, nowMs }));
        unpinAt = APPEND_FIXED_ARGS + inputs.length + unpinRecords.length;
      }
      return [roomIndex, nowMs, uid, cid === undefined ? '' : dedupTail(uid, cid), checks !== undefined, checks?.moderated === true, checks?.rateLimit.ratePerSec ?? 0, checks?.rateLimit.burst ?? 0, target ?? '', unpinAt];
    });
    const { historyLimit, dedupTtlMs, roomIdleTtlMs } = this.limits;
    return [
      ...(withKeyCount ? [keys.length] : []), ...keys,
      historyLimit, dedupTtlMs, roomIdleTtlMs, TOMBSTONE_CONTENT, asBuffer(encodeRecord(fields)), ...records, ...unpinRecords,
    ];
  }

  async range(room: RoomId, query: RangeQuery): Promise<RangeResult | null> {
    const reply = await this.rawRange(room, query);
    if (!reply) return null;
    const [lastSeq, firstSeq, startSeq, records, pinned] = reply;
    return { msgs: decodeRecords(records, startSeq), lastSeq, firstSeq, ...pinnedField(pinned) };
  }

  async pin(input: PinInput): Promise<PinResult> {
    const { room, target, uid, nowMs } = input;
    const keys = this.keys(room);
    for (let attempt = 0; attempt < PIN_ATTEMPTS; attempt++) {
      const read = await this.rawRange(room, { afterSeq: Math.max(0, target - 1), limit: 1 });
      if (!read) return { status: 'rejected', code: 'unknown_room' };
      const [, , startSeq, records] = read;
      const record = target >= 1 && startSeq === target ? records[0] : undefined;
      if (!record) return { status: 'rejected', code: 'not_found' };
      const pinned = decodeRecords([record], target)[0]!;
      if (pinned.deleted) return { status: 'rejected', code: 'not_found' };
      if (!isPinnable(pinned)) return { status: 'rejected', code: 'not_pinnable' };
      const fields = { uid, kind: 'pin' as const, nowMs, ...pinMessageFields(pinned) };
      const reply = await this.redis.roomcastPin(
        keys.meta, keys.seq, keys.hist, keys.mute, keys.ban, keys.pin,
        target, record, encodeMessageRecord(fields), asBuffer(encodeRecord(pinned)), this.limits.historyLimit, this.limits.roomIdleTtlMs,
      );
      if (reply[0] === 'pinned') return { status: 'pinned', message: messageOf(reply[1], fields), pinned };
      if (reply[1] !== 'changed') return { status: 'rejected', code: reply[1] };
    }
    throw new Error(`pinning ${target} in room ${room} kept racing with changes`);
  }

  async unpin(input: UnpinInput): Promise<UnpinResult> {
    const { room, uid, nowMs } = input;
    const keys = this.keys(room);
    for (let attempt = 0; attempt < PIN_ATTEMPTS; attempt++) {
      const pinnedSeq = await this.redis.hget(keys.pin, 'seq');
      const fields = { uid, kind: 'unpin' as const, text: '', nowMs, target: Number(pinnedSeq ?? 0) };
      const reply = await this.redis.roomcastUnpin(
        keys.meta, keys.seq, keys.hist, keys.mute, keys.ban, keys.pin,
        pinnedSeq ?? '', encodeMessageRecord(fields), this.limits.historyLimit, this.limits.roomIdleTtlMs,
      );
      if (reply[0] === 'unpinned') return { status: 'unpinned', message: messageOf(reply[1], fields) };
      if (reply[1] !== 'changed') return { status: 'rejected', code: reply[1] };
    }
    throw new Error(`unpinning in room ${room} kept racing with changes`);
  }

  async moderationLists(room: RoomId, nowMs: number): Promise<ModerationLists | null> {
    const keys = this.keys(room);
    const [exists, mutes, bans] = await execAll(this.redis.multi().exists(keys.meta).hgetall(keys.mute).hgetall(keys.ban));
    if (exists === 0) return null;
    return { muted: inForce(mutes as Record<string, string>, nowMs), banned: inForce(bans as Record<string, string>, nowMs) };
  }

  async setMute(room: RoomId, uid: Uid, untilMs: number | null): Promise<boolean> {
    const keys = this.keys(room);
    return (await this.redis.roomcastSetUntil(keys.meta, keys.mute, uid, untilMs ?? '')) === 1;
  }

  async setBan(room: RoomId, uid: Uid, untilMs: number | null): Promise<boolean> {
    const keys = this.keys(room);
    return (await this.redis.roomcastSetUntil(keys.meta, keys.ban, uid, untilMs ?? '')) === 1;
  }

  /** The connection belongs to whoever made it; there is nothing else to release. */
  async close(): Promise<void> {}

  private rawRange(room: RoomId, query: RangeQuery): Promise<RawRangeWithPin | null> {
    const keys = this.keys(room);
    return this.redis.roomcastRangeBuffer(keys.meta, keys.seq, keys.hist, keys.pin, query.afterSeq ?? '', query.beforeSeq ?? '', query.limit, this.limits.historyLimit);
  }

  /** The key that says a room exists; the append script derives the room's other keys from it. */
  private metaKey(room: RoomId): string {
    return `${this.roomKeyBase(room)}:meta`;
  }

  private roomKeyBase(room: RoomId): string {
    return `${this.keyPrefix}room:{${room}}`;
  }

  private keys(room: RoomId): RoomKeys {
    const base = this.roomKeyBase(room);
    return {
      meta: this.metaKey(room),
      seq: `${base}:seq`,
      hist: `${base}:hist`,
      mute: `${base}:mute`,
      ban: `${base}:ban`,
      pin: `${base}:pin`,
    };
  }
}

interface RoomKeys {
  meta: string;
  seq: string;
  hist: string;
  mute: string;
  ban: string;
  pin: string;
}

/** What follows `dedup:` in the key of a (uid, cid) pair: uid's length keeps any two pairs apart. */
function dedupTail(uid: Uid, cid: string): string {
  return `${uid.length}:${uid}:${cid}`;
}

/** Each room's positions in `inputs`, in order. */
function positionsByRoom(inputs: readonly AppendInput[]): Map<RoomId, number[]> {
  const byRoom = new Map<RoomId, number[]>();
  inputs.forEach((input, position) => {
    const positions = byRoom.get(input.room);
    if (positions) positions.push(position);
    else byRoom.set(input.room, [position]);
  });
  return byRoom;
}

type MessageFields = Pick<AppendInput, 'uid' | 'kind' | 'text' | 'nowMs' | 'cid' | 'data' | 'prio' | 'target'>;

function appendResultOf(input: AppendInput, reply: RawAppendResult): AppendResult {
  switch (reply[0]) {
    case 'appended': {
      const message = messageOf(reply[1], input);
      if (reply[2] === 0) return { status: 'appended', message };
      return { status: 'appended', message, unpin: messageOf(reply[2], { uid: input.uid, kind: 'unpin', text: '', target: input.target!, nowMs: input.nowMs }) };
    }
    case 'duplicate': return { status: 'duplicate', seq: reply[1] };
    case 'rejected': return reply[2] === undefined ? { status: 'rejected', code: reply[1] } : { status: 'rejected', code: reply[1], retryAfterMs: reply[2] };
  }
}

/** The part of a record a retraction keeps: who sent the message, what kind and when. */
function recordHeader(fields: MessageFields): RecordHeader {
  const header: RecordHeader = { uid: fields.uid, kind: fields.kind, prio: fields.prio ?? priorityOf(fields.kind), ts: fields.nowMs };
  if (fields.cid !== undefined) header.cid = fields.cid;
  if (fields.target !== undefined) header.target = fields.target;
  return header;
}

function encodeMessageRecord(fields: MessageFields): Buffer {
  const content: RecordContent = fields.data === undefined ? { text: fields.text } : { text: fields.text, data: fields.data };
  return asBuffer(encodeRecord([recordHeader(fields), content]));
}

/** The message a record of these fields holds under `seq`, as decodeRecords would give it (built in one object: one per message sent). */
function messageOf(seq: Seq, fields: MessageFields): RoomMessage {
  const message: RoomMessage = { seq, uid: fields.uid, kind: fields.kind, prio: fields.prio ?? priorityOf(fields.kind), ts: fields.nowMs, text: fields.text };
  if (fields.cid !== undefined) message.cid = fields.cid;
  if (fields.target !== undefined) message.target = fields.target;
  if (fields.data !== undefined) message.data = fields.data;
  return message;
}

/** The `pinned` field of a room or a range: the stored message, when one is pinned. */
function pinnedField(stored: Buffer | null | undefined): { pinned?: RoomMessage } {
  return stored && stored.length > 0 ? { pinned: decodeRecord(stored) as RoomMessage } : {};
}

/** Mutes or bans (uid → untilMs) still in force, sorted by uid. */
function inForce(untilByUid: Record<string, string>, nowMs: number): ModerationEntry[] {
  return Object.entries(untilByUid)
    .map(([uid, untilMs]) => ({ uid, untilMs: Number(untilMs) }))
    .filter((entry) => entry.untilMs > nowMs)
    .sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
}

function decodeRecords(records: Buffer[], startSeq: Seq): RoomMessage[] {
  return records.map((record, i) => {
    const decoded = decodeRecord(record);
    if (!Array.isArray(decoded) || decoded.length !== 2) throw new Error(`history record ${startSeq + i} is not a [header, content] pair`);
    const [header, content] = decoded as [RecordHeader, RecordContent];
    return { seq: startSeq + i, ...header, ...content };
  });
}

/** Field/value pairs for HSET, skipping absent settings. */
function settingsFields(fields: Partial<Record<string, number>>): Arg[] {
  return Object.entries(fields).flatMap(([field, value]) => (value === undefined ? [] : [field, value]));
}
