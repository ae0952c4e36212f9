/**
 * Private (1:1) chat state: each message is stored once in its conversation's log and referenced
 * from both users' inboxes, each with a per-user, gap-free, increasing inbox seq, in one atomic step
 * together with the send's checks (duplicate id, block list, rate). Each device of a user keeps its
 * own cursor (the last inbox seq it acknowledged). Read cursors per conversation give unread counts
 * and read receipts. Retention is bounded by count and age. Redis in distributed mode, memory in the
 * all-in-one mode; one contract suite runs against both.
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

/** A private message as a store keeps it: once, with both users' inbox seqs. */
export interface StoredPrivateMessage { from: Uid; to: Uid; text: string; ts: number; cid: ClientMsgId; fseq: Seq; rseq: Seq }

/** The message as `uid`'s inbox shows it (with that user's inbox seq). */
export function privateMessageFor(uid: Uid, conv: ConversationId, cseq: Seq, stored: StoredPrivateMessage): PrivateMessage {
  return {
    seq: uid === stored.from ? stored.fseq : stored.rseq,
    mid: privateMessageId(conv, cseq), cseq, from: stored.from, to: stored.to, text: stored.text, ts: stored.ts, cid: stored.cid,
  };
}

export function privateMessageViews(conv: ConversationId, cseq: Seq, stored: StoredPrivateMessage): { forSender: PrivateMessage; forRecipient: PrivateMessage } {
  return { forSender: privateMessageFor(stored.from, conv, cseq, stored), forRecipient: privateMessageFor(stored.to, conv, cseq, stored) };
}

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
  | {
    status: 'stored' | 'duplicate';
    /** The message as the sender's inbox holds it (seq = the sender's inbox seq). */
    forSender: PrivateMessage;
    /** The message as the recipient's inbox holds it (seq = the recipient's inbox seq). */
    forRecipient: PrivateMessage;
  }
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
  /** Checks, deduplicates and stores a private message atomically. */
  send(input: PrivateSendInput): Promise<PrivateSendResult>;
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
  /** A page of the conversation, older than `beforeSeq` (a cseq), oldest first, as `uid` sees it. */
  history(uid: Uid, peer: Uid, beforeSeq: Seq | undefined, limit: number, nowMs: number): Promise<{ msgs: PrivateMessage[]; more: boolean }>;
  /** The user's conversations, newest first. */
  conversations(uid: Uid, limit: number): Promise<ConversationInfo[]>;
  setBlocked(uid: Uid, target: Uid, blocked: boolean): Promise<void>;
  isBlocked(uid: Uid, target: Uid): Promise<boolean>;
  close(): Promise<void>;
}
