/**
 * Private (1:1) chat state. A send is one atomic step in the conversation's slot: the checks
 * (duplicate id, block, rate), the message stored once in its conversation's log with its cseq, and
 * an outbox entry. Each user's inbox then references the message with a per-user, gap-free,
 * increasing inbox seq, appended by an idempotent step in that user's own slot (`deliver`), or by the
 * send itself where all keys are in one place (memory, one Redis node); the outbox entry is dropped
 * once both inboxes have it and its pushes went out (`settle`), and entries left behind by a crash are
 * found by `pending` and delivered again. Each device of a user keeps its own cursor (the last inbox
 * seq it acknowledged). Read cursors per conversation give unread counts and read receipts. Retention
 * is bounded by count and age. Redis in distributed mode, memory in the all-in-one mode; one contract
 * suite runs against both.
 */
import type { ClientMsgId, Seq, Uid } from '../protocol/frames.js';
import type { MessageId, PrivateMessage } from '../protocol/chat-frames.js';
import type { RateLimit } from './room-store.js';

/** A conversation between two users: the two uids in order, joined by '/' (not in the uid alphabet). */
export type ConversationId = string;

export function conversationOf(a: Uid, b: Uid): ConversationId {
  return a < b ? `${a}/${b}` : `${b}/${a}`;
}

export function peerOf(conv: ConversationId, uid: Uid): Uid {
  const [a, b] = conv.split('/') as [Uid, Uid];
  return a === uid ? b : a;
}

export function privateMessageId(conv: ConversationId, cseq: Seq): MessageId {
  return `p/${conv}/${cseq}`;
}

/** Where a stored message goes: enough for the inbox steps, which never read the message itself. */
export interface PrivateRef { conv: ConversationId; cseq: Seq; from: Uid; to: Uid; ts: number }

/** A private message as its conversation stores it, once, before and apart from any inbox seq. */
export interface ConversationMessage extends PrivateRef { text: string; cid: ClientMsgId }

/**
 * The message as `uid`'s inbox shows it: `seq` is that user's inbox seq, or 0 where there is none
 * (conversation history, which is read by cseq).
 */
export function privateMessageFor(message: ConversationMessage, seq: Seq): PrivateMessage {
  const { conv, cseq, from, to, text, ts, cid } = message;
  return { seq, mid: privateMessageId(conv, cseq), cseq, from, to, text, ts, cid };
}

/** The inbox seqs a delivery gave the message; 0 where the inbox no longer holds it (see `deliver`). */
export interface InboxSeqs { senderSeq: Seq; recipientSeq: Seq }

export interface ChatRetention {
  /** Messages kept per inbox and per conversation log. */
  count: number;
  /** Messages older than this are trimmed (on the next append, and ignored by reads). */
  maxAgeMs: number;
  /** How long a (uid, clientMsgId) pair is remembered. */
  dedupTtlMs: number;
}

export interface PrivateSendInput {
  from: Uid;
  to: Uid;
  cid: ClientMsgId;
  text: string;
  nowMs: number;
  rate: RateLimit;
}

export type PrivateSendResult =
  /**
   * `inboxSeqs`: the store ran both inbox steps in the send (as `deliver` would have; it then finds
   * them done). Absent when they are still due (`deliver`).
   */
  | { status: 'stored'; message: ConversationMessage; inboxSeqs?: InboxSeqs }
  /**
   * The message first stored under this client id. `settled`: its outbox entry is gone, so both inbox
   * steps were done and its pushes went out; otherwise they may still be due (deliver it again).
   */
  | { status: 'duplicate'; message: ConversationMessage; settled: boolean }
  | { status: 'rejected'; code: 'blocked' | 'rate_limited' };

export interface InboxPage {
  /** Oldest first; messages trimmed from their conversation are left out. */
  msgs: PrivateMessage[];
  /** The device's cursor after the call. */
  cursor: Seq;
  /** The inbox's newest seq. */
  lastSeq: Seq;
  /** The oldest seq the inbox still holds (lastSeq + 1 when empty). */
  firstSeq: Seq;
}

export interface ConversationInfo {
  conv: ConversationId;
  peer: Uid;
  /** The conversation's newest cseq. */
  lastSeq: Seq;
  /** The user's read cursor (a cseq). */
  readSeq: Seq;
  /** Time of the newest message, ms since the epoch. */
  ts: number;
}

export interface InboxStore {
  /**
   * Checks, deduplicates and stores a private message atomically in its conversation, with an outbox
   * entry. Where the store can, the same atomic step appends it to both inboxes and answers their seqs
   * (`inboxSeqs`); otherwise it is in no inbox yet (see `deliver`). The rate is per sender and
   * conversation.
   */
  send(input: PrivateSendInput): Promise<PrivateSendResult>;
  /**
   * Appends the message to both users' inboxes, each in one atomic step of its own that first brings
   * the inbox up to date with the conversation (so the messages of a conversation enter an inbox in
   * cseq order): a retry, or a delivery racing another, appends nothing twice. Answers each inbox seq
   * of the message, found anywhere in the inbox when it had been appended before (a retry must know
   * the recipient's seq to push it); 0 once the inbox's retention has dropped it.
   */
  deliver(ref: PrivateRef, nowMs: number): Promise<InboxSeqs>;
  /** Drops the message's outbox entry: both inboxes have it and its pushes went out. */
  settle(ref: PrivateRef): Promise<void>;
  /**
   * Outbox entries at least `olderThanMs` old at `nowMs`: sends whose inbox steps a crash may have cut
   * short. Each call looks at the next part of the outbox (a Redis store visits its per-slot outboxes in
   * turn), so repeated calls cover all of it; at most `limit` entries, with their messages when the
   * conversation still holds them.
   */
  pending(nowMs: number, olderThanMs: number, limit: number): Promise<Array<PrivateRef & Partial<ConversationMessage>>>;
  /**
   * The inbox after `after` (default: the device's cursor), oldest first, at most `limit`. Asking
   * with `after` acknowledges up to it: the device's cursor becomes max(cursor, min(after, lastSeq)).
   */
  sync(uid: Uid, device: string, after: Seq | undefined, limit: number, nowMs: number): Promise<InboxPage>;
  /** The newest `limit` messages after the device's cursor (the login push). */
  latest(uid: Uid, device: string, limit: number, nowMs: number): Promise<InboxPage>;
  /** Moves the device's cursor to max(cursor, min(seq, lastSeq)) and answers it. */
  ack(uid: Uid, device: string, seq: Seq, nowMs: number): Promise<Seq>;
  /** Moves the user's read cursor of the conversation forward; answers it (0 for an unknown conversation). */
  markRead(uid: Uid, peer: Uid, cseq: Seq): Promise<Seq>;
  /** A page of the conversation, older than `beforeSeq` (a cseq), oldest first; `seq` is 0 (history goes by cseq). */
  history(uid: Uid, peer: Uid, beforeSeq: Seq | undefined, limit: number, nowMs: number): Promise<{ msgs: PrivateMessage[]; more: boolean }>;
  /** The user's conversations, newest first. */
  conversations(uid: Uid, limit: number): Promise<ConversationInfo[]>;
  /** `uid` refuses (or accepts again) private messages from `target`; kept with their conversation. */
  setBlocked(uid: Uid, target: Uid, blocked: boolean): Promise<void>;
  isBlocked(uid: Uid, target: Uid): Promise<boolean>;
  close(): Promise<void>;
}
