/**
 * Group chat state on Redis. Every key of a group carries the hash tag `{group}`, so each script
 * touches one slot (the sender's rate bucket excepted, see below).
 *
 *   rc:group:{<g>}:meta                      HASH   owner, createdAtMs; the group exists iff this key does
 *   rc:group:{<g>}:members                   HASH   uid → "<role>:<joinSeq>"
 *   rc:group:{<g>}:cursor                    HASH   uid → the member's last acknowledged group seq
 *   rc:group:{<g>}:seq                       STRING the group's newest seq
 *   rc:group:{<g>}:log                       LIST   each message once: "<ts>:" and the msgpack record {from, text, cid};
 *                                                   element i has seq seq - LLEN + 1 + i
 *   rc:group:{<g>}:dedup:<len>:<uid>:<cid>   STRING "<seq> <untilMs>" (PX dedupTtlMs)
 *   rc:user:{<uid>}:groups                   SET    the groups uid is a member of (an index; members is the truth)
 *   rc:user:{<uid>}:grl                      HASH   tokens, ts: the uid's group send bucket
 *
 * Member lists are read with HSCAN in chunks, never in one reply. The send script also updates the
 * sender's bucket, a key of another slot: on Redis Cluster that bucket would move into the group's
 * slot (not done: this store targets one Redis primary).
 */
import type { Redis, Result } from 'ioredis';
import { asBuffer, defineScripts, execAll, TRIM_LIST_LUA, DEFAULT_KEY_PREFIX, type RedisArg as Arg } from './redis-commands.js';
import { decodeRecord, encodeRecord } from '../codec/codec.js';
import type { Seq, Uid } from '../protocol/frames.js';
import type { GroupId, GroupMessage, GroupRole } from '../protocol/chat-frames.js';
import {
  groupMessageId,
  type GroupInfo, type GroupMember, type GroupPage, type GroupSendInput, type GroupSendResult, type GroupStore, type GroupStoreLimits,
} from './group-store.js';

/** Uids per command when a membership change touches the per-user index. */
const INDEX_CHUNK = 1000;


declare module 'ioredis' {
  interface RedisCommander<Context> {
    roomcastGroupCreate(...args: Arg[]): Result<'created' | 'exists' | 'too_many_members', Context>;
    roomcastGroupAdd(...args: Arg[]): Result<['ok' | 'unknown_group' | 'too_many_members', ...string[]], Context>;
    roomcastGroupSend(...args: Arg[]): Result<[status: 'stored' | 'duplicate', seq: number] | [status: 'rejected', code: 'unknown_group' | 'not_group_member' | 'rate_limited'], Context>;
    roomcastGroupReadBuffer(...args: Arg[]): Result<[cursor: number, last: number, floor: number, low: number, records: Buffer[], join: number] | null, Context>;
    roomcastGroupRecordBuffer(...args: Arg[]): Result<Buffer | null, Context>;
  }
}


const SCRIPTS = {
  // KEYS: meta, members, cursor. ARGV: owner, nowMs, maxMembers, members... (the owner first).
  roomcastGroupCreate: {
    numberOfKeys: 3,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
if #ARGV - 3 > tonumber(ARGV[3]) then return 'too_many_members' end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'createdAtMs', ARGV[2])
for i = 4, #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], (ARGV[i] == ARGV[1] and 'owner' or 'member') .. ':0')
  redis.call('HSET', KEYS[3], ARGV[i], 0)
end
return 'created'`,
  },
  // KEYS: meta, members, cursor, seq. ARGV: role, maxMembers, uids... Answers the status and the uids it added.
  roomcastGroupAdd: {
    numberOfKeys: 4,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown_group'} end
local fresh = {}
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then table.insert(fresh, ARGV[i]) end
end
if redis.call('HLEN', KEYS[2]) + #fresh > tonumber(ARGV[2]) then return {'too_many_members'} end
local join = redis.call('GET', KEYS[4]) or '0'
for _, uid in ipairs(fresh) do
  redis.call('HSET', KEYS[2], uid, ARGV[1] .. ':' .. join)
  redis.call('HSET', KEYS[3], uid, join)
end
table.insert(fresh, 1, 'ok')
return fresh`,
  },
  // KEYS: meta, members, dedup, bucket, seq, log.
  // ARGV: from, nowMs, ratePerSec, burst, count, maxAgeMs, dedupTtlMs, content.
  roomcastGroupSend: {
    numberOfKeys: 6,
    lua: `${TRIM_LIST_LUA}
local meta, members, dedup, bucket, seq_key, log = unpack(KEYS)
local from, now_arg = ARGV[1], ARGV[2]
local now, rate, burst = tonumber(now_arg), tonumber(ARGV[3]), tonumber(ARGV[4])
local count, cutoff, dedup_ttl, content = tonumber(ARGV[5]), now - tonumber(ARGV[6]), ARGV[7], ARGV[8]
if redis.call('EXISTS', meta) == 0 then return {'rejected', 'unknown_group'} end
if redis.call('HEXISTS', members, from) == 0 then return {'rejected', 'not_group_member'} end
local seen = redis.call('GET', dedup)
if seen then
  local seen_seq, seen_until = string.match(seen, '^(%d+) (%d+)$')
  if tonumber(seen_until) > now then return {'duplicate', tonumber(seen_seq)} end
end
local state = redis.call('HMGET', bucket, 'tokens', 'ts')
local tokens = burst
if state[1] then tokens = math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate / 1000) end
if tokens < 1 then return {'rejected', 'rate_limited'} end
local seq = redis.call('INCR', seq_key)
redis.call('RPUSH', log, now_arg .. ':' .. content)
trim(log, count, cutoff)
redis.call('SET', dedup, seq .. ' ' .. string.format('%d', now + tonumber(dedup_ttl)), 'PX', dedup_ttl)
local left = tokens - 1
redis.call('HSET', bucket, 'tokens', left, 'ts', now_arg)
if rate > 0 then redis.call('PEXPIRE', bucket, math.ceil((burst - left) * 1000 / rate)) end
return {'stored', seq}`,
  },
  // KEYS: members, cursor, seq, log. ARGV: uid, after ('' = the cursor), limit, mode (sync | ack), nowMs, maxAgeMs.
  roomcastGroupRead: {
    numberOfKeys: 4,
    lua: `${TRIM_LIST_LUA}
local members, cursors, seq_key, log = unpack(KEYS)
local uid, after, limit, mode = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local entry = redis.call('HGET', members, uid)
if not entry then return false end
local join = tonumber(string.match(entry, ':(%d+)$'))
trim(log, nil, tonumber(ARGV[5]) - tonumber(ARGV[6]))
local last = tonumber(redis.call('GET', seq_key)) or 0
local first = last - redis.call('LLEN', log) + 1
local cursor = tonumber(redis.call('HGET', cursors, uid)) or join
if after then
  local moved = math.max(cursor, math.min(after, last))
  if moved ~= cursor then
    redis.call('HSET', cursors, uid, moved)
    cursor = moved
  end
end
local floor = math.max(first, join + 1)
local low = math.max((after or cursor) + 1, floor)
local high = math.min(last, low + limit - 1)
local records = {}
if mode ~= 'ack' and low <= high then records = redis.call('LRANGE', log, low - first, high - first) end
return {cursor, last, floor, low, records, join}`,
  },
  // KEYS: seq, log. ARGV: seq.
  roomcastGroupRecord: {
    numberOfKeys: 2,
    lua: `
local last = tonumber(redis.call('GET', KEYS[1])) or 0
local first = last - redis.call('LLEN', KEYS[2]) + 1
local seq = tonumber(ARGV[1])
if seq < first or seq > last then return false end
return redis.call('LINDEX', KEYS[2], seq - first)`,
  },
} as const;

export interface RedisGroupStoreOptions {
  redis: Redis;
  limits: GroupStoreLimits;
  keyPrefix?: string;
}

interface StoredContent { from: Uid; text: string; cid: string }

export class RedisGroupStore implements GroupStore {
  private readonly redis: Redis;
  private readonly limits: GroupStoreLimits;
  private readonly prefix: string;

  constructor(options: RedisGroupStoreOptions) {
    this.redis = options.redis;
    this.limits = options.limits;
    this.prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    defineScripts(this.redis, SCRIPTS);
  }

  async create(group: GroupId, owner: Uid, members: readonly Uid[], nowMs: number): Promise<'created' | 'exists' | 'too_many_members'> {
    const all = [...new Set([owner, ...members])];
    const status = await this.redis.roomcastGroupCreate(this.key(group, 'meta'), this.key(group, 'members'), this.key(group, 'cursor'), owner, nowMs, this.limits.maxMembers, ...all);
    if (status === 'created') await this.index(group, all, true);
    return status;
  }

  async info(group: GroupId): Promise<GroupInfo | null> {
    const [meta, seq, members] = await execAll(this.redis.pipeline()
      .hgetall(this.key(group, 'meta')).get(this.key(group, 'seq')).hlen(this.key(group, 'members')));
    const fields = meta as Record<string, string>;
    if (!fields.owner) return null;
    return { group, owner: fields.owner, createdAtMs: Number(fields.createdAtMs), lastSeq: Number(seq ?? 0), members: members as number };
  }

  async member(group: GroupId, uid: Uid): Promise<GroupMember | null> {
    const entry = await this.redis.hget(this.key(group, 'members'), uid);
    return entry === null ? null : parseMember(uid, entry);
  }

  async addMembers(group: GroupId, uids: readonly Uid[], role: 'admin' | 'member'): Promise<'ok' | 'unknown_group' | 'too_many_members'> {
    const [status, ...added] = await this.redis.roomcastGroupAdd(
      this.key(group, 'meta'), this.key(group, 'members'), this.key(group, 'cursor'), this.key(group, 'seq'), role, this.limits.maxMembers, ...new Set(uids));
    if (status === 'ok') await this.index(group, added, true);
    return status;
  }

  async removeMembers(group: GroupId, uids: readonly Uid[]): Promise<boolean> {
    if (!(await this.redis.exists(this.key(group, 'meta')))) return false;
    if (uids.length === 0) return true;
    await execAll(this.redis.pipeline().hdel(this.key(group, 'members'), ...uids).hdel(this.key(group, 'cursor'), ...uids));
    await this.index(group, uids, false);
    return true;
  }

  async members(group: GroupId, cursor: string | undefined, limit: number): Promise<{ members: GroupMember[]; cursor?: string }> {
    const [next, flat] = await this.redis.hscan(this.key(group, 'members'), cursor ?? '0', 'COUNT', limit);
    const members: GroupMember[] = [];
    for (let i = 0; i < flat.length; i += 2) members.push(parseMember(flat[i]!, flat[i + 1]!));
    return next === '0' ? { members } : { members, cursor: next };
  }

  async *memberUids(group: GroupId, chunk: number): AsyncIterable<Uid[]> {
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.key(group, 'members'), cursor, 'COUNT', chunk);
      const uids: Uid[] = [];
      for (let i = 0; i < flat.length; i += 2) uids.push(flat[i]!);
      if (uids.length > 0) yield uids;
      cursor = next;
    } while (cursor !== '0');
  }

  async send(input: GroupSendInput): Promise<GroupSendResult> {
    const { group, from, cid, text, nowMs, rate } = input;
    const content: StoredContent = { from, text, cid };
    const reply = await this.redis.roomcastGroupSend(
      this.key(group, 'meta'), this.key(group, 'members'), this.key(group, `dedup:${from.length}:${from}:${cid}`),
      `${this.prefix}user:{${from}}:grl`, this.key(group, 'seq'), this.key(group, 'log'),
      from, nowMs, rate.ratePerSec, rate.burst, this.limits.count, this.limits.maxAgeMs, this.limits.dedupTtlMs,
      asBuffer(encodeRecord(content)),
    );
    if (reply[0] === 'rejected') return { status: 'rejected', code: reply[1] };
    const seq = reply[1];
    if (reply[0] === 'stored') return { status: 'stored', message: view(group, seq, { ...content, ts: nowMs }) };
    const raw = await this.redis.roomcastGroupRecordBuffer(this.key(group, 'seq'), this.key(group, 'log'), seq);
    return { status: 'duplicate', message: view(group, seq, raw ? decodeGroupRecord(raw) : { ...content, ts: nowMs }) };
  }

  async sync(group: GroupId, uid: Uid, after: Seq | undefined, limit: number, nowMs: number): Promise<GroupPage | null> {
    return this.read(group, uid, after, limit, 'sync', nowMs);
  }

  async ack(group: GroupId, uid: Uid, seq: Seq, nowMs: number): Promise<Seq | null> {
    return (await this.read(group, uid, seq, 0, 'ack', nowMs))?.cursor ?? null;
  }

  async groupsOf(uid: Uid): Promise<GroupId[]> {
    return (await this.redis.smembers(`${this.prefix}user:{${uid}}:groups`)).sort();
  }

  async close(): Promise<void> {}

  private async read(group: GroupId, uid: Uid, after: Seq | undefined, limit: number, mode: 'sync' | 'ack', nowMs: number): Promise<GroupPage | null> {
    const reply = await this.redis.roomcastGroupReadBuffer(
      this.key(group, 'members'), this.key(group, 'cursor'), this.key(group, 'seq'), this.key(group, 'log'),
      uid, after ?? '', limit, mode, nowMs, this.limits.maxAgeMs,
    );
    if (!reply) return null;
    const [cursor, lastSeq, firstSeq, low, records, joinSeq] = reply;
    const cutoff = nowMs - this.limits.maxAgeMs;
    const msgs: GroupMessage[] = [];
    records.forEach((raw, i) => {
      const record = decodeGroupRecord(raw);
      if (record.ts >= cutoff) msgs.push(view(group, low + i, record));
    });
    return { msgs, cursor, lastSeq, firstSeq, joinSeq };
  }

  /** Keeps the per-user index of groups in step, in chunks of pipelined commands. */
  private async index(group: GroupId, uids: readonly Uid[], add: boolean): Promise<void> {
    for (let i = 0; i < uids.length; i += INDEX_CHUNK) {
      const pipeline = this.redis.pipeline();
      for (const uid of uids.slice(i, i + INDEX_CHUNK)) {
        const key = `${this.prefix}user:{${uid}}:groups`;
        if (add) pipeline.sadd(key, group);
        else pipeline.srem(key, group);
      }
      await execAll(pipeline);
    }
  }

  private key(group: GroupId, name: string): string {
    return `${this.prefix}group:{${group}}:${name}`;
  }
}

function parseMember(uid: Uid, entry: string): GroupMember {
  const colon = entry.lastIndexOf(':');
  return { uid, role: entry.slice(0, colon) as GroupRole, joinSeq: Number(entry.slice(colon + 1)) };
}

function decodeGroupRecord(raw: Buffer): StoredContent & { ts: number } {
  const colon = raw.indexOf(0x3a);
  return { ...(decodeRecord(raw.subarray(colon + 1)) as StoredContent), ts: Number(raw.subarray(0, colon).toString('latin1')) };
}

function view(group: GroupId, seq: Seq, record: StoredContent & { ts: number }): GroupMessage {
  return { seq, mid: groupMessageId(group, seq), group, from: record.from, text: record.text, ts: record.ts, cid: record.cid };
}


