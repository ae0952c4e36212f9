/**
 * Private chat state on Redis. Lua scripts make each send and each inbox read atomic.
 *
 * Key layout (`rc:` is the default prefix; `{uid}` and `{conv}` are hash tags):
 *
 *   rc:user:{<uid>}:iseq            STRING the user's newest inbox seq (INCR)
 *   rc:user:{<uid>}:inbox           LIST   references "<ts>:<cseq>:<conv>", oldest first; element i has
 *                                          inbox seq iseq - LLEN + 1 + i (gap-free; trimming drops the head)
 *   rc:user:{<uid>}:cursor          HASH   device type → the last inbox seq that device acknowledged
 *   rc:user:{<uid>}:read            HASH   conv → the user's read cursor (a cseq)
 *   rc:user:{<uid>}:convs           ZSET   conv → time of its newest message (the conversation list)
 *   rc:user:{<uid>}:block           SET    uids whose private messages the user refuses
 *   rc:user:{<uid>}:crl             HASH   tokens, ts: the user's private / group send bucket
 *   rc:user:{<uid>}:pdedup:<cid>    STRING "<cseq> <untilMs> <conv>": a client message id already stored (PX dedupTtlMs)
 *   rc:conv:{<conv>}:seq            STRING the conversation's newest cseq
 *   rc:conv:{<conv>}:log            LIST   each message once: "<ts>:<senderSeq>:<recipientSeq>:" followed by
 *                                          the msgpack record {from, to, text, cid}; element i has cseq seq - LLEN + 1 + i
 *
 * Retention: every append trims inboxes and logs to `count` entries and drops entries older than
 * `maxAgeMs` from their head; reads trim the user's inbox by age too and skip records older than it.
 *
 * The send script touches the keys of both users and of the conversation in one step; on Redis
 * Cluster those keys would need one shared hash tag (not done: this store targets one Redis primary).
 */
import type { Redis, Result } from 'ioredis';
import { asBuffer, defineScripts, execAll, TRIM_LIST_LUA, DEFAULT_KEY_PREFIX, type RedisArg as Arg } from './redis-commands.js';
import { decodeRecord, encodeRecord } from '../codec/codec.js';
import type { Seq, Uid } from '../protocol/frames.js';
import type { PrivateMessage } from '../protocol/chat-frames.js';
import {
  conversationOf, peerOf,
  type ChatRetention, type ConversationId, type ConversationInfo, type InboxPage, type InboxStore,
  type PrivateSendInput, type PrivateSendResult, privateMessageFor, privateMessageViews, type StoredPrivateMessage,
} from './inbox-store.js';



declare module 'ioredis' {
  interface RedisCommander<Context> {
    roomcastPrivateSend(...args: Arg[]): Result<[status: 'stored', cseq: number, fseq: number, rseq: number] | [status: 'duplicate', seen: string] | [status: 'rejected', code: 'blocked' | 'rate_limited'], Context>;
    roomcastInboxRead(...args: Arg[]): Result<[cursor: number, last: number, first: number, refs: string[]], Context>;
    roomcastLogRecordBuffer(...args: Arg[]): Result<Buffer | null, Context>;
    roomcastLogRangeBuffer(...args: Arg[]): Result<[last: number, first: number, low: number, records: Buffer[]], Context>;
    roomcastMaxField(...args: Arg[]): Result<number, Context>;
  }
}


const SCRIPTS = {
  // KEYS: dedup, recipient block, sender bucket, sender iseq, sender inbox, recipient iseq, recipient inbox,
  //       conv seq, conv log, sender convs, recipient convs, sender read.
  // ARGV: nowMs, from, content, ratePerSec, burst, count, maxAgeMs, dedupTtlMs, conv.
  roomcastPrivateSend: {
    numberOfKeys: 12,
    lua: `${TRIM_LIST_LUA}
local dedup, block, bucket, s_seq, s_inbox, r_seq, r_inbox, c_seq, c_log, s_convs, r_convs, s_read = unpack(KEYS)
local now_arg, from, content = ARGV[1], ARGV[2], ARGV[3]
local now, rate, burst = tonumber(now_arg), tonumber(ARGV[4]), tonumber(ARGV[5])
local count, cutoff, dedup_ttl, conv = tonumber(ARGV[6]), tonumber(now_arg) - tonumber(ARGV[7]), ARGV[8], ARGV[9]

local seen = redis.call('GET', dedup)
if seen then
  local seen_until = tonumber(string.match(seen, '^%d+ (%d+) '))
  if seen_until > now then return {'duplicate', seen} end
end
if redis.call('SISMEMBER', block, from) == 1 then return {'rejected', 'blocked'} end
local state = redis.call('HMGET', bucket, 'tokens', 'ts')
local tokens = burst
if state[1] then tokens = math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate / 1000) end
if tokens < 1 then return {'rejected', 'rate_limited'} end

local cseq = redis.call('INCR', c_seq)
local ref = now_arg .. ':' .. cseq .. ':' .. conv
local fseq = redis.call('INCR', s_seq)
redis.call('RPUSH', s_inbox, ref)
trim(s_inbox, count, cutoff)
local rseq = redis.call('INCR', r_seq)
redis.call('RPUSH', r_inbox, ref)
trim(r_inbox, count, cutoff)
redis.call('RPUSH', c_log, now_arg .. ':' .. fseq .. ':' .. rseq .. ':' .. content)
trim(c_log, count, cutoff)
redis.call('SET', dedup, cseq .. ' ' .. string.format('%d', now + tonumber(dedup_ttl)) .. ' ' .. conv, 'PX', dedup_ttl)
for _, convs in ipairs({s_convs, r_convs}) do
  redis.call('ZADD', convs, now, conv)
  redis.call('ZREMRANGEBYRANK', convs, 0, -count - 1)
end
-- Sending implies having read the conversation so far.
redis.call('HSET', s_read, conv, cseq)
local left = tokens - 1
redis.call('HSET', bucket, 'tokens', left, 'ts', now_arg)
if rate > 0 then redis.call('PEXPIRE', bucket, math.ceil((burst - left) * 1000 / rate)) end
return {'stored', cseq, fseq, rseq}`,
  },
  // KEYS: iseq, inbox, cursor. ARGV: device, after ('' = the cursor), limit, mode (sync | latest | ack), nowMs, maxAgeMs.
  roomcastInboxRead: {
    numberOfKeys: 3,
    lua: `${TRIM_LIST_LUA}
local iseq, inbox, cursors = unpack(KEYS)
local device, after, limit, mode = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
trim(inbox, nil, tonumber(ARGV[5]) - tonumber(ARGV[6]))
local last = tonumber(redis.call('GET', iseq)) or 0
local first = last - redis.call('LLEN', inbox) + 1
local cursor = tonumber(redis.call('HGET', cursors, device)) or 0
if after then
  local moved = math.max(cursor, math.min(after, last))
  if moved ~= cursor then
    redis.call('HSET', cursors, device, moved)
    cursor = moved
  end
end
local low, high
if mode == 'ack' then
  low, high = 1, 0
elseif mode == 'latest' then
  high = last
  low = math.max(cursor + 1, first, high - limit + 1)
else
  low = math.max((after or cursor) + 1, first)
  high = math.min(last, low + limit - 1)
end
local refs = {}
if low <= high then refs = redis.call('LRANGE', inbox, low - first, high - first) end
return {cursor, last, first, refs}`,
  },
  // KEYS: log seq, log. ARGV: seq. The record with that seq, or nil once trimmed.
  roomcastLogRecord: {
    numberOfKeys: 2,
    lua: `
local last = tonumber(redis.call('GET', KEYS[1])) or 0
local first = last - redis.call('LLEN', KEYS[2]) + 1
local seq = tonumber(ARGV[1])
if seq < first or seq > last then return false end
return redis.call('LINDEX', KEYS[2], seq - first)`,
  },
  // KEYS: log seq, log. ARGV: beforeSeq ('' = none), limit. The newest `limit` records before beforeSeq.
  roomcastLogRange: {
    numberOfKeys: 2,
    lua: `
local last = tonumber(redis.call('GET', KEYS[1])) or 0
local first = last - redis.call('LLEN', KEYS[2]) + 1
local high = math.min(last, (tonumber(ARGV[1]) or (last + 1)) - 1)
local low = math.max(first, high - tonumber(ARGV[2]) + 1)
local records = {}
if low <= high then records = redis.call('LRANGE', KEYS[2], low - first, high - first) end
return {last, first, low, records}`,
  },
  // KEYS: hash. ARGV: field, value. Sets the field to max(current, value) and answers it.
  roomcastMaxField: {
    numberOfKeys: 1,
    lua: `
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 0
local value = tonumber(ARGV[2])
if value > current then
  redis.call('HSET', KEYS[1], ARGV[1], value)
  return value
end
return current`,
  },
} as const;

export interface RedisInboxStoreOptions {
  /** The connection belongs to the caller, who also closes it. */
  redis: Redis;
  retention: ChatRetention;
  keyPrefix?: string;
}

interface StoredContent { from: Uid; to: Uid; text: string; cid: string }

export class RedisInboxStore implements InboxStore {
  private readonly redis: Redis;
  private readonly retention: ChatRetention;
  private readonly prefix: string;

  constructor(options: RedisInboxStoreOptions) {
    this.redis = options.redis;
    this.retention = options.retention;
    this.prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    defineScripts(this.redis, SCRIPTS);
  }

  async send(input: PrivateSendInput): Promise<PrivateSendResult> {
    const { from, to, cid, text, nowMs, rate } = input;
    const conv = conversationOf(from, to);
    const content: StoredContent = { from, to, text, cid };
    const reply = await this.redis.roomcastPrivateSend(
      this.userKey(from, `pdedup:${cid}`), this.userKey(to, 'block'), this.userKey(from, 'crl'),
      this.userKey(from, 'iseq'), this.userKey(from, 'inbox'), this.userKey(to, 'iseq'), this.userKey(to, 'inbox'),
      this.convKey(conv, 'seq'), this.convKey(conv, 'log'), this.userKey(from, 'convs'), this.userKey(to, 'convs'), this.userKey(from, 'read'),
      nowMs, from, asBuffer(encodeRecord(content)), rate.ratePerSec, rate.burst,
      this.retention.count, this.retention.maxAgeMs, this.retention.dedupTtlMs, conv,
    );
    if (reply[0] === 'rejected') return { status: 'rejected', code: reply[1] };
    if (reply[0] === 'stored') {
      const [, cseq, fseq, rseq] = reply;
      return { status: 'stored', ...privateMessageViews(conv, cseq, { ...content, ts: nowMs, fseq, rseq }) };
    }
    const [cseqText, , seenConv] = reply[1].split(' ') as [string, string, ConversationId];
    const cseq = Number(cseqText);
    const raw = await this.redis.roomcastLogRecordBuffer(this.convKey(seenConv, 'seq'), this.convKey(seenConv, 'log'), cseq);
    // Trimmed since: the ids are all a retrying sender needs.
    const record = raw ? decodeLogRecord(raw) : { ...content, ts: nowMs, fseq: 0, rseq: 0 };
    return { status: 'duplicate', ...privateMessageViews(seenConv, cseq, record) };
  }

  sync(uid: Uid, device: string, after: Seq | undefined, limit: number, nowMs: number): Promise<InboxPage> {
    return this.read(uid, device, after, limit, 'sync', nowMs);
  }

  latest(uid: Uid, device: string, limit: number, nowMs: number): Promise<InboxPage> {
    return this.read(uid, device, undefined, limit, 'latest', nowMs);
  }

  async ack(uid: Uid, device: string, seq: Seq, nowMs: number): Promise<Seq> {
    return (await this.read(uid, device, seq, 0, 'ack', nowMs)).cursor;
  }

  async markRead(uid: Uid, peer: Uid, cseq: Seq): Promise<Seq> {
    const conv = conversationOf(uid, peer);
    const last = Number(await this.redis.get(this.convKey(conv, 'seq')) ?? 0);
    if (last === 0) return 0;
    return this.redis.roomcastMaxField(this.userKey(uid, 'read'), conv, Math.min(cseq, last));
  }

  async history(uid: Uid, peer: Uid, beforeSeq: Seq | undefined, limit: number, nowMs: number): Promise<{ msgs: PrivateMessage[]; more: boolean }> {
    const conv = conversationOf(uid, peer);
    const [, first, low, records] = await this.redis.roomcastLogRangeBuffer(this.convKey(conv, 'seq'), this.convKey(conv, 'log'), beforeSeq ?? '', limit);
    const cutoff = nowMs - this.retention.maxAgeMs;
    const msgs: PrivateMessage[] = [];
    records.forEach((raw, i) => {
      const record = decodeLogRecord(raw);
      if (record.ts >= cutoff) msgs.push(privateMessageFor(uid, conv, low + i, record));
    });
    return { msgs, more: records.length > 0 && low > first };
  }

  async conversations(uid: Uid, limit: number): Promise<ConversationInfo[]> {
    const flat = await this.redis.zrevrange(this.userKey(uid, 'convs'), 0, limit - 1, 'WITHSCORES');
    const entries: Array<[ConversationId, number]> = [];
    for (let i = 0; i < flat.length; i += 2) entries.push([flat[i]!, Number(flat[i + 1])]);
    if (entries.length === 0) return [];
    const pipeline = this.redis.pipeline().hmget(this.userKey(uid, 'read'), ...entries.map(([conv]) => conv));
    for (const [conv] of entries) pipeline.get(this.convKey(conv, 'seq'));
    const [reads, ...lasts] = await execAll(pipeline);
    return entries.map(([conv, ts], i) => ({
      conv, peer: peerOf(conv, uid), ts,
      lastSeq: Number(lasts[i] ?? 0), readSeq: Number((reads as Array<string | null>)[i] ?? 0),
    }));
  }

  async setBlocked(uid: Uid, target: Uid, blocked: boolean): Promise<void> {
    if (blocked) await this.redis.sadd(this.userKey(uid, 'block'), target);
    else await this.redis.srem(this.userKey(uid, 'block'), target);
  }

  async isBlocked(uid: Uid, target: Uid): Promise<boolean> {
    return (await this.redis.sismember(this.userKey(uid, 'block'), target)) === 1;
  }

  async close(): Promise<void> {}

  private async read(uid: Uid, device: string, after: Seq | undefined, limit: number, mode: 'sync' | 'latest' | 'ack', nowMs: number): Promise<InboxPage> {
    const [cursor, lastSeq, firstSeq, refs] = await this.redis.roomcastInboxRead(
      this.userKey(uid, 'iseq'), this.userKey(uid, 'inbox'), this.userKey(uid, 'cursor'),
      device, after ?? '', limit, mode, nowMs, this.retention.maxAgeMs,
    );
    if (refs.length === 0) return { msgs: [], cursor, lastSeq, firstSeq };
    // One round trip for every referenced record, each read atomically in its conversation's slot.
    const parsed = refs.map(parseRef);
    const pipeline = this.redis.pipeline();
    for (const ref of parsed) pipeline.roomcastLogRecordBuffer(this.convKey(ref.conv, 'seq'), this.convKey(ref.conv, 'log'), ref.cseq);
    const records = await execAll(pipeline);
    const cutoff = nowMs - this.retention.maxAgeMs;
    const msgs: PrivateMessage[] = [];
    parsed.forEach((ref, i) => {
      const raw = records[i] as Buffer | null;
      if (!raw) return;
      const record = decodeLogRecord(raw);
      if (record.ts >= cutoff) msgs.push(privateMessageFor(uid, ref.conv, ref.cseq, record));
    });
    return { msgs, cursor, lastSeq, firstSeq };
  }

  private userKey(uid: Uid, name: string): string {
    return `${this.prefix}user:{${uid}}:${name}`;
  }

  private convKey(conv: ConversationId, name: string): string {
    return `${this.prefix}conv:{${conv}}:${name}`;
  }
}

function parseRef(ref: string): { ts: number; cseq: Seq; conv: ConversationId } {
  const first = ref.indexOf(':');
  const second = ref.indexOf(':', first + 1);
  return { ts: Number(ref.slice(0, first)), cseq: Number(ref.slice(first + 1, second)), conv: ref.slice(second + 1) };
}

const COLON = 0x3a;

/** "<ts>:<fseq>:<rseq>:" and the msgpack content. */
function decodeLogRecord(raw: Buffer): StoredPrivateMessage {
  const numbers: number[] = [];
  let start = 0;
  while (numbers.length < 3) {
    const end = raw.indexOf(COLON, start);
    numbers.push(Number(raw.subarray(start, end).toString('latin1')));
    start = end + 1;
  }
  const content = decodeRecord(raw.subarray(start)) as StoredContent;
  return { ...content, ts: numbers[0]!, fseq: numbers[1]!, rseq: numbers[2]! };
}




