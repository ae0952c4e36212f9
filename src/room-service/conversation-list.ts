/**
 * The `convs` answer: a user's private conversations and groups in one list, by last activity,
 * newest first, in pages. The cursor is the count of entries already given: a conversation that
 * moves to the top while a client pages may show up again on a later page, and the client keeps the
 * newest entry per peer or group.
 */
import { fail } from '../shared/errors.js';
import type { RoomServiceMetrics } from '../shared/metrics.js';
import type { ChatReply } from '../shared/protocol/chat-bus-messages.js';
import type { ConversationSummary, ConvsResultFrame } from '../shared/protocol/chat-frames.js';
import type { Uid } from '../shared/protocol/frames.js';
import type { InboxStore } from '../shared/store/inbox-store.js';
import type { ChatHandler } from './chat-handlers.js';
import { storeCall } from './service-calls.js';

const OFFSET_CURSOR = /^\d{1,9}$/;

export interface ConversationListDeps {
  inbox: Pick<InboxStore, 'conversations'>;
  /** The user's groups with unread counts and last activity. */
  groups: { summaries(uid: Uid): Promise<ConversationSummary[]> };
  metrics: RoomServiceMetrics;
  /** Default and largest page. */
  pageMax: number;
}

export class ConversationList {
  constructor(private readonly deps: ConversationListDeps) {}

  readonly handler: ChatHandler<'convs'> = async (caller, frame): Promise<ChatReply> => ({ frame: await this.list(caller.uid, frame.cursor, frame.limit) });

  async list(uid: Uid, cursor: string | undefined, requested: number | undefined): Promise<ConvsResultFrame> {
    if (cursor !== undefined && !OFFSET_CURSOR.test(cursor)) throw fail.bad_frame("'cursor' must be a string from an earlier page");
    const offset = cursor === undefined ? 0 : Number(cursor);
    const size = Math.min(requested ?? this.deps.pageMax, this.deps.pageMax);
    // The newest offset + size private conversations hold every private one of this page.
    const [conversations, groups] = await Promise.all([
      storeCall(this.deps.metrics, 'chat', 'convs', () => this.deps.inbox.conversations(uid, offset + size)),
      this.deps.groups.summaries(uid),
    ]);
    const all: ConversationSummary[] = conversations.map((c) => ({
      peer: c.peer, lastSeq: c.lastSeq, readSeq: c.readSeq, unread: Math.max(0, c.lastSeq - c.readSeq), ts: c.ts,
    }));
    all.push(...groups);
    all.sort((a, b) => (b.ts ?? 0) - (a.ts ?? 0) || keyOf(a).localeCompare(keyOf(b)));
    const end = offset + size;
    const more = all.length > end || conversations.length === end;
    return { t: 'convs', convs: all.slice(offset, end), ...(more ? { cursor: String(end) } : {}) };
  }
}

function keyOf(summary: ConversationSummary): string {
  return summary.peer === undefined ? `g/${summary.group}` : `p/${summary.peer}`;
}
