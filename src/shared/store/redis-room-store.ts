/**
 * The room store on Redis. Every operation that reads or changes several keys is one Lua script
 * (loaded with `defineCommand`, run with EVALSHA), so it is atomic and costs one round trip.
 *
 * Key layout (`rc:` is the default prefix; `{room}` is the Redis Cluster hash tag, so all keys of a
 * room live in one slot and a script may touch them together):
 *
 *   rc:room:{<room>}:meta                     HASH   createdAtMs, slowModeMs. The room exists iff this key does.
 *   rc:room:{<room>}:seq                      STRING the newest seq (INCR); absent = 0.
 *   rc:room:{<room>}:hist                     LIST   the newest `historyLimit` records, oldest first. Records
 *                                                    carry no seq: element i has seq lastSeq - LLEN + 1 + i.
 *   rc:room:{<room>}:mute                     HASH   uid → untilMs
 *   rc:room:{<room>}:ban                      HASH   uid → untilMs
 *   rc:room:{<room>}:slow:<uid>               STRING untilMs: no message from uid before then (PX slowModeMs).
 *   rc:room:{<room>}:rl:<uid>                 HASH   tokens, ts: the uid's token bucket (PX until it is full again).
 *   rc:room:{<room>}:dedup:<len>:<uid>:<cid>  STRING "<seq>:<untilMs>" (PX dedupTtlMs); <len> is uid's length,
 *                                                    so that no two (uid, cid) pairs share a key.
 *
 * Time: every decision compares against the `nowMs` the caller passes (stored untilMs values), as the
 * memory store does; Redis expiry (PX, PEXPIRE) only collects garbage, on Redis's own clock.
 *
 * Expiry of idle rooms: when `roomIdleTtlMs` > 0, creating a room and every append set that TTL on
 * meta, seq, hist, mute and ban; a mute or ban set later takes the meta key's remaining TTL. A room
 * with no append for that long thus disappears with all its keys (the per-uid keys expire sooner).
 *
 * A history record is the msgpack array [header, content] with header = {uid, kind, prio, ts, cid?,
 * target?} and content = {text, data?}. A retraction replaces the target's content with
 * {text: '', deleted: true} inside the append script: Lua measures the header with
 * `cmsgpack.unpack_one` and keeps its bytes as they are, so who sent the message and when survive,
 * the withdrawn text does not, and only the codec ever encodes.
 */
import type { Redis, Result } from 'ioredis';
import { asBuffer, defineScripts, execAll, DEFAULT_KEY_PREFIX, type RedisArg as Arg } from './redis-commands.js';
import { decodeRecord, encodeRecord } from '../codec/codec.js';
import { priorityOf, type RoomId, type RoomMessage, type Seq, type Uid } from '../protocol/frames.js';
import type {
  AppendInput, AppendRejection, AppendResult, JoinInfo, RangeQuery, RangeResult, RoomInfo, RoomSettings,
  RoomStore, RoomStoreLimits,
} from './room-store.js';



/** What the read scripts answer: lastSeq, firstSeq, the seq of the first record, the records. */
type RawRange = [lastSeq: number, firstSeq: number, startSeq: number, records: Buffer[]];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    roomcastCreateRoom(...args: Arg[]): Result<number, Context>;
    roomcastUpdateMeta(...args: Arg[]): Result<number, Context>;
    roomcastSetUntil(...args: Arg[]): Result<number, Context>;
    roomcastAppend(...args: Arg[]): Result<[status: 'appended' | 'duplicate', seq: number] | [status: 'rejected', code: AppendRejection], Context>;
    roomcastRangeBuffer(...args: Arg[]): Result<RawRange | null, Context>;
    roomcastJoinInfoBuffer(...args: Arg[]): Result<[banned: number, ...range: RawRange] | null, Context>;
  }
}

/** Reads the records with afterSeq < seq < beforeSeq (either may be nil): the oldest `limit` with afterSeq, else the newest. */
const READ_RANGE_LUA = `
local function read_range(seq_key, hist_key, after, before, limit)
  local last = tonumber(redis.call('GET', seq_key)) or 0
  local first = last - redis.call('LLEN', hist_key) + 1
  local low = math.max(first, (after or 0) + 1)
  local high = math.min(last, (before or (last + 1)) - 1)
  if after then high = math.min(high, low + limit - 1) else low = math.max(low, high - limit + 1) end
  local records = {}
  if low <= high then records = redis.call('LRANGE', hist_key, low - first, high - first) end
  return {last, first, low, records}
end
`;

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
  // KEYS: meta, seq, hist, mute, ban, slow, rl, dedup.
  // ARGV: record, nowMs, uid, hasCid, hasChecks, moderated, ratePerSec, burst, target ('' = none),
  //       historyLimit, dedupTtlMs, dedupUntilMs, roomIdleTtlMs, tombstone content.
  roomcastAppend: {
    numberOfKeys: 8,
    lua: `
local meta, seq_key, hist, mutes, bans, slow, bucket, dedup = unpack(KEYS)
local record, now_arg, uid = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(now_arg)
local has_cid, has_checks, moderated = ARGV[4] == '1', ARGV[5] == '1', ARGV[6] == '1'
local rate, burst, target = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local history_limit, dedup_ttl, dedup_until = tonumber(ARGV[10]), ARGV[11], ARGV[12]
local idle_ttl, tombstone_content = tonumber(ARGV[13]), ARGV[14]

local function active_until(hash)
  local until_ms = tonumber(redis.call('HGET', hash, uid))
  return until_ms ~= nil and until_ms > now
end

if redis.call('EXISTS', meta) == 0 then return {'rejected', 'unknown_room'} end
if has_cid then
  local seen = redis.call('GET', dedup)
  if seen then
    local seen_seq, seen_until = string.match(seen, '^(%d+):(%d+)$')
    if tonumber(seen_until) > now then return {'duplicate', tonumber(seen_seq)} end
  end
end

-- Checks only read: a rejected send leaves every key as it was.
local slow_ms, tokens = 0, 0
if has_checks then
  if moderated then
    if active_until(bans) then return {'rejected', 'banned'} end
    if active_until(mutes) then return {'rejected', 'muted'} end
    slow_ms = tonumber(redis.call('HGET', meta, 'slowModeMs')) or 0
    if slow_ms > 0 and (tonumber(redis.call('GET', slow)) or 0) > now then return {'rejected', 'slow_mode'} end
  end
  local state = redis.call('HMGET', bucket, 'tokens', 'ts')
  tokens = burst
  if state[1] then
    tokens = math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate / 1000)
  end
  if tokens < 1 then return {'rejected', 'rate_limited'} end
end
if target and (target < 1 or target > (tonumber(redis.call('GET', seq_key)) or 0)) then
  return {'rejected', 'not_found'}
end

local seq = redis.call('INCR', seq_key)
redis.call('RPUSH', hist, record)
redis.call('LTRIM', hist, -history_limit, -1)
if target then
  local index = target - (seq - redis.call('LLEN', hist) + 1)
  if index >= 0 then
    local original = redis.call('LINDEX', hist, index)
    -- Skip the array's one-byte header; the answer is the 0-based offset where the content starts.
    local content_at = cmsgpack.unpack_one(original, 1)
    redis.call('LSET', hist, index, string.sub(original, 1, content_at) .. tombstone_content)
  end
end
if has_cid then redis.call('SET', dedup, string.format('%d:%s', seq, dedup_until), 'PX', dedup_ttl) end
if has_checks then
  local left = tokens - 1
  redis.call('HSET', bucket, 'tokens', left, 'ts', now_arg)
  if rate > 0 then redis.call('PEXPIRE', bucket, math.ceil((burst - left) * 1000 / rate)) end
  if slow_ms > 0 then redis.call('SET', slow, string.format('%d', now + slow_ms), 'PX', slow_ms) end
end
if idle_ttl > 0 then
  for _, key in ipairs({meta, seq_key, hist, mutes, bans}) do redis.call('PEXPIRE', key, idle_ttl) end
end
return {'appended', seq}`,
  },
  // KEYS: meta, seq, hist. ARGV: afterSeq ('' = none), beforeSeq ('' = none), limit.
  roomcastRange: {
    numberOfKeys: 3,
    lua: `${READ_RANGE_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return read_range(KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))`,
  },
  // KEYS: meta, seq, hist, ban. ARGV: uid, nowMs, recent.
  roomcastJoinInfo: {
    numberOfKeys: 4,
    lua: `${READ_RANGE_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local banned_until = tonumber(redis.call('HGET', KEYS[4], ARGV[1]))
local banned = (banned_until ~= nil and banned_until > tonumber(ARGV[2])) and 1 or 0
local range = read_range(KEYS[2], KEYS[3], nil, nil, tonumber(ARGV[3]))
table.insert(range, 1, banned)
return range`,
  },
} as const;

/** What a history record holds besides the seq, split so that a retraction can drop the content alone. */
type RecordHeader = Pick<RoomMessage, 'uid' | 'kind' | 'prio' | 'ts' | 'cid' | 'target'>;
type RecordContent = Pick<RoomMessage, 'text' | 'data' | 'deleted'>;

const TOMBSTONE_CONTENT = asBuffer(encodeRecord({ text: '', deleted: true } satisfies RecordContent));

export interface RedisRoomStoreOptions {
  /** The connection belongs to the caller, who also closes it. */
  redis: Redis;
  limits: RoomStoreLimits;
  /** Prefix of every key; `rc:` by default. */
  keyPrefix?: string;
}

export class RedisRoomStore implements RoomStore {
  private readonly redis: Redis;
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
    const [meta, lastSeq] = await execAll(this.redis.multi().hgetall(keys.meta).get(keys.seq));
    const fields = meta as Record<string, string>;
    if (fields.createdAtMs === undefined) return null;
    return {
      room,
      settings: { slowModeMs: Number(fields.slowModeMs ?? 0) },
      lastSeq: Number(lastSeq ?? 0),
      createdAtMs: Number(fields.createdAtMs),
    };
  }

  async updateSettings(room: RoomId, settings: Partial<RoomSettings>): Promise<boolean> {
    return (await this.redis.roomcastUpdateMeta(this.keys(room).meta, ...settingsFields(settings))) === 1;
  }

  async append(input: AppendInput): Promise<AppendResult> {
    const { room, uid, cid, checks, target, nowMs } = input;
    const keys = this.keys(room);
    const { header, content } = splitMessage(input);
    const { historyLimit, dedupTtlMs, roomIdleTtlMs } = this.limits;
    const reply = await this.redis.roomcastAppend(
      keys.meta, keys.seq, keys.hist, keys.mute, keys.ban,
      // Without a cid the dedup key is never read or written, but a script always takes the same keys.
      keys.slow(uid), keys.bucket(uid), keys.dedup(uid, cid ?? ''),
      asBuffer(encodeRecord([header, content])), nowMs, uid,
      flag(cid !== undefined), flag(checks !== undefined), flag(checks?.moderated === true),
      checks?.rateLimit.ratePerSec ?? 0, checks?.rateLimit.burst ?? 0, target ?? '',
      historyLimit, dedupTtlMs, nowMs + dedupTtlMs, roomIdleTtlMs, TOMBSTONE_CONTENT,
    );
    switch (reply[0]) {
      case 'appended': return { status: 'appended', message: { seq: reply[1], ...header, ...content } };
      case 'duplicate': return { status: 'duplicate', seq: reply[1] };
      case 'rejected': return { status: 'rejected', code: reply[1] };
    }
  }

  async range(room: RoomId, query: RangeQuery): Promise<RangeResult | null> {
    const keys = this.keys(room);
    const reply = await this.redis.roomcastRangeBuffer(keys.meta, keys.seq, keys.hist, query.afterSeq ?? '', query.beforeSeq ?? '', query.limit);
    if (!reply) return null;
    const [lastSeq, firstSeq, startSeq, records] = reply;
    return { msgs: decodeRecords(records, startSeq), lastSeq, firstSeq };
  }

  async joinInfo(room: RoomId, uid: Uid, recent: number, nowMs: number): Promise<JoinInfo | null> {
    const keys = this.keys(room);
    const reply = await this.redis.roomcastJoinInfoBuffer(keys.meta, keys.seq, keys.hist, keys.ban, uid, nowMs, recent);
    if (!reply) return null;
    const [banned, lastSeq, , startSeq, records] = reply;
    return { banned: banned === 1, lastSeq, recent: decodeRecords(records, startSeq) };
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

  private keys(room: RoomId): RoomKeys {
    const base = `${this.keyPrefix}room:{${room}}`;
    return {
      meta: `${base}:meta`,
      seq: `${base}:seq`,
      hist: `${base}:hist`,
      mute: `${base}:mute`,
      ban: `${base}:ban`,
      slow: (uid) => `${base}:slow:${uid}`,
      bucket: (uid) => `${base}:rl:${uid}`,
      dedup: (uid, cid) => `${base}:dedup:${uid.length}:${uid}:${cid}`,
    };
  }
}

interface RoomKeys {
  meta: string;
  seq: string;
  hist: string;
  mute: string;
  ban: string;
  slow(uid: Uid): string;
  bucket(uid: Uid): string;
  dedup(uid: Uid, cid: string): string;
}

function splitMessage(input: AppendInput): { header: RecordHeader; content: RecordContent } {
  return {
    header: {
      uid: input.uid, kind: input.kind, prio: input.prio ?? priorityOf(input.kind), ts: input.nowMs,
      ...(input.cid === undefined ? {} : { cid: input.cid }),
      ...(input.target === undefined ? {} : { target: input.target }),
    },
    content: { text: input.text, ...(input.data === undefined ? {} : { data: input.data }) },
  };
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


function flag(value: boolean): string {
  return value ? '1' : '0';
}

