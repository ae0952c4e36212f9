/**
 * Private chat state of the all-in-one mode: the InboxStore contract in one process's memory. Each
 * operation runs without an await between its checks and its changes, so it is as atomic as the
 * Redis store's scripts. Everything is in one place, as on one Redis node, so `send` runs both inbox
 * steps too and answers their seqs (a later `deliver` finds them done). Logs are arrays whose first
 * element has seq `first`; trimming moves `first`.
 */
import type { Seq, Uid } from '../protocol/frames.js';
import type { PrivateMessage } from '../protocol/chat-frames.js';
import {
  conversationOf, peerOf, privateMessageFor,
  type ChatRetention, type ConversationId, type ConversationInfo, type ConversationMessage, type InboxPage, type InboxSeqs,
  type InboxStore, type PrivateRef, type PrivateSendInput, type PrivateSendResult,
} from './inbox-store.js';
import { take, type TokenBucket } from './token-bucket.js';

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
  /** conv → the conversation's highest cseq this inbox holds. */
  delivered: Map<ConversationId, Seq>;
}

type StoredMessage = Omit<ConversationMessage, 'conv' | 'cseq'>;

interface ConversationState {
  log: SeqLog<StoredMessage>;
  /** Uids of the conversation that refuse the other's messages. */
  blockedBy: Set<Uid>;
  /** Per sender: its send bucket in this conversation. */
  buckets: Map<Uid, TokenBucket>;
  /** "<sender>/<cid>" → the cseq stored under it, until when it is remembered. */
  dedup: Map<string, { cseq: Seq; untilMs: number }>;
}

export class MemoryInboxStore implements InboxStore {
  private readonly users = new Map<Uid, UserState>();
  private readonly convs = new Map<ConversationId, ConversationState>();
  /** "<conv>#<cseq>" → a sent message whose inbox steps are not settled yet. */
  private readonly outbox = new Map<string, PrivateRef>();

  constructor(private readonly retention: ChatRetention) {}

  async send(input: PrivateSendInput): Promise<PrivateSendResult> {
    const { from, to, cid, nowMs } = input;
    const conv = conversationOf(from, to);
    const state = this.conv(conv);
    if (state.dedup.size > DEDUP_PRUNE_SIZE) for (const [key, entry] of state.dedup) if (entry.untilMs <= nowMs) state.dedup.delete(key);
    const seen = state.dedup.get(`${from}/${cid}`);
    if (seen && seen.untilMs > nowMs) {
      const stored = state.log.get(seen.cseq) ?? { from, to, text: '', ts: nowMs, cid };
      return { status: 'duplicate', message: { conv, cseq: seen.cseq, ...stored }, settled: !this.outbox.has(`${conv}#${seen.cseq}`) };
    }
    if (state.blockedBy.has(to)) return { status: 'rejected', code: 'blocked' };
    const bucket = take(state.buckets.get(from), input.rate, nowMs);
    if (!bucket) return { status: 'rejected', code: 'rate_limited' };
    state.buckets.set(from, bucket);

    const stored: StoredMessage = { from, to, text: input.text, ts: nowMs, cid };
    const cseq = state.log.append(stored, this.retention, nowMs);
    state.dedup.set(`${from}/${cid}`, { cseq, untilMs: nowMs + this.retention.dedupTtlMs });
    const ref: PrivateRef = { conv, cseq, from, to, ts: nowMs };
    this.outbox.set(`${conv}#${cseq}`, ref);
    return { status: 'stored', message: { conv, cseq, ...stored }, inboxSeqs: this.appendToInboxes(ref, nowMs) };
  }

  async deliver(ref: PrivateRef, nowMs: number): Promise<InboxSeqs> {
    return this.appendToInboxes(ref, nowMs);
  }

  async settle(ref: PrivateRef): Promise<void> {
    this.outbox.delete(`${ref.conv}#${ref.cseq}`);
  }

  async pending(nowMs: number, olderThanMs: number, limit: number): Promise<Array<PrivateRef & Partial<ConversationMessage>>> {
    const due: Array<PrivateRef & Partial<ConversationMessage>> = [];
    for (const ref of this.outbox.values()) {
      if (due.length >= limit) break;
      if (ref.ts > nowMs - olderThanMs) continue;
      const stored = this.convs.get(ref.conv)?.log.get(ref.cseq);
      due.push(stored ? { ...ref, ...stored } : ref);
    }
    return due;
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
    const log = this.convs.get(conv)?.log;
    if (!log || log.lastSeq === 0) return 0;
    const read = Math.max(user.read.get(conv) ?? 0, Math.min(cseq, log.lastSeq));
    user.read.set(conv, read);
    return read;
  }

  async history(uid: Uid, peer: Uid, beforeSeq: Seq | undefined, limit: number, nowMs: number): Promise<{ msgs: PrivateMessage[]; more: boolean }> {
    const conv = conversationOf(uid, peer);
    const log = this.convs.get(conv)?.log;
    if (!log) return { msgs: [], more: false };
    log.trim(this.retention, nowMs);
    const high = Math.min(log.lastSeq, (beforeSeq ?? log.lastSeq + 1) - 1);
    const low = Math.max(log.first, high - limit + 1);
    const msgs: PrivateMessage[] = [];
    for (let cseq = low; cseq <= high; cseq++) {
      const stored = log.get(cseq);
      if (stored) msgs.push(privateMessageFor({ conv, cseq, ...stored }, 0));
    }
    return { msgs, more: low > log.first };
  }

  async conversations(uid: Uid, limit: number): Promise<ConversationInfo[]> {
    const user = this.user(uid);
    return [...user.convs.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, limit)
      .map(([conv, ts]) => ({ conv, peer: peerOf(conv, uid), lastSeq: this.convs.get(conv)?.log.lastSeq ?? 0, readSeq: user.read.get(conv) ?? 0, ts }));
  }

  async setBlocked(uid: Uid, target: Uid, blocked: boolean): Promise<void> {
    const state = this.conv(conversationOf(uid, target));
    if (blocked) state.blockedBy.add(uid);
    else state.blockedBy.delete(uid);
  }

  async isBlocked(uid: Uid, target: Uid): Promise<boolean> {
    return this.convs.get(conversationOf(uid, target))?.blockedBy.has(uid) ?? false;
  }

  async close(): Promise<void> {}

  private appendToInboxes(ref: PrivateRef, nowMs: number): InboxSeqs {
    return { senderSeq: this.appendToInbox(ref.from, ref, true, nowMs), recipientSeq: this.appendToInbox(ref.to, ref, false, nowMs) };
  }

  /** The inbox step: brings `uid`'s inbox up to date with the conversation up to `ref.cseq`; answers its inbox seq. */
  private appendToInbox(uid: Uid, ref: PrivateRef, isSender: boolean, nowMs: number): Seq {
    const user = this.user(uid);
    const done = user.delivered.get(ref.conv) ?? 0;
    if (isSender) user.read.set(ref.conv, Math.max(user.read.get(ref.conv) ?? 0, ref.cseq));
    if (done >= ref.cseq) return findInInbox(user.inbox, ref);
    let seq = 0;
    // Messages of the conversation that an earlier step has not appended yet come first, in cseq order.
    for (let cseq = Math.max(done + 1, ref.cseq - this.retention.count + 1); cseq <= ref.cseq; cseq++) {
      seq = user.inbox.append({ ts: ref.ts, conv: ref.conv, cseq }, this.retention, nowMs);
    }
    user.delivered.set(ref.conv, ref.cseq);
    if ((user.convs.get(ref.conv) ?? 0) < ref.ts) user.convs.set(ref.conv, ref.ts);
    trimConversations(user.convs, this.retention.count);
    return seq;
  }

  private page(uid: Uid, user: UserState, device: string, low: Seq, high: Seq): InboxPage {
    const msgs: PrivateMessage[] = [];
    for (let seq = low; seq <= high; seq++) {
      const ref = user.inbox.get(seq);
      const stored = ref && this.convs.get(ref.conv)?.log.get(ref.cseq);
      if (ref && stored) msgs.push(privateMessageFor({ conv: ref.conv, cseq: ref.cseq, ...stored }, seq));
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
      user = { inbox: new SeqLog(), cursors: new Map(), read: new Map(), convs: new Map(), delivered: new Map() };
      this.users.set(uid, user);
    }
    return user;
  }

  private conv(conv: ConversationId): ConversationState {
    let state = this.convs.get(conv);
    if (!state) this.convs.set(conv, (state = { log: new SeqLog(), blockedBy: new Set(), buckets: new Map(), dedup: new Map() }));
    return state;
  }
}

/** The inbox seq of a message appended before, newest first; 0 once the inbox no longer holds it. */
function findInInbox(inbox: SeqLog<InboxRef>, ref: PrivateRef): Seq {
  for (let seq = inbox.lastSeq; seq >= inbox.first; seq--) {
    const entry = inbox.get(seq);
    if (entry && entry.cseq === ref.cseq && entry.conv === ref.conv) return seq;
  }
  return 0;
}

/** Keeps the `count` newest conversations of a user's list. */
function trimConversations(convs: Map<ConversationId, number>, count: number): void {
  if (convs.size <= count) return;
  const oldest = [...convs.entries()].sort((a, b) => a[1] - b[1] || b[0].localeCompare(a[0])).slice(0, convs.size - count);
  for (const [conv] of oldest) convs.delete(conv);
}
