/**
 * The SDK's private and group chat, over the RoomcastClient's connection (`client.chat`):
 *
 * - sends are idempotent by their id and resent after a reconnect, after a timeout and (a few times)
 *   after a passing failure, until the server answers `sent` (which comes only once the message is
 *   stored);
 * - every message is delivered once: duplicates (a retried send routed again, a push that a sync
 *   brings too) are dropped by message id;
 * - processed messages are acknowledged automatically (`inbox_ack`, `group_ack`), coalesced;
 * - a push whose seq skips numbers makes the client pull what is missing;
 * - on every (re)connect the client syncs: it shows the login push, then pulls its inbox from its
 *   cursor in pages (each page request acknowledging the previous one), and pulls every group the
 *   login push names as unread from the member cursor.
 */
import type {
  ConvHistoryResultFrame, ConversationSummary, ConvsResultFrame, GroupId, GroupInfoFrame, GroupInviteFrame, GroupInviteView, GroupInvitesFrame,
  GroupMembersResultFrame, GroupMessage, GroupMessagesFrame, GroupSyncedFrame, InboxFrame, KickedFrame, MessageId, PrivateMessage,
  ReceiptFrame, SentFrame, SyncedFrame, ChatClientFrame, ChatServerFrame, BlockedFrame, MatchedRequestType,
} from '../shared/protocol/chat-frames.js';
import { ANSWER_OF, MATCHED_ANSWER_TYPES } from '../shared/protocol/chat-frames.js';
import type { ClientMsgId, ErrorFrame, Seq, Uid } from '../shared/protocol/frames.js';
import { ClientError } from './client-error.js';
import { Emitter } from './emitter.js';

/** Message ids remembered for duplicate detection. */
export const SEEN_MESSAGE_IDS = 10_000;
/** A pull that failed on an open connection is tried again after this long. */
export const PULL_RETRY_MS = 1000;
/** A send refused for a passing reason (a replica died, a store blinked) is tried this often more. */
export const SEND_RETRIES = 5;
const TRANSIENT_CODES: ReadonlySet<string> = new Set(['unavailable', 'timeout', 'internal', 'overloaded']);

export interface ChatChannelEvents {
  /** A private message not delivered before (either direction: the user's other devices' sends too). */
  private: [message: PrivateMessage];
  /** A group message not delivered before. */
  group: [message: GroupMessage];
  /** `from` read the conversation with this user up to `cseq`. */
  receipt: [receipt: ReceiptFrame];
  /** A newer login of the same device type replaced this connection; the client does not reconnect. */
  kicked: [frame: KickedFrame];
  /** A pending group invite: pushed when it is made, and each one again in the login push. */
  invite: [invite: Omit<GroupInviteFrame, 't'>];
  /** Messages retention dropped before this device got them (inbox when `group` is undefined). */
  gap: [gap: { from: Seq; to: Seq; group?: GroupId }];
}

/** What the channel needs from the client that owns the connection. */
export interface ChatTransport {
  /** Writes a frame on the open connection; false when there is none. */
  transmit(frame: ChatClientFrame): boolean;
  isOpen(): boolean;
  newMessageId(): ClientMsgId;
  requestTimeoutMs: number;
}

interface Waiter<T> { resolve(value: T): void; reject(error: ClientError): void; timer: ReturnType<typeof setTimeout> | null }

interface PendingChatSend extends Waiter<SentFrame> {
  frame: ChatClientFrame & { id: ClientMsgId };
  onWire: boolean;
  /** Transient failures so far; the same id makes every retry safe. */
  retries: number;
}

/** Requests matched to their answers by the answer's type (and group); `pm` and `gm` go by id. */
type RequestType = MatchedRequestType;

export class ChatChannel extends Emitter<ChatChannelEvents> {
  private readonly seen = new Set<MessageId>();
  private readonly seenOrder: MessageId[] = [];
  private readonly sends = new Map<ClientMsgId, PendingChatSend>();
  /** Keyed by the answer's type and group: answers of one key come back in the order asked. */
  private readonly waiters = new Map<string, Array<Waiter<ChatServerFrame>>>();
  /** The highest inbox seq this device has processed without a hole below it. */
  private inboxSeq = 0;
  private ackedInboxSeq = 0;
  private readonly groupSeqs = new Map<GroupId, Seq>();
  private readonly ackedGroupSeqs = new Map<GroupId, Seq>();
  private pulling = false;
  private pullAgain = false;
  private readonly groupPulls = new Set<GroupId>();
  private ackScheduled = false;

  constructor(private readonly transport: ChatTransport) {
    super();
  }

  // ---- calls ---------------------------------------------------------------------------------------

  /** Sends a private message; resolves with `sent` once it is stored. `id` makes retries idempotent. */
  sendPrivate(to: Uid, text: string, options: { id?: ClientMsgId } = {}): Promise<SentFrame> {
    return this.send({ t: 'pm', to, id: options.id ?? this.transport.newMessageId(), text });
  }

  /** Sends to a group the user is a member of; resolves with `sent` (its seq is the group seq). */
  sendGroup(group: GroupId, text: string, options: { id?: ClientMsgId } = {}): Promise<SentFrame> {
    return this.send({ t: 'gm', group, id: options.id ?? this.transport.newMessageId(), text });
  }

  /** Marks the conversation with `peer` read up to `cseq`; the peer gets a receipt. */
  markRead(peer: Uid, cseq: Seq): void {
    this.transport.transmit({ t: 'read', peer, cseq });
  }

  /** A page of the conversation with `peer`, older than `beforeSeq` (a cseq). Not delivered as events. */
  history(peer: Uid, options: { beforeSeq?: Seq; limit?: number } = {}): Promise<ConvHistoryResultFrame> {
    return this.request({ t: 'conv_history', peer, ...options }) as Promise<ConvHistoryResultFrame>;
  }

  /** Conversations and groups with their unread counts. */
  conversations(): Promise<ConversationSummary[]> {
    return (this.request({ t: 'convs' }) as Promise<ConvsResultFrame>).then((frame) => frame.convs);
  }

  block(uid: Uid): Promise<BlockedFrame> { return this.request({ t: 'block', uid }) as Promise<BlockedFrame>; }
  unblock(uid: Uid): Promise<BlockedFrame> { return this.request({ t: 'unblock', uid }) as Promise<BlockedFrame>; }

  createGroup(group: GroupId, members: Uid[] = []): Promise<GroupInfoFrame> {
    return this.request({ t: 'group_create', group, members }) as Promise<GroupInfoFrame>;
  }

  addMembers(group: GroupId, uids: Uid[], role: 'admin' | 'member' = 'member'): Promise<GroupInfoFrame> {
    return this.request({ t: 'group_add', group, uids, role }) as Promise<GroupInfoFrame>;
  }

  removeMembers(group: GroupId, uids: Uid[]): Promise<GroupInfoFrame> {
    return this.request({ t: 'group_remove', group, uids }) as Promise<GroupInfoFrame>;
  }

  members(group: GroupId, options: { cursor?: string; limit?: number } = {}): Promise<GroupMembersResultFrame> {
    return this.request({ t: 'group_members', group, ...options }) as Promise<GroupMembersResultFrame>;
  }

  /** The user's pending group invites, oldest first. */
  invites(): Promise<GroupInviteView[]> {
    return (this.request({ t: 'group_invites' }) as Promise<GroupInvitesFrame>).then((frame) => frame.invites);
  }

  /** A page of a group's pending invites (for its members). */
  groupInvites(group: GroupId, options: { cursor?: string; limit?: number } = {}): Promise<GroupInvitesFrame> {
    return this.request({ t: 'group_invites', group, ...options }) as Promise<GroupInvitesFrame>;
  }

  /** Accepts the invite to `group`: messages sent from now on are delivered. */
  acceptInvite(group: GroupId): Promise<GroupInfoFrame> {
    return this.request({ t: 'group_join', group }) as Promise<GroupInfoFrame>;
  }

  /** Leaves `group`, or declines the invite to it. */
  leaveGroup(group: GroupId): Promise<GroupInfoFrame> {
    return this.request({ t: 'group_leave', group }) as Promise<GroupInfoFrame>;
  }

  /** The highest inbox seq processed without a hole (and acknowledged, or about to be). */
  get inboxCursor(): Seq {
    return this.inboxSeq;
  }

  // ---- the client's hooks --------------------------------------------------------------------------

  /**
   * A connection is ready: resend what is unanswered. The login push that follows starts the sync
   * (a client that uses only rooms sends nothing more).
   */
  connected(): void {
    for (const pending of this.sends.values()) if (!pending.onWire) this.transmitSend(pending);
  }

  /** The connection ended: requests fail, sends wait for the next connection. */
  connectionLost(error: ClientError): void {
    for (const [, queue] of this.waiters) {
      for (const waiter of queue) {
        if (waiter.timer) clearTimeout(waiter.timer);
        waiter.reject(error);
      }
    }
    this.waiters.clear();
    for (const pending of this.sends.values()) {
      if (pending.timer) clearTimeout(pending.timer);
      pending.timer = null;
      pending.onWire = false;
    }
    this.pulling = false;
    this.pullAgain = false;
    this.groupPulls.clear();
  }

  /** The client was closed or gave up: sends reject too. */
  closed(error: ClientError): void {
    this.connectionLost(error);
    for (const pending of this.sends.values()) pending.reject(new ClientError(error.code, error.message, { id: pending.frame.id }));
    this.sends.clear();
  }

  /** Handles a chat frame; false for frames that are not chat frames. */
  onFrame(frame: { t: string }): boolean {
    const chat = frame as ChatServerFrame;
    switch (chat.t) {
      case 'sent': this.onSent(chat); return true;
      case 'inbox': this.onInbox(chat); return true;
      case 'group_msgs': this.onGroupMessages(chat); return true;
      case 'receipt': this.emit('receipt', chat); return true;
      case 'kicked': this.emit('kicked', chat); return true;
      case 'group_invite': {
        const { t: _t, ...invite } = chat;
        this.emit('invite', invite);
        return true;
      }
      default:
        if (!MATCHED_ANSWER_TYPES.has(chat.t)) return false;
        this.answer(chat);
        return true;
    }
  }

  /** Matches an error frame to a chat request; false when it answers none. */
  onError(frame: ErrorFrame): boolean {
    if ((frame.ref === 'pm' || frame.ref === 'gm') && frame.id !== undefined) {
      const pending = this.sends.get(frame.id);
      if (!pending) return false;
      if (pending.timer) clearTimeout(pending.timer);
      pending.timer = null;
      pending.onWire = false;
      if (TRANSIENT_CODES.has(frame.code) && pending.retries++ < SEND_RETRIES) {
        pending.timer = setTimeout(() => {
          pending.timer = null;
          if (this.sends.get(pending.frame.id) === pending && this.transport.isOpen()) this.transmitSend(pending);
        }, Math.max(PULL_RETRY_MS, frame.retryAfterMs ?? 0));
        return true;
      }
      this.sends.delete(frame.id);
      pending.reject(ClientError.fromFrame(frame));
      return true;
    }
    const type = frame.ref as RequestType | undefined;
    if (type === undefined || !Object.hasOwn(ANSWER_OF, type)) return false;
    const key = [...this.waiters.keys()].find((candidate) => candidate.startsWith(`${ANSWER_OF[type]}/`));
    const waiter = key === undefined ? undefined : this.shift(key);
    if (!waiter) return false;
    waiter.reject(ClientError.fromFrame(frame));
    return true;
  }

  // ---- delivery ------------------------------------------------------------------------------------

  private onInbox(frame: InboxFrame): void {
    if (frame.lastSeq !== undefined) {
      // The login push: the newest messages first, then the rest from this device's cursor.
      this.inboxSeq = Math.max(this.inboxSeq, frame.cursor ?? 0);
      for (const message of frame.msgs) this.deliverPrivate(message);
      if ((frame.lastSeq ?? 0) > this.inboxSeq) void this.pullInbox();
      if (frame.groups) this.syncGroups(frame.groups);
      for (const { group, role, by, ts } of frame.invites ?? []) this.emit('invite', { group, role, by, ts });
      return;
    }
    for (const message of frame.msgs) {
      this.deliverPrivate(message);
      if (message.seq === this.inboxSeq + 1 && !this.pulling) {
        this.inboxSeq = message.seq;
        this.scheduleAck();
      } else if (message.seq > this.inboxSeq + 1) {
        // A hole below this message: pull from the last contiguous seq.
        void this.pullInbox();
      }
    }
  }

  private onGroupMessages(frame: GroupMessagesFrame): void {
    for (const message of frame.msgs) {
      this.deliverGroup(message);
      const known = this.groupSeqs.get(frame.group);
      if (known === undefined || message.seq > known + 1) {
        void this.pullGroup(frame.group);
      } else if (message.seq === known + 1 && !this.groupPulls.has(frame.group)) {
        this.groupSeqs.set(frame.group, message.seq);
        this.scheduleAck();
      }
    }
  }

  /** Pulls the inbox from the contiguous seq in pages; each request acknowledges the page before. */
  private async pullInbox(): Promise<void> {
    if (this.pulling) { this.pullAgain = true; return; }
    this.pulling = true;
    try {
      do {
        this.pullAgain = false;
        let page: SyncedFrame;
        do {
          page = await (this.request({ t: 'sync', after: this.inboxSeq }) as Promise<SyncedFrame>);
          if (page.gap) this.emit('gap', { from: page.gap.from, to: page.gap.to });
          for (const message of page.msgs) this.deliverPrivate(message);
          const last = page.msgs[page.msgs.length - 1]?.seq;
          this.inboxSeq = Math.max(this.inboxSeq, last ?? (page.more ? this.inboxSeq : page.lastSeq));
        } while (page.more);
      } while (this.pullAgain);
      this.scheduleAck();
    } catch {
      // A lost connection pulls again on its next login push; an open one tries again shortly.
      if (this.transport.isOpen()) setTimeout(() => { if (this.transport.isOpen()) void this.pullInbox(); }, PULL_RETRY_MS);
    } finally {
      this.pulling = false;
    }
  }

  private async pullGroup(group: GroupId): Promise<void> {
    if (this.groupPulls.has(group)) return;
    this.groupPulls.add(group);
    try {
      let after = this.groupSeqs.get(group);
      let page: GroupSyncedFrame;
      do {
        page = await (this.request(after === undefined ? { t: 'group_sync', group } : { t: 'group_sync', group, after }) as Promise<GroupSyncedFrame>);
        if (page.gap) this.emit('gap', { ...page.gap, group });
        for (const message of page.msgs) this.deliverGroup(message);
        const last = page.msgs[page.msgs.length - 1]?.seq;
        after = Math.max(after ?? page.cursor, last ?? (page.more ? page.cursor : page.lastSeq));
        this.groupSeqs.set(group, after);
      } while (page.more);
      this.scheduleAck();
    } catch {
      // Not a member any more, or the connection went away: the next sync decides.
    } finally {
      this.groupPulls.delete(group);
    }
  }

  /** Learns each group's cursor from the login push and pulls the groups with unread messages. */
  private syncGroups(convs: readonly ConversationSummary[]): void {
    for (const conv of convs) {
      if (conv.group === undefined) continue;
      const known = this.groupSeqs.get(conv.group);
      if (known === undefined || known < conv.readSeq) this.groupSeqs.set(conv.group, conv.readSeq);
      this.ackedGroupSeqs.set(conv.group, Math.max(this.ackedGroupSeqs.get(conv.group) ?? 0, conv.readSeq));
      if (conv.lastSeq > (this.groupSeqs.get(conv.group) ?? 0)) void this.pullGroup(conv.group);
    }
  }

  private deliverPrivate(message: PrivateMessage): void {
    if (this.remember(message.mid)) this.emit('private', message);
  }

  private deliverGroup(message: GroupMessage): void {
    if (this.remember(message.mid)) this.emit('group', message);
  }

  /** True the first time a message id is seen. */
  private remember(mid: MessageId): boolean {
    if (this.seen.has(mid)) return false;
    this.seen.add(mid);
    this.seenOrder.push(mid);
    if (this.seenOrder.length > SEEN_MESSAGE_IDS) this.seen.delete(this.seenOrder.shift()!);
    return true;
  }

  /** Acknowledges what was processed, once per turn of the event loop whatever the number of messages. */
  private scheduleAck(): void {
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    queueMicrotask(() => {
      this.ackScheduled = false;
      if (!this.transport.isOpen()) return;
      if (this.inboxSeq > this.ackedInboxSeq && this.transport.transmit({ t: 'inbox_ack', seq: this.inboxSeq })) this.ackedInboxSeq = this.inboxSeq;
      for (const [group, seq] of this.groupSeqs) {
        if (seq > (this.ackedGroupSeqs.get(group) ?? 0) && this.transport.transmit({ t: 'group_ack', group, seq })) this.ackedGroupSeqs.set(group, seq);
      }
    });
  }

  // ---- requests and sends --------------------------------------------------------------------------

  private send(frame: ChatClientFrame & { id: ClientMsgId }): Promise<SentFrame> {
    if (this.sends.has(frame.id)) return Promise.reject(new ClientError('bad_request', `a send with id '${frame.id}' is already pending`, { id: frame.id }));
    return new Promise<SentFrame>((resolve, reject) => {
      const pending: PendingChatSend = { frame, onWire: false, retries: 0, timer: null, resolve, reject };
      this.sends.set(frame.id, pending);
      if (this.transport.isOpen()) this.transmitSend(pending);
    });
  }

  private transmitSend(pending: PendingChatSend): void {
    if (!this.transport.transmit(pending.frame)) return;
    pending.onWire = true;
    pending.timer = setTimeout(() => {
      // No answer: send again with the same id (the server deduplicates) until the client closes.
      pending.timer = null;
      pending.onWire = false;
      if (this.sends.get(pending.frame.id) === pending && this.transport.isOpen()) this.transmitSend(pending);
    }, this.transport.requestTimeoutMs);
  }

  private onSent(frame: SentFrame): void {
    const pending = this.sends.get(frame.id);
    if (!pending) return;
    this.sends.delete(frame.id);
    if (pending.timer) clearTimeout(pending.timer);
    // The sender's own message is delivered too, so every device of the user sees the same stream.
    pending.resolve(frame);
  }

  private request(frame: ChatClientFrame & { t: RequestType }): Promise<ChatServerFrame> {
    if (!this.transport.isOpen()) return Promise.reject(new ClientError('unavailable', 'not connected'));
    return new Promise<ChatServerFrame>((resolve, reject) => {
      const waiter: Waiter<ChatServerFrame> = { resolve, reject, timer: null };
      const key = keyOf(ANSWER_OF[frame.t], 'group' in frame ? frame.group : undefined);
      let queue = this.waiters.get(key);
      if (!queue) this.waiters.set(key, (queue = []));
      queue.push(waiter);
      this.transport.transmit(frame);
      waiter.timer = setTimeout(() => {
        waiter.timer = null;
        waiter.reject(new ClientError('timeout', `no answer within ${this.transport.requestTimeoutMs} ms`));
      }, this.transport.requestTimeoutMs);
    });
  }

  /** Answers are matched to requests of their type (and group), first in first out. */
  private answer(frame: ChatServerFrame): void {
    this.shift(keyOf(frame.t, 'group' in frame ? frame.group : undefined))?.resolve(frame);
  }

  private shift(key: string): Waiter<ChatServerFrame> | undefined {
    const queue = this.waiters.get(key);
    const waiter = queue?.shift();
    if (queue && queue.length === 0) this.waiters.delete(key);
    if (waiter?.timer) clearTimeout(waiter.timer);
    return waiter;
  }
}

function keyOf(answer: string, group: GroupId | undefined): string {
  return `${answer}/${group ?? ''}`;
}
