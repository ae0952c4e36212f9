/**
 * Private chat state of the all-in-one mode: the InboxStore contract in one process's memory. Each
 * operation runs without an await between its checks and its changes, so it is as atomic as the
 * Redis store's scripts. Logs are arrays whose first element has seq `first`; trimming moves `first`.
 */
import type { Seq, Uid } from '../protocol/frames.js';
import type { PrivateMessage } from '../protocol/chat-frames.js';
import {
  conversationOf, peerOf,
  type ChatRetention, type ConversationId, type ConversationInfo, type InboxPage, type InboxStore,
  type PrivateSendInput, type PrivateSendResult, privateMessageFor, privateMessageViews, type StoredPrivateMessage,
} from './inbox-store.js';
import type { RateLimit } from './room-store.js';

/** A sender's remembered ids are swept of expired ones when there are more than this. */
const DEDUP_PRUNE_SIZE = 1000;

interface InboxRef { ts: number; conv: ConversationId; cseq: Seq }

/** A log with position-derived seqs: entries[i] has seq first + i. */
class SeqLog<T extends { ts: number }> {
  entries: T[] = [];
  first = 1;
  get lastSeq(): Seq { return this.first + this.entries.length - 1; }
  get(seq: Seq): T | undefined { return this.entries[seq - this.first]; }
  append(entry: T, retention: ChatRetention, nowMs: number): Seq {
    this.entries.push(entry);
    const seq = this.lastSeq;
    this.trim(retention, nowMs);
    return seq;
  }
  trim(retention: ChatRetention, nowMs: number): void {
    let drop = Math.max(0, this.entries.length - retention.count);
    while (drop < this.entries.length && this.entries[drop]!.ts < nowMs - retention.maxAgeMs) drop++;
    if (drop > 0) {
      this.entries.splice(0, drop);
      this.first += drop;
    }
  }
}

interface UserState {
  inbox: SeqLog<InboxRef>;
  cursors: Map<string, Seq>;
  read: Map<ConversationId, Seq>;
  convs: Map<ConversationId, number>;
  blocked: Set<Uid>;
  bucket: { tokens: number; atMs: number } | null;
  dedup: Map<string, { conv: ConversationId; cseq: Seq; untilMs: number }>;
}

export class MemoryInboxStore implements InboxStore {
  private readonly users = new Map<Uid, UserState>();
  private readonly logs = new Map<ConversationId, SeqLog<StoredPrivateMessage>>();

  constructor(private readonly retention: ChatRetention) {}

  async send(input: PrivateSendInput): Promise<PrivateSendResult> {
    const { from, to, cid, nowMs } = input;
    const sender = this.user(from);
    const conv = conversationOf(from, to);
    if (sender.dedup.size > DEDUP_PRUNE_SIZE) for (const [key, entry] of sender.dedup) if (entry.untilMs <= nowMs) sender.dedup.delete(key);
    const seen = sender.dedup.get(cid);
    if (seen && seen.untilMs > nowMs) {
      const stored = this.log(seen.conv).get(seen.cseq) ?? { from, to, text: '', ts: nowMs, cid, fseq: 0, rseq: 0 };
      return { status: 'duplicate', ...privateMessageViews(seen.conv, seen.cseq, stored) };
    }
    const recipient = this.user(to);
    if (recipient.blocked.has(from)) return { status: 'rejected', code: 'blocked' };
    const tokens = refill(sender.bucket, input.rate, nowMs);
    if (tokens < 1) return { status: 'rejected', code: 'rate_limited' };
    sender.bucket = { tokens: tokens - 1, atMs: nowMs };

    const log = this.log(conv);
    const cseq = log.lastSeq + 1;
    const fseq = sender.inbox.append({ ts: nowMs, conv, cseq }, this.retention, nowMs);
    const rseq = from === to ? fseq : recipient.inbox.append({ ts: nowMs, conv, cseq }, this.retention, nowMs);
    const stored: StoredPrivateMessage = { from, to, text: input.text, ts: nowMs, cid, fseq, rseq };
    log.append(stored, this.retention, nowMs);
    sender.dedup.set(cid, { conv, cseq, untilMs: nowMs + this.retention.dedupTtlMs });
    sender.convs.set(conv, nowMs);
    recipient.convs.set(conv, nowMs);
    // Sending implies having read the conversation so far.
    sender.read.set(conv, cseq);
    return { status: 'stored', ...privateMessageViews(conv, cseq, stored) };
  }

  async sync(uid: Uid, device: string, after: Seq | undefined, limit: number, nowMs: number): Promise<InboxPage> {
    const user = this.user(uid);
    user.inbox.trim(this.retention, nowMs);
    if (after !== undefined) this.moveCursor(user, device, after);
    const from = after ?? user.cursors.get(device) ?? 0;
    const last = user.inbox.lastSeq;
    const low = Math.max(from + 1, user.inbox.first);
    const high = Math.min(last, low + limit - 1);
    return this.page(uid, user, device, low, high);
  }

  async latest(uid: Uid, device: string, limit: number, nowMs: number): Promise<InboxPage> {
    const user = this.user(uid);
    user.inbox.trim(this.retention, nowMs);
    const cursor = user.cursors.get(device) ?? 0;
    const high = user.inbox.lastSeq;
    const low = Math.max(cursor + 1, user.inbox.first, high - limit + 1);
    return this.page(uid, user, device, low, high);
  }

  async ack(uid: Uid, device: string, seq: Seq, nowMs: number): Promise<Seq> {
    const user = this.user(uid);
    user.inbox.trim(this.retention, nowMs);
    return this.moveCursor(user, device, seq);
  }

  async markRead(uid: Uid, peer: Uid, cseq: Seq): Promise<Seq> {
    const user = this.user(uid);
    const conv = conversationOf(uid, peer);
    const log = this.logs.get(conv);
    if (!log) return 0;
    const read = Math.max(user.read.get(conv) ?? 0, Math.min(cseq, log.lastSeq));
    user.read.set(conv, read);
    return read;
  }

  async history(uid: Uid, peer: Uid, beforeSeq: Seq | undefined, limit: number, nowMs: number): Promise<{ msgs: PrivateMessage[]; more: boolean }> {
    const conv = conversationOf(uid, peer);
    const log = this.logs.get(conv);
    if (!log) return { msgs: [], more: false };
    log.trim(this.retention, nowMs);
    const high = Math.min(log.lastSeq, (beforeSeq ?? log.lastSeq + 1) - 1);
    const low = Math.max(log.first, high - limit + 1);
    const msgs: PrivateMessage[] = [];
    for (let cseq = low; cseq <= high; cseq++) {
      const stored = log.get(cseq);
      if (stored) msgs.push(privateMessageFor(uid, conv, cseq, stored));
    }
    return { msgs, more: low > log.first };
  }

  async conversations(uid: Uid, limit: number): Promise<ConversationInfo[]> {
    const user = this.user(uid);
    return [...user.convs.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, limit)
      .map(([conv, ts]) => ({ conv, peer: peerOf(conv, uid), lastSeq: this.logs.get(conv)?.lastSeq ?? 0, readSeq: user.read.get(conv) ?? 0, ts }));
  }

  async setBlocked(uid: Uid, target: Uid, blocked: boolean): Promise<void> {
    const user = this.user(uid);
    if (blocked) user.blocked.add(target);
    else user.blocked.delete(target);
  }

  async isBlocked(uid: Uid, target: Uid): Promise<boolean> {
    return this.users.get(uid)?.blocked.has(target) ?? false;
  }

  async close(): Promise<void> {}

  private page(uid: Uid, user: UserState, device: string, low: Seq, high: Seq): InboxPage {
    const msgs: PrivateMessage[] = [];
    for (let seq = low; seq <= high; seq++) {
      const ref = user.inbox.get(seq);
      const stored = ref && this.logs.get(ref.conv)?.get(ref.cseq);
      if (ref && stored) msgs.push(privateMessageFor(uid, ref.conv, ref.cseq, stored));
    }
    return { msgs, cursor: user.cursors.get(device) ?? 0, lastSeq: user.inbox.lastSeq, firstSeq: user.inbox.first };
  }

  private moveCursor(user: UserState, device: string, seq: Seq): Seq {
    const cursor = Math.max(user.cursors.get(device) ?? 0, Math.min(seq, user.inbox.lastSeq));
    user.cursors.set(device, cursor);
    return cursor;
  }

  private user(uid: Uid): UserState {
    let user = this.users.get(uid);
    if (!user) {
      user = { inbox: new SeqLog(), cursors: new Map(), read: new Map(), convs: new Map(), blocked: new Set(), bucket: null, dedup: new Map() };
      this.users.set(uid, user);
    }
    return user;
  }

  private log(conv: ConversationId): SeqLog<StoredPrivateMessage> {
    let log = this.logs.get(conv);
    if (!log) this.logs.set(conv, (log = new SeqLog()));
    return log;
  }
}



function refill(bucket: { tokens: number; atMs: number } | null, limit: RateLimit, nowMs: number): number {
  if (!bucket) return limit.burst;
  return Math.min(limit.burst, bucket.tokens + (Math.max(0, nowMs - bucket.atMs) * limit.ratePerSec) / 1000);
}
