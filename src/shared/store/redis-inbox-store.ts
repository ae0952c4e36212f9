/**
 * Private chat state on Redis, on one node or a Redis Cluster: every script touches the keys of one
 * slot, the conversation's or one user's.
 *
 * Key layout (`rc:` is the default prefix; `{conv}` and `{uid}` are hash tags):
 *
 *   rc:conv:{<conv>}:seq                     STRING the conversation's newest cseq
 *   rc:conv:{<conv>}:log                     LIST   each message once: "<ts>:" followed by the msgpack record
 *                                                   {from, to, text, cid}; element i has cseq seq - LLEN + 1 + i
 *   rc:conv:{<conv>}:dedup:<len>:<uid>:<cid> STRING "<cseq> <untilMs>": a client message id of uid already
 *                                                   stored (PX dedupTtlMs); <len> is uid's length
 *   rc:conv:{<conv>}:block                   SET    the conversation's uids that refuse the other's messages
 *   rc:conv:{<conv>}:rl:<uid>                HASH   tokens, ts: uid's send bucket in this conversation
 *   rc:outbox:{<slot tag>}                   ZSET   "<cseq>:<sender index 0|1>:<conv>" → ts: sends of the
 *                                                   conversations of that slot whose inbox steps are not settled
 *   rc:user:{<uid>}:iseq                     STRING the user's newest inbox seq (INCR)
 *   rc:user:{<uid>}:inbox                    LIST   references "<ts>:<cseq>:<conv>", oldest first; element i has
 *                                                   inbox seq iseq - LLEN + 1 + i (gap-free; trimming drops the head)
 *   rc:user:{<uid>}:delivered                HASH   conv → the conversation's highest cseq the inbox holds
 *   rc:user:{<uid>}:cursor                   HASH   device type → the last inbox seq that device acknowledged
 *   rc:user:{<uid>}:read                     HASH   conv → the user's read cursor (a cseq)
 *   rc:user:{<uid>}:convs                    ZSET   conv → time of its newest message (the conversation list)
 *
 * A send is one script in the conversation's slot (dedup, block, rate, the stored copy, its cseq and
 * the outbox entry): once it answers, the message is stored. On a Cluster, `deliver` then runs one
 * script in each user's slot, which appends every cseq of the conversation above the user's
 * `delivered` mark up to this one: idempotent, and in cseq order even when two sends of a conversation
 * deliver out of order. On one node (one Redis, or Sentinel's primary) every key is on that node, so
 * the send script runs the same two inbox steps itself (one Lua function shared by both scripts) and
 * answers their seqs: a message costs one script call, and a later `deliver` finds it appended.
 * `settle` drops the outbox entry. The outbox lives in the conversation's slot, so its key is named
 * with a tag of that slot (key-slot.ts); `pending` visits the 16384 per-slot outboxes in turn, a
 * window of them per call.
 *
 * Retention: every append trims inboxes and logs to `count` entries and drops entries older than
 * `maxAgeMs` from their head; reads trim the user's inbox by age too and skip records older than it.
 *
 * Logs written before this layout (`roomcast migrate`) hold "<ts>:<fseq>:<rseq>:" records: they are
 * read as they are (the inbox seqs they carry are ignored).
 */
import type { Result } from 'ioredis';
import { asBuffer, defineScripts, TRIM_LIST_LUA, DEFAULT_KEY_PREFIX, type RedisArg as Arg } from './redis-commands.js';
import { TOKEN_BUCKET_LUA } from './token-bucket.js';
import type { RedisConnection } from './redis-client.js';
import { SLOT_COUNT, slotOfTag, slotTags } from './key-slot.js';
import { decodeRecord, encodeRecord } from '../codec/codec.js';
import type { Seq, Uid } from '../protocol/frames.js';
import type { PrivateMessage } from '../protocol/chat-frames.js';
import {
  conversationOf, peerOf, privateMessageFor,
  type ChatRetention, type ConversationId, type ConversationInfo, type ConversationMessage, type InboxPage, type InboxSeqs,
  type InboxStore, type PrivateRef, type PrivateSendInput, type PrivateSendResult,
} from './inbox-store.js';

/**
 * Per-slot outboxes one `pending` call visits by default: all of them in 64 calls. A visit is a
 * command per slot, so this is the repair's fixed cost (256 cheap commands a round).
 */
export const DEFAULT_OUTBOX_SLOTS_PER_VISIT = 256;

/** The send script's answer; `Appended`: what a stored message's answer adds (the inbox seqs, when it ran the inbox steps). */
type PrivateSendReply<Appended extends number[]> =
  | [status: 'stored', cseq: number, ...appended: Appended]
  | [status: 'duplicate', cseq: number, pending: 0 | 1]
  | [status: 'rejected', code: 'blocked' | 'rate_limited'];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    roomcastPrivateSend(...args: Arg[]): Result<PrivateSendReply<[]>, Context>;
    roomcastPrivateSendAndAppend(...args: Arg[]): Result<PrivateSendReply<[senderSeq: number, recipientSeq: number]>, Context>;
    roomcastInboxAppend(...args: Arg[]): Result<number, Context>;
    roomcastInboxRead(...args: Arg[]): Result<[cursor: number, last: number, first: number, refs: string[], low: number], Context>;
    roomcastLogRecordBuffer(...args: Arg[]): Result<Buffer | null, Context>;
    roomcastLogRangeBuffer(...args: Arg[]): Result<[last: number, first: number, low: number, records: Buffer[]], Context>;
    roomcastMaxField(...args: Arg[]): Result<number, Context>;
  }
}

/** A user's keys that the inbox step changes, in the order the scripts take them. */
const INBOX_KEY_NAMES = ['iseq', 'inbox', 'convs', 'delivered', 'read'] as const;

/**
 * Lua `inbox_append(keys, conv, cseq, ts, count, cutoff, is_sender)`, the inbox step of one user
 * (keys: that user's iseq, inbox, convs, delivered, read): appends the conversation's cseqs above the
 * delivered mark up to cseq; answers cseq's inbox seq (when appended before, found anywhere in the
 * inbox, which holds at most `count` entries; 0 once retention has dropped it). Needs TRIM_LIST_LUA.
 */
const INBOX_APPEND_LUA = `
local function inbox_append(keys, conv, cseq, ts, count, cutoff, is_sender)
  local iseq_key, inbox, convs, delivered, read = unpack(keys)
  -- Sending implies having read the conversation so far.
  if is_sender and (tonumber(redis.call('HGET', read, conv)) or 0) < cseq then redis.call('HSET', read, conv, cseq) end
  local done = tonumber(redis.call('HGET', delivered, conv)) or 0
  if done >= cseq then
    local last = tonumber(redis.call('GET', iseq_key)) or 0
    local refs = redis.call('LRANGE', inbox, 0, -1)
    for i = #refs, 1, -1 do
      local ref_cseq, ref_conv = string.match(refs[i], '^%d+:(%d+):(.*)$')
      if tonumber(ref_cseq) == cseq and ref_conv == conv then return last - #refs + i end
    end
    return 0
  end
  local seq, length = 0, nil
  for c = math.max(done + 1, cseq - count + 1), cseq do
    seq = redis.call('INCR', iseq_key)
    length = redis.call('RPUSH', inbox, ts .. ':' .. c .. ':' .. conv)
  end
  trim(inbox, count, cutoff, length)
  redis.call('HSET', delivered, conv, cseq)
  -- GT: a conversation's score only moves forward; only a new one can push the list over count.
  if redis.call('ZADD', convs, 'GT', ts, conv) == 1 then redis.call('ZREMRANGEBYRANK', convs, 0, -count - 1) end
  return seq
end
`;

/**
 * The send: dedup, block, rate, the stored copy, its cseq and the outbox entry. Given the inbox keys
 * too (all on one node), it also runs both inbox steps and answers their seqs.
 * KEYS: dedup, block, bucket, conv seq, conv log, outbox[, then INBOX_KEY_NAMES of the sender and of the recipient].
 * ARGV: nowMs, to, content, ratePerSec, burst, count, maxAgeMs, dedupTtlMs, outbox member after "<cseq>:",
 * conv.
 */
const PRIVATE_SEND_LUA = `${TRIM_LIST_LUA}${TOKEN_BUCKET_LUA}${INBOX_APPEND_LUA}
local dedup, block, bucket, c_seq, c_log, outbox = unpack(KEYS)
local now_arg, to, content = ARGV[1], ARGV[2], ARGV[3]
local now, rate, burst = tonumber(now_arg), tonumber(ARGV[4]), tonumber(ARGV[5])
local count, cutoff, dedup_ttl, member = tonumber(ARGV[6]), now - tonumber(ARGV[7]), ARGV[8], ARGV[9]

local seen = redis.call('GET', dedup)
if seen then
  local seen_cseq, seen_until = string.match(seen, '^(%d+) (%d+)$')
  -- Whether the first attempt's outbox entry is still there: its inbox steps or pushes may be due.
  if tonumber(seen_until) > now then return {'duplicate', tonumber(seen_cseq), redis.call('ZSCORE', outbox, seen_cseq .. ':' .. member) and 1 or 0} end
end
if redis.call('SISMEMBER', block, to) == 1 then return {'rejected', 'blocked'} end
local tokens = bucket_tokens(bucket, now, rate, burst)
if tokens < 1 then return {'rejected', 'rate_limited'} end

local cseq = redis.call('INCR', c_seq)
trim(c_log, count, cutoff, redis.call('RPUSH', c_log, now_arg .. ':' .. content))
redis.call('SET', dedup, cseq .. ' ' .. string.format('%d', now + tonumber(dedup_ttl)), 'PX', dedup_ttl)
redis.call('ZADD', outbox, now_arg, cseq .. ':' .. member)
bucket_take(bucket, tokens, now_arg, rate, burst)
if #KEYS == 6 then return {'stored', cseq} end
-- One node: both inbox steps in this call (the outbox entry stays until the pushes went out).
local conv = ARGV[10]
local sender_seq = inbox_append({unpack(KEYS, 7, 11)}, conv, cseq, now_arg, count, cutoff, true)
return {'stored', cseq, sender_seq, inbox_append({unpack(KEYS, 12, 16)}, conv, cseq, now_arg, count, cutoff, false)}`;

const SCRIPTS = {
  // A Cluster's send: the conversation's keys only (ioredis routes a call by its first key, so each
  // variant has a fixed key count rather than a leading one).
  roomcastPrivateSend: { numberOfKeys: 6, lua: PRIVATE_SEND_LUA },
  // One node's send, with both users' inbox steps.
  roomcastPrivateSendAndAppend: { numberOfKeys: 16, lua: PRIVATE_SEND_LUA },
  // KEYS: INBOX_KEY_NAMES of one user. ARGV: conv, cseq, ts, count, cutoff (ms), isSender ('1' | '0').
  roomcastInboxAppend: {
    numberOfKeys: 5,
    lua: `${TRIM_LIST_LUA}${INBOX_APPEND_LUA}
return inbox_append(KEYS, ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1')`,
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
return {cursor, last, first, refs, low}`,
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
  redis: RedisConnection;
  retention: ChatRetention;
  keyPrefix?: string;
  /** Per-slot outboxes a `pending` call visits (DEFAULT_OUTBOX_SLOTS_PER_VISIT). */
  outboxSlotsPerVisit?: number;
}

interface StoredContent { from: Uid; to: Uid; text: string; cid: string }

export class RedisInboxStore implements InboxStore {
  private readonly redis: RedisConnection;
  private readonly retention: ChatRetention;
  private readonly prefix: string;
  private readonly slotsPerVisit: number;
  /**
   * Every key is on one node (one Redis, or Sentinel's primary): the send script runs both inbox
   * steps too. A Cluster keeps each user's keys in the user's slot, so `deliver` runs them there.
   */
  private readonly appendsInSend: boolean;
  /** The first per-slot outbox the next `pending` call visits; each store starts elsewhere. */
  private nextOutboxSlot = Math.floor(Math.random() * SLOT_COUNT);

  constructor(options: RedisInboxStoreOptions) {
    this.redis = options.redis;
    this.retention = options.retention;
    this.prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.slotsPerVisit = Math.min(SLOT_COUNT, options.outboxSlotsPerVisit ?? DEFAULT_OUTBOX_SLOTS_PER_VISIT);
    this.appendsInSend = !this.redis.isCluster;
    // Tens of milliseconds, spent at start-up rather than in the first send.
    slotTags();
    defineScripts(this.redis, SCRIPTS);
  }

  async send(input: PrivateSendInput): Promise<PrivateSendResult> {
    const { from, to, cid, text, nowMs, rate } = input;
    const conv = conversationOf(from, to);
    const content: StoredContent = { from, to, text, cid };
    const args = [
      this.convKey(conv, `dedup:${from.length}:${from}:${cid}`), this.convKey(conv, 'block'), this.convKey(conv, `rl:${from}`),
      this.convKey(conv, 'seq'), this.convKey(conv, 'log'), this.outboxKey(conv),
      ...(this.appendsInSend ? [...this.inboxKeys(from), ...this.inboxKeys(to)] : []),
      nowMs, to, asBuffer(encodeRecord(content)), rate.ratePerSec, rate.burst,
      this.retention.count, this.retention.maxAgeMs, this.retention.dedupTtlMs, outboxMemberTail(conv, from), conv,
    ];
    const reply = this.appendsInSend ? await this.redis.roomcastPrivateSendAndAppend(...args) : await this.redis.roomcastPrivateSend(...args);
    if (reply[0] === 'rejected') return { status: 'rejected', code: reply[1] };
    const cseq = reply[1];
    if (reply[0] === 'stored') {
      const message = { conv, cseq, ...content, ts: nowMs };
      return reply.length === 4 ? { status: 'stored', message, inboxSeqs: { senderSeq: reply[2], recipientSeq: reply[3] } } : { status: 'stored', message };
    }
    const raw = await this.redis.roomcastLogRecordBuffer(this.convKey(conv, 'seq'), this.convKey(conv, 'log'), cseq);
    // Trimmed since: the ids are all a retrying sender needs.
    const record = raw ? decodeLogRecord(raw) : { ...content, ts: nowMs };
    return { status: 'duplicate', message: { conv, cseq, ...record }, settled: reply[2] === 0 };
  }

  async deliver(ref: PrivateRef, nowMs: number): Promise<InboxSeqs> {
    // Two users, two slots: two scripts sent together.
    const [senderSeq, recipientSeq] = await Promise.all([this.appendToInbox(ref.from, ref, true, nowMs), this.appendToInbox(ref.to, ref, false, nowMs)]);
    return { senderSeq, recipientSeq };
  }

  async settle(ref: PrivateRef): Promise<void> {
    await this.redis.zrem(this.outboxKey(ref.conv), `${ref.cseq}:${outboxMemberTail(ref.conv, ref.from)}`);
  }

  async pending(nowMs: number, olderThanMs: number, limit: number): Promise<Array<PrivateRef & Partial<ConversationMessage>>> {
    const tags = slotTags();
    const first = this.nextOutboxSlot;
    this.nextOutboxSlot = (first + this.slotsPerVisit) % SLOT_COUNT;
    const visited = Array.from({ length: this.slotsPerVisit }, (_, i) => tags[(first + i) % SLOT_COUNT]!);
    // One command per slot, sent together: auto-pipelining makes it a write per node.
    const replies = await Promise.all(visited.map((tag) =>
      this.redis.zrangebyscore(`${this.prefix}outbox:{${tag}}`, '-inf', nowMs - olderThanMs, 'WITHSCORES', 'LIMIT', 0, limit)));
    const refs: PrivateRef[] = [];
    for (const flat of replies) {
      for (let i = 0; i < flat.length && refs.length < limit; i += 2) refs.push(parseOutboxMember(flat[i]!, Number(flat[i + 1])));
    }
    const records = await Promise.all(refs.map((ref) => this.redis.roomcastLogRecordBuffer(this.convKey(ref.conv, 'seq'), this.convKey(ref.conv, 'log'), ref.cseq)));
    return refs.map((ref, i) => {
      const raw = records[i];
      return raw ? { ...decodeLogRecord(raw), ...ref } : ref;
    });
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
      if (record.ts >= cutoff) msgs.push(privateMessageFor({ conv, cseq: low + i, ...record }, 0));
    });
    return { msgs, more: records.length > 0 && low > first };
  }

  async conversations(uid: Uid, limit: number): Promise<ConversationInfo[]> {
    const flat = await this.redis.zrevrange(this.userKey(uid, 'convs'), 0, limit - 1, 'WITHSCORES');
    const entries: Array<[ConversationId, number]> = [];
    for (let i = 0; i < flat.length; i += 2) entries.push([flat[i]!, Number(flat[i + 1])]);
    if (entries.length === 0) return [];
    // The user's read cursors and each conversation's seq live in different slots: commands sent together.
    const [reads, ...lasts] = await Promise.all([
      this.redis.hmget(this.userKey(uid, 'read'), ...entries.map(([conv]) => conv)),
      ...entries.map(([conv]) => this.redis.get(this.convKey(conv, 'seq'))),
    ]);
    return entries.map(([conv, ts], i) => ({
      conv, peer: peerOf(conv, uid), ts,
      lastSeq: Number(lasts[i] ?? 0), readSeq: Number((reads as Array<string | null>)[i] ?? 0),
    }));
  }

  async setBlocked(uid: Uid, target: Uid, blocked: boolean): Promise<void> {
    const key = this.convKey(conversationOf(uid, target), 'block');
    if (blocked) await this.redis.sadd(key, uid);
    else await this.redis.srem(key, uid);
  }

  async isBlocked(uid: Uid, target: Uid): Promise<boolean> {
    return (await this.redis.sismember(this.convKey(conversationOf(uid, target), 'block'), uid)) === 1;
  }

  async close(): Promise<void> {}

  private appendToInbox(uid: Uid, ref: PrivateRef, isSender: boolean, nowMs: number): Promise<Seq> {
    return this.redis.roomcastInboxAppend(
      ...this.inboxKeys(uid),
      ref.conv, ref.cseq, ref.ts, this.retention.count, nowMs - this.retention.maxAgeMs, isSender ? '1' : '0',
    );
  }

  private async read(uid: Uid, device: string, after: Seq | undefined, limit: number, mode: 'sync' | 'latest' | 'ack', nowMs: number): Promise<InboxPage> {
    const [cursor, lastSeq, firstSeq, refs, low] = await this.redis.roomcastInboxRead(
      this.userKey(uid, 'iseq'), this.userKey(uid, 'inbox'), this.userKey(uid, 'cursor'),
      device, after ?? '', limit, mode, nowMs, this.retention.maxAgeMs,
    );
    if (refs.length === 0) return { msgs: [], cursor, lastSeq, firstSeq };
    // One script per referenced record, each in its conversation's slot, sent together.
    const parsed = refs.map(parseInboxRef);
    const records = await Promise.all(parsed.map((ref) => this.redis.roomcastLogRecordBuffer(this.convKey(ref.conv, 'seq'), this.convKey(ref.conv, 'log'), ref.cseq)));
    const cutoff = nowMs - this.retention.maxAgeMs;
    const msgs: PrivateMessage[] = [];
    parsed.forEach((ref, i) => {
      const raw = records[i];
      if (!raw) return;
      const record = decodeLogRecord(raw);
      if (record.ts >= cutoff) msgs.push(privateMessageFor({ conv: ref.conv, cseq: ref.cseq, ...record }, low + i));
    });
    return { msgs, cursor, lastSeq, firstSeq };
  }

  private userKey(uid: Uid, name: string): string {
    return `${this.prefix}user:{${uid}}:${name}`;
  }

  private inboxKeys(uid: Uid): string[] {
    return INBOX_KEY_NAMES.map((name) => this.userKey(uid, name));
  }

  private convKey(conv: ConversationId, name: string): string {
    return `${this.prefix}conv:{${conv}}:${name}`;
  }

  /** The outbox in the conversation's slot. */
  private outboxKey(conv: ConversationId): string {
    return `${this.prefix}outbox:{${slotTags()[slotOfTag(conv)]!}}`;
  }
}

/** "<sender index>:<conv>": which of the conversation's two uids sent (the cseq goes in front). */
function outboxMemberTail(conv: ConversationId, from: Uid): string {
  return `${conv.startsWith(`${from}/`) ? 0 : 1}:${conv}`;
}

function parseOutboxMember(member: string, ts: number): PrivateRef {
  const first = member.indexOf(':');
  const cseq = Number(member.slice(0, first));
  const senderIndex = member.charAt(first + 1);
  const conv = member.slice(first + 3);
  const [a, b] = conv.split('/') as [Uid, Uid];
  return senderIndex === '0' ? { conv, cseq, from: a, to: b, ts } : { conv, cseq, from: b, to: a, ts };
}

function parseInboxRef(ref: string): { ts: number; cseq: Seq; conv: ConversationId } {
  const first = ref.indexOf(':');
  const second = ref.indexOf(':', first + 1);
  return { ts: Number(ref.slice(0, first)), cseq: Number(ref.slice(first + 1, second)), conv: ref.slice(second + 1) };
}

const COLON = 0x3a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/**
 * "<ts>:" and the msgpack content; a record of the layout before (`roomcast migrate`) has
 * "<ts>:<fseq>:<rseq>:" in front, told apart by a digit where msgpack content starts with a map.
 */
export function decodeLogRecord(raw: Buffer): StoredContent & { ts: number } {
  let end = raw.indexOf(COLON);
  const ts = Number(raw.subarray(0, end).toString('latin1'));
  let start = end + 1;
  if (raw[start]! >= DIGIT_0 && raw[start]! <= DIGIT_9) {
    end = raw.indexOf(COLON, raw.indexOf(COLON, start) + 1);
    start = end + 1;
  }
  return { ...(decodeRecord(raw.subarray(start)) as StoredContent), ts };
}
