/**
 * Group chat state on Redis. Every key of a group carries the hash tag `{group}`, so each script
 * touches one slot, on a single Redis and on Redis Cluster alike.
 *
 *   rc:group:{<g>}:meta                      HASH   owner, createdAtMs; the group exists iff this key does
 *   rc:group:{<g>}:members                   HASH   uid → "<role>:<joinSeq>"
 *   rc:group:{<g>}:cursor                    HASH   uid → the member's last acknowledged group seq
 *   rc:group:{<g>}:invites                   HASH   uid → "<atMs>:<role>:<by>": pending invites (not members)
 *   rc:group:{<g>}:seq                       STRING the group's newest seq
 *   rc:group:{<g>}:roster                    STRING a random token, replaced with every change of membership
 *                                                   (its version: equal tokens mean the same members); a group
 *                                                   made before tokens has none until its membership changes
 *   rc:group:{<g>}:log                       LIST   each message once: "<ts>:" and the msgpack record {from, text, cid};
 *                                                   element i has seq seq - LLEN + 1 + i
 *   rc:group:{<g>}:dedup:<len>:<uid>:<cid>   STRING "<seq> <untilMs>" (PX dedupTtlMs)
 *   rc:group:{<g>}:rl:<uid>                  HASH   tokens, ts: uid's send bucket in this group (PX until full again)
 *   rc:user:{<uid>}:groups                   SET    the groups uid is a member of (an index; members is the truth)
 *   rc:user:{<uid>}:ginvites                 ZSET   group → atMs: uid's pending invites (an index; invites is the truth)
 *
 * Scripts touch the keys of one group only; the per-user indexes follow in a second, idempotent step
 * (a retried invite, accept or add writes them again), and readers check the index against the
 * group's keys. Member lists are read with HSCAN in chunks, never in one reply. The sender's rate bucket
 * lives with the group it protects, so the send script stays in the group's slot: the group rate is
 * per sender and group. Commands that span users or groups are separate commands sent together
 * (auto-pipelined per node), never one pipeline or transaction across slots.
 */
import { randomUUID } from 'node:crypto';
import type { Result } from 'ioredis';
import type { RedisConnection } from './redis-client.js';
import { asBuffer, defineScripts, execAll, TRIM_LIST_LUA, DEFAULT_KEY_PREFIX, type RedisArg as Arg } from './redis-commands.js';
import { TOKEN_BUCKET_LUA } from './token-bucket.js';
import { decodeRecord, encodeRecord } from '../codec/codec.js';
import type { Seq, Uid } from '../protocol/frames.js';
import type { GroupId, GroupMessage, GroupRole } from '../protocol/chat-frames.js';
import {
  groupMessageId,
  type AcceptResult, type GroupInfo, type GroupInvite, type GroupMember, type GroupPage, type GroupSendInput, type GroupSendResult,
  type GroupStore, type GroupStoreLimits, type InviteResult, type RosterVersion,
} from './group-store.js';

/** Uids per command when a membership change touches the per-user index. */
const INDEX_CHUNK = 1000;


declare module 'ioredis' {
  interface RedisCommander<Context> {
    roomcastGroupCreate(...args: Arg[]): Result<'created' | 'exists' | 'too_many_members', Context>;
    roomcastGroupAdd(...args: Arg[]): Result<['ok' | 'unknown_group' | 'too_many_members', ...string[]], Context>;
    roomcastGroupPromote(...args: Arg[]): Result<string[] | null, Context>;
    roomcastGroupInvite(...args: Arg[]): Result<['ok', number, ...string[]] | ['unknown_group' | 'too_many_members'], Context>;
    roomcastGroupAccept(...args: Arg[]): Result<AcceptResult, Context>;
    roomcastGroupSend(...args: Arg[]): Result<[status: 'stored' | 'duplicate', seq: number, roster: string | null] | [status: 'rejected', code: 'unknown_group' | 'not_group_member' | 'rate_limited'], Context>;
    roomcastGroupRemove(...args: Arg[]): Result<0 | 1, Context>;
    roomcastGroupReadBuffer(...args: Arg[]): Result<[cursor: number, last: number, floor: number, low: number, records: Buffer[], join: number, lastTs: number] | null, Context>;
    roomcastGroupRecordBuffer(...args: Arg[]): Result<Buffer | null, Context>;
  }
}


const SCRIPTS = {
  // KEYS: meta, members, cursor, invites, roster. ARGV: owner, nowMs, maxMembers, memberCount, roster
  // token, members... (the owner first), invitees... (none of them members).
  roomcastGroupCreate: {
    numberOfKeys: 5,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
if #ARGV - 5 > tonumber(ARGV[3]) then return 'too_many_members' end
local last_member = 5 + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'createdAtMs', ARGV[2])
redis.call('SET', KEYS[5], ARGV[5])
for i = 6, last_member do
  redis.call('HSET', KEYS[2], ARGV[i], (ARGV[i] == ARGV[1] and 'owner' or 'member') .. ':0')
  redis.call('HSET', KEYS[3], ARGV[i], 0)
end
for i = last_member + 1, #ARGV do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[2] .. ':member:' .. ARGV[1])
end
return 'created'`,
  },
  // KEYS: meta, members, cursor, seq, invites, roster. ARGV: role, maxMembers, roster token, uids...
  // Answers the status and the uids it added; their invites are used up (an invited uid held its place
  // already).
  roomcastGroupAdd: {
    numberOfKeys: 6,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown_group'} end
local fresh, places = {}, 0
for i = 4, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    table.insert(fresh, ARGV[i])
    if redis.call('HEXISTS', KEYS[5], ARGV[i]) == 0 then places = places + 1 end
  end
end
if redis.call('HLEN', KEYS[2]) + redis.call('HLEN', KEYS[5]) + places > tonumber(ARGV[2]) then return {'too_many_members'} end
local join = redis.call('GET', KEYS[4]) or '0'
for _, uid in ipairs(fresh) do
  redis.call('HDEL', KEYS[5], uid)
  redis.call('HSET', KEYS[2], uid, ARGV[1] .. ':' .. join)
  redis.call('HSET', KEYS[3], uid, join)
end
if #fresh > 0 then redis.call('SET', KEYS[6], ARGV[3]) end
table.insert(fresh, 1, 'ok')
return fresh`,
  },
  // KEYS: meta, members. ARGV: uids... Members with role 'member' become admins (join seq kept); answers them.
  roomcastGroupPromote: {
    numberOfKeys: 2,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local promoted = {}
for i = 1, #ARGV do
  local entry = redis.call('HGET', KEYS[2], ARGV[i])
  local join = entry and string.match(entry, '^member:(%d+)$')
  if join then
    redis.call('HSET', KEYS[2], ARGV[i], 'admin:' .. join)
    table.insert(promoted, ARGV[i])
  end
end
return promoted`,
  },
  // KEYS: meta, members, invites. ARGV: role, by, nowMs, maxMembers, uids... Answers 'ok', the number of
  // fresh invites, the fresh uids, then the uids invited before (members are left out).
  roomcastGroupInvite: {
    numberOfKeys: 3,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown_group'} end
local fresh, earlier = {}, {}
for i = 5, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 0 then table.insert(fresh, ARGV[i]) else table.insert(earlier, ARGV[i]) end
  end
end
if redis.call('HLEN', KEYS[2]) + redis.call('HLEN', KEYS[3]) + #fresh > tonumber(ARGV[4]) then return {'too_many_members'} end
local entry = ARGV[3] .. ':' .. ARGV[1] .. ':' .. ARGV[2]
local answer = {'ok', #fresh}
for _, uid in ipairs(fresh) do
  redis.call('HSET', KEYS[3], uid, entry)
  table.insert(answer, uid)
end
for _, uid in ipairs(earlier) do table.insert(answer, uid) end
return answer`,
  },
  // KEYS: meta, members, cursor, seq, invites, roster. ARGV: uid, maxMembers, roster token.
  roomcastGroupAccept: {
    numberOfKeys: 6,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown_group' end
local uid = ARGV[1]
if redis.call('HEXISTS', KEYS[2], uid) == 1 then return 'member' end
local invite = redis.call('HGET', KEYS[5], uid)
if not invite then return 'not_invited' end
if redis.call('HLEN', KEYS[2]) + redis.call('HLEN', KEYS[5]) > tonumber(ARGV[2]) then return 'too_many_members' end
local role = string.match(invite, '^%d+:(%a+):')
local join = redis.call('GET', KEYS[4]) or '0'
redis.call('HDEL', KEYS[5], uid)
redis.call('HSET', KEYS[2], uid, role .. ':' .. join)
redis.call('HSET', KEYS[3], uid, join)
redis.call('SET', KEYS[6], ARGV[3])
return 'joined'`,
  },
  // KEYS: meta, members, cursor, invites, roster. ARGV: roster token, uids... Removes the uids as members
  // (with their cursors) and their invites; answers 0 for an unknown group.
  roomcastGroupRemove: {
    numberOfKeys: 5,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV do
  if redis.call('HDEL', KEYS[2], ARGV[i]) == 1 then redis.call('SET', KEYS[5], ARGV[1]) end
  redis.call('HDEL', KEYS[3], ARGV[i])
  redis.call('HDEL', KEYS[4], ARGV[i])
end
return 1`,
  },
  // KEYS: meta, members, dedup, bucket, seq, log, roster.
  // ARGV: from, nowMs, ratePerSec, burst, count, maxAgeMs, dedupTtlMs, content.
  // Answers the status, the seq and the roster token (nil for a group from before roster tokens).
  roomcastGroupSend: {
    numberOfKeys: 7,
    lua: `${TRIM_LIST_LUA}${TOKEN_BUCKET_LUA}
local meta, members, dedup, bucket, seq_key, log, roster = unpack(KEYS)
local from, now_arg = ARGV[1], ARGV[2]
local now, rate, burst = tonumber(now_arg), tonumber(ARGV[3]), tonumber(ARGV[4])
local count, cutoff, dedup_ttl, content = tonumber(ARGV[5]), now - tonumber(ARGV[6]), ARGV[7], ARGV[8]
if redis.call('EXISTS', meta) == 0 then return {'rejected', 'unknown_group'} end
if redis.call('HEXISTS', members, from) == 0 then return {'rejected', 'not_group_member'} end
local seen = redis.call('GET', dedup)
if seen then
  local seen_seq, seen_until = string.match(seen, '^(%d+) (%d+)$')
  if tonumber(seen_until) > now then return {'duplicate', tonumber(seen_seq), redis.call('GET', roster)} end
end
local tokens = bucket_tokens(bucket, now, rate, burst)
if tokens < 1 then return {'rejected', 'rate_limited'} end
local seq = redis.call('INCR', seq_key)
trim(log, count, cutoff, redis.call('RPUSH', log, now_arg .. ':' .. content))
redis.call('SET', dedup, seq .. ' ' .. string.format('%d', now + tonumber(dedup_ttl)), 'PX', dedup_ttl)
bucket_take(bucket, tokens, now_arg, rate, burst)
return {'stored', seq, redis.call('GET', roster)}`,
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
-- The newest record's time ("<ts>:" in front of it): when the group was last active.
local newest = redis.call('LINDEX', log, -1)
return {cursor, last, floor, low, records, join, newest and tonumber(string.match(newest, '^(%d+):')) or 0}`,
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
  redis: RedisConnection;
  limits: GroupStoreLimits;
  keyPrefix?: string;
}

interface StoredContent { from: Uid; text: string; cid: string }

export class RedisGroupStore implements GroupStore {
  private readonly redis: RedisConnection;
  private readonly limits: GroupStoreLimits;
  private readonly prefix: string;

  constructor(options: RedisGroupStoreOptions) {
    this.redis = options.redis;
    this.limits = options.limits;
    this.prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    defineScripts(this.redis, SCRIPTS);
  }

  async create(group: GroupId, owner: Uid, members: readonly Uid[], nowMs: number, invitees: readonly Uid[] = []): Promise<'created' | 'exists' | 'too_many_members'> {
    const all = [...new Set([owner, ...members])];
    const invited = [...new Set(invitees)].filter((uid) => !all.includes(uid));
    const status = await this.redis.roomcastGroupCreate(
      this.key(group, 'meta'), this.key(group, 'members'), this.key(group, 'cursor'), this.key(group, 'invites'), this.key(group, 'roster'),
      owner, nowMs, this.limits.maxMembers, all.length, randomUUID(), ...all, ...invited);
    if (status === 'created') {
      await this.index(group, all, 'member');
      await this.index(group, invited, 'invited', nowMs);
    }
    return status;
  }

  async info(group: GroupId): Promise<GroupInfo | null> {
    const [meta, seq, members, invited] = await execAll(this.redis.pipeline()
      .hgetall(this.key(group, 'meta')).get(this.key(group, 'seq')).hlen(this.key(group, 'members')).hlen(this.key(group, 'invites')));
    const fields = meta as Record<string, string>;
    if (!fields.owner) return null;
    return {
      group, owner: fields.owner, createdAtMs: Number(fields.createdAtMs), lastSeq: Number(seq ?? 0), members: members as number, invited: invited as number,
    };
  }

  async member(group: GroupId, uid: Uid): Promise<GroupMember | null> {
    const entry = await this.redis.hget(this.key(group, 'members'), uid);
    return entry === null ? null : parseMember(uid, entry);
  }

  async addMembers(group: GroupId, uids: readonly Uid[], role: 'admin' | 'member'): Promise<'ok' | 'unknown_group' | 'too_many_members'> {
    const [status, ...added] = await this.redis.roomcastGroupAdd(
      this.key(group, 'meta'), this.key(group, 'members'), this.key(group, 'cursor'), this.key(group, 'seq'), this.key(group, 'invites'),
      this.key(group, 'roster'), role, this.limits.maxMembers, randomUUID(), ...new Set(uids));
    if (status === 'ok') await this.index(group, added, 'member');
    return status;
  }

  async promote(group: GroupId, uids: readonly Uid[]): Promise<Uid[] | null> {
    if (uids.length === 0) return (await this.redis.exists(this.key(group, 'meta'))) ? [] : null;
    return this.redis.roomcastGroupPromote(this.key(group, 'meta'), this.key(group, 'members'), ...new Set(uids));
  }

  async invite(group: GroupId, uids: readonly Uid[], role: 'admin' | 'member', by: Uid, nowMs: number): Promise<InviteResult> {
    const reply = await this.redis.roomcastGroupInvite(
      this.key(group, 'meta'), this.key(group, 'members'), this.key(group, 'invites'), role, by, nowMs, this.limits.maxMembers, ...new Set(uids));
    if (reply[0] !== 'ok') return { status: reply[0] };
    const [, freshCount, ...pending] = reply;
    // Earlier invites are indexed again: a retry repairs an index step that a crash cut short.
    await this.index(group, pending, 'invited', nowMs);
    return { status: 'ok', pending, fresh: pending.slice(0, freshCount) };
  }

  async accept(group: GroupId, uid: Uid): Promise<AcceptResult> {
    const status = await this.redis.roomcastGroupAccept(
      this.key(group, 'meta'), this.key(group, 'members'), this.key(group, 'cursor'), this.key(group, 'seq'), this.key(group, 'invites'),
      this.key(group, 'roster'), uid, this.limits.maxMembers, randomUUID());
    if (status === 'joined' || status === 'member') await this.index(group, [uid], 'member');
    return status;
  }

  async pendingInvite(group: GroupId, uid: Uid): Promise<GroupInvite | null> {
    const entry = await this.redis.hget(this.key(group, 'invites'), uid);
    return entry === null ? null : parseInvite(group, uid, entry);
  }

  async invites(group: GroupId, cursor: string | undefined, limit: number): Promise<{ invites: GroupInvite[]; cursor?: string }> {
    const page = await this.hashPage(this.key(group, 'invites'), cursor, limit);
    const invites = page.entries.map(([uid, entry]) => parseInvite(group, uid, entry));
    return page.cursor === undefined ? { invites } : { invites, cursor: page.cursor };
  }

  async invitesOf(uid: Uid, limit: number): Promise<GroupInvite[]> {
    const indexKey = this.userKey(uid, 'ginvites');
    const groups = await this.redis.zrange(indexKey, 0, limit - 1);
    if (groups.length === 0) return [];
    // One command per group (groups live in different slots), sent together.
    const entries = await Promise.all(groups.map((group) => this.redis.hget(this.key(group, 'invites'), uid)));
    const invites: GroupInvite[] = [];
    const stale: string[] = [];
    groups.forEach((group, i) => {
      const entry = entries[i];
      if (entry) invites.push(parseInvite(group, uid, entry));
      else stale.push(group);
    });
    // An index entry whose invite is gone (a crash between the two steps) is dropped on sight.
    if (stale.length > 0) await this.redis.zrem(indexKey, ...stale);
    return invites;
  }

  async removeMembers(group: GroupId, uids: readonly Uid[]): Promise<boolean> {
    const known = await this.redis.roomcastGroupRemove(
      this.key(group, 'meta'), this.key(group, 'members'), this.key(group, 'cursor'), this.key(group, 'invites'), this.key(group, 'roster'),
      randomUUID(), ...uids);
    if (known === 0) return false;
    await this.index(group, uids, 'gone');
    return true;
  }

  async members(group: GroupId, cursor: string | undefined, limit: number): Promise<{ members: GroupMember[]; cursor?: string }> {
    const page = await this.hashPage(this.key(group, 'members'), cursor, limit);
    const members = page.entries.map(([uid, entry]) => parseMember(uid, entry));
    return page.cursor === undefined ? { members } : { members, cursor: page.cursor };
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
      this.key(group, `rl:${from}`), this.key(group, 'seq'), this.key(group, 'log'), this.key(group, 'roster'),
      from, nowMs, rate.ratePerSec, rate.burst, this.limits.count, this.limits.maxAgeMs, this.limits.dedupTtlMs,
      asBuffer(encodeRecord(content)),
    );
    if (reply[0] === 'rejected') return { status: 'rejected', code: reply[1] };
    const [status, seq, roster] = reply;
    if (status === 'stored') return { status, message: view(group, seq, { ...content, ts: nowMs }), roster };
    const raw = await this.redis.roomcastGroupRecordBuffer(this.key(group, 'seq'), this.key(group, 'log'), seq);
    return { status, message: view(group, seq, raw ? decodeGroupRecord(raw) : { ...content, ts: nowMs }), roster };
  }

  async roster(group: GroupId): Promise<RosterVersion | null> {
    return this.redis.get(this.key(group, 'roster'));
  }

  async sync(group: GroupId, uid: Uid, after: Seq | undefined, limit: number, nowMs: number): Promise<GroupPage | null> {
    return this.read(group, uid, after, limit, 'sync', nowMs);
  }

  async ack(group: GroupId, uid: Uid, seq: Seq, nowMs: number): Promise<Seq | null> {
    return (await this.read(group, uid, seq, 0, 'ack', nowMs))?.cursor ?? null;
  }

  async groupsOf(uid: Uid): Promise<GroupId[]> {
    return (await this.redis.smembers(this.userKey(uid, 'groups'))).sort();
  }

  async close(): Promise<void> {}

  private async read(group: GroupId, uid: Uid, after: Seq | undefined, limit: number, mode: 'sync' | 'ack', nowMs: number): Promise<GroupPage | null> {
    const reply = await this.redis.roomcastGroupReadBuffer(
      this.key(group, 'members'), this.key(group, 'cursor'), this.key(group, 'seq'), this.key(group, 'log'),
      uid, after ?? '', limit, mode, nowMs, this.limits.maxAgeMs,
    );
    if (!reply) return null;
    const [cursor, lastSeq, firstSeq, low, records, joinSeq, lastTs] = reply;
    const cutoff = nowMs - this.limits.maxAgeMs;
    const msgs: GroupMessage[] = [];
    records.forEach((raw, i) => {
      const record = decodeGroupRecord(raw);
      if (record.ts >= cutoff) msgs.push(view(group, low + i, record));
    });
    return { msgs, cursor, lastSeq, firstSeq, joinSeq, lastTs };
  }

  /**
   * At most `limit` fields of a hash, continuing `cursor` ("<HSCAN cursor>:<fields of that batch
   * already given>"). HSCAN's COUNT is only a hint (a small hash comes back whole in one batch), so a
   * batch is cut at `limit` and the rest of it is given from the same HSCAN cursor next time.
   */
  private async hashPage(key: string, cursor: string | undefined, limit: number): Promise<{ entries: Array<[string, string]>; cursor?: string }> {
    const [startScan, startSkip] = parseHashCursor(cursor);
    let scan = startScan;
    let skip = startSkip;
    const entries: Array<[string, string]> = [];
    for (;;) {
      const [next, flat] = await this.redis.hscan(key, scan, 'COUNT', limit);
      const batch = flat.length / 2;
      const take = Math.max(0, Math.min(batch - skip, limit - entries.length));
      for (let i = skip; i < skip + take; i++) entries.push([flat[2 * i]!, flat[2 * i + 1]!]);
      if (skip + take < batch) return { entries, cursor: `${scan}:${skip + take}` };
      if (next === '0') return { entries };
      if (entries.length >= limit) return { entries, cursor: `${next}:0` };
      scan = next;
      skip = 0;
    }
  }

  /**
   * Keeps the per-user indexes (groups, pending invites) in step with what `uids` now are in the
   * group, in chunks of pipelined commands; every command is idempotent.
   */
  private async index(group: GroupId, uids: readonly Uid[], state: 'member' | 'invited' | 'gone', invitedAtMs = 0): Promise<void> {
    for (let i = 0; i < uids.length; i += INDEX_CHUNK) {
      // Each uid's keys are in its own slot: separate commands, sent together (auto-pipelined per node).
      await Promise.all(uids.slice(i, i + INDEX_CHUNK).flatMap((uid) => {
        const groups = this.userKey(uid, 'groups');
        const invites = this.userKey(uid, 'ginvites');
        if (state === 'member') return [this.redis.sadd(groups, group), this.redis.zrem(invites, group)];
        if (state === 'invited') return [this.redis.zadd(invites, 'NX', invitedAtMs, group)];
        return [this.redis.srem(groups, group), this.redis.zrem(invites, group)];
      }));
    }
  }

  private key(group: GroupId, name: string): string {
    return `${this.prefix}group:{${group}}:${name}`;
  }

  private userKey(uid: Uid, name: string): string {
    return `${this.prefix}user:{${uid}}:${name}`;
  }
}

function parseMember(uid: Uid, entry: string): GroupMember {
  const colon = entry.lastIndexOf(':');
  return { uid, role: entry.slice(0, colon) as GroupRole, joinSeq: Number(entry.slice(colon + 1)) };
}

/** An invite entry: "<atMs>:<role>:<by>" (`by` may hold colons, role and time do not). */
function parseInvite(group: GroupId, uid: Uid, entry: string): GroupInvite {
  const first = entry.indexOf(':');
  const second = entry.indexOf(':', first + 1);
  return { group, uid, atMs: Number(entry.slice(0, first)), role: entry.slice(first + 1, second) as GroupInvite['role'], by: entry.slice(second + 1) };
}

function decodeGroupRecord(raw: Buffer): StoredContent & { ts: number } {
  const colon = raw.indexOf(0x3a);
  return { ...(decodeRecord(raw.subarray(colon + 1)) as StoredContent), ts: Number(raw.subarray(0, colon).toString('latin1')) };
}

function view(group: GroupId, seq: Seq, record: StoredContent & { ts: number }): GroupMessage {
  return { seq, mid: groupMessageId(group, seq), group, from: record.from, text: record.text, ts: record.ts, cid: record.cid };
}



function parseHashCursor(cursor: string | undefined): [scan: string, skip: number] {
  const match = cursor === undefined ? null : /^(\d+):(\d+)$/.exec(cursor);
  return match ? [match[1]!, Number(match[2])] : ['0', 0];
}
