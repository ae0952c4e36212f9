/**
 * The private (1:1) and group chat part of the client protocol: frame types and their validator.
 * frames.ts joins these into ClientFrame / ServerFrame and hands chat frame types to
 * parseChatFrame; docs/protocol.md is the contract.
 *
 * Reliability model: the sender's `sent` comes only after the message is stored; a push or sync
 * carries the recipient's inbox seq (private) or the group seq (group); the client acknowledges what
 * it processed (`inbox_ack`, `group_ack`, or the `after` of its next `sync` page) and drops
 * duplicates by `mid`.
 */
import { fail } from '../errors.js';
import type { ClientMsgId, Seq, Uid } from './frames.js';

/** A stored chat message's id, the same for every recipient and every delivery of it. */
export type MessageId = string;
export type GroupId = string;

/** Uids are Redis key parts and travel in frames; the alphabet matches the token's `sub`. */
export const UID_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/;
export const GROUP_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const CHAT_CLIENT_MSG_ID_MAX_LENGTH = 64;
/** Most uids one group frame may add or remove; larger changes go in several frames or over HTTP. */
export const MAX_UIDS_PER_FRAME = 500;

export function isUidValue(value: unknown): value is Uid {
  return typeof value === 'string' && UID_PATTERN.test(value);
}

export function isGroupId(value: unknown): value is GroupId {
  return typeof value === 'string' && GROUP_ID_PATTERN.test(value);
}

export const GROUP_ROLES = ['owner', 'admin', 'member'] as const;
export type GroupRole = (typeof GROUP_ROLES)[number];

/** A private message as delivered to one user: `seq` is that user's inbox seq. */
export interface PrivateMessage {
  seq: Seq;
  mid: MessageId;
  /** The message's seq in its conversation (the same for both users). */
  cseq: Seq;
  from: Uid;
  to: Uid;
  text: string;
  /** Server time when it was stored, in ms since the epoch. */
  ts: number;
  cid: ClientMsgId;
}

/** A group message, stored once: `seq` is the group's seq. */
export interface GroupMessage {
  seq: Seq;
  mid: MessageId;
  group: GroupId;
  from: Uid;
  text: string;
  ts: number;
  cid: ClientMsgId;
}

// ---- client → server ----------------------------------------------------------------------------

/** Send a private message. */
export interface PrivateSendFrame { t: 'pm'; to: Uid; id: ClientMsgId; text: string }
/** Pull the inbox after `after` (default: this device's cursor); asking for it acknowledges up to `after`. */
export interface SyncFrame { t: 'sync'; after?: Seq; limit?: number }
/** This device processed the inbox up to `seq`. */
export interface InboxAckFrame { t: 'inbox_ack'; seq: Seq }
/** The reader read the conversation with `peer` up to `cseq`; the peer gets a receipt. */
export interface ReadFrame { t: 'read'; peer: Uid; cseq: Seq }
/** Roaming history: a page of the conversation with `peer`, older than `beforeSeq` (a cseq). */
export interface ConvHistoryFrame { t: 'conv_history'; peer: Uid; beforeSeq?: Seq; limit?: number }
/** The user's conversations with unread counts, newest first. */
/**
 * The user's conversations and groups together, by last activity, newest first: at most `limit`, and
 * `cursor` (from the previous page) continues the list.
 */
export interface ConvsFrame { t: 'convs'; cursor?: string; limit?: number }
export interface BlockFrame { t: 'block'; uid: Uid }
export interface UnblockFrame { t: 'unblock'; uid: Uid }
/** Send to a group. */
export interface GroupSendFrame { t: 'gm'; group: GroupId; id: ClientMsgId; text: string }
/** Pull a group's messages after `after` (default: the member's cursor), acknowledging up to `after`. */
export interface GroupSyncFrame { t: 'group_sync'; group: GroupId; after?: Seq; limit?: number }
export interface GroupAckFrame { t: 'group_ack'; group: GroupId; seq: Seq }
/** Creates a group with the caller as owner. */
export interface GroupCreateFrame { t: 'group_create'; group: GroupId; members?: Uid[] }
export interface GroupAddFrame { t: 'group_add'; group: GroupId; uids: Uid[]; role?: 'admin' | 'member' }
export interface GroupRemoveFrame { t: 'group_remove'; group: GroupId; uids: Uid[] }
export interface GroupMembersFrame { t: 'group_members'; group: GroupId; cursor?: string; limit?: number }
/** Accepts the caller's pending invite to `group`: it becomes a member, seeing messages from now on. */
export interface GroupJoinFrame { t: 'group_join'; group: GroupId }
/** Leaves `group`, or declines the pending invite to it. */
export interface GroupLeaveFrame { t: 'group_leave'; group: GroupId }
/** Without `group`: the caller's pending invites; with it: the group's pending invites (for its members). */
export interface GroupInvitesListFrame { t: 'group_invites'; group?: GroupId; cursor?: string; limit?: number }

export type ChatClientFrame =
  | PrivateSendFrame | SyncFrame | InboxAckFrame | ReadFrame | ConvHistoryFrame | ConvsFrame | BlockFrame | UnblockFrame
  | GroupSendFrame | GroupSyncFrame | GroupAckFrame | GroupCreateFrame | GroupAddFrame | GroupRemoveFrame | GroupMembersFrame
  | GroupJoinFrame | GroupLeaveFrame | GroupInvitesListFrame;
export type ChatClientFrameType = ChatClientFrame['t'];

// ---- server → client ----------------------------------------------------------------------------

/** The message is stored: `seq` is the sender's inbox seq (private) or the group seq. */
export interface SentFrame { t: 'sent'; id: ClientMsgId; mid: MessageId; seq: Seq; ts: number; to?: Uid; group?: GroupId; duplicate?: true }
/**
 * Private messages pushed to a device; on login also the device's `cursor`, the inbox's `lastSeq`
 * and the groups with unread messages.
 */
export interface InboxFrame {
  t: 'inbox'; msgs: PrivateMessage[]; cursor?: Seq; lastSeq?: Seq; groups?: ConversationSummary[];
  /** At login: the user's pending group invites, when it has any. */
  invites?: GroupInviteView[];
}
/** A page of the inbox after `after`; `cursor` is this device's acknowledged seq. */
export interface SyncedFrame { t: 'synced'; msgs: PrivateMessage[]; cursor: Seq; lastSeq: Seq; more: boolean; gap?: { from: Seq; to: Seq } }
/** `from` read the conversation with the receiving user up to `cseq`. */
export interface ReceiptFrame { t: 'receipt'; from: Uid; cseq: Seq }
export interface ConvHistoryResultFrame { t: 'conv_history'; peer: Uid; msgs: PrivateMessage[]; more: boolean }
/** A conversation (`peer`) or a group (`group`); `readSeq` is the read cursor (private) or the member's cursor (group). */
export interface ConversationSummary { peer?: Uid; group?: GroupId; lastSeq: Seq; readSeq: Seq; unread: number; ts?: number }
/** A page of the conversation list; `cursor` when there may be more. */
export interface ConvsResultFrame { t: 'convs'; convs: ConversationSummary[]; cursor?: string }
export interface BlockedFrame { t: 'blocked'; uid: Uid; blocked: boolean }
/** This connection was replaced by a newer login of the same device type; it closes next. */
export interface KickedFrame { t: 'kicked'; reason: 'device_replaced'; device: string }
/** Group messages pushed to a member. */
export interface GroupMessagesFrame { t: 'group_msgs'; group: GroupId; msgs: GroupMessage[] }
export interface GroupSyncedFrame { t: 'group_synced'; group: GroupId; msgs: GroupMessage[]; cursor: Seq; lastSeq: Seq; more: boolean; gap?: { from: Seq; to: Seq } }
/**
 * A group as its caller may see it: `members` and `invited` (pending invites) are counts; `role` is the
 * caller's; `blocked` names the uids of this call that were not added or invited because they block
 * the caller.
 */
export interface GroupInfoFrame { t: 'group'; group: GroupId; members: number; invited: number; lastSeq: Seq; role?: GroupRole; blocked?: Uid[] }
export interface GroupMembersResultFrame { t: 'group_members'; group: GroupId; members: Array<{ uid: Uid; role: GroupRole }>; cursor?: string }
/** A pending invite: `uid` may join `group` as `role`; `by` invited it at `ts` (ms since the epoch). */
export interface GroupInviteView { group: GroupId; uid: Uid; role: 'admin' | 'member'; by: Uid; ts: number }
/** Pushed to an invited user's online devices (one frame for every invitee of a call: no `uid`). */
export interface GroupInviteFrame { t: 'group_invite'; group: GroupId; role: 'admin' | 'member'; by: Uid; ts: number }
/** Answer to `group_invites`: the caller's invites, or (with `group`) the group's; `cursor` when there are more. */
export interface GroupInvitesFrame { t: 'group_invites'; group?: GroupId; invites: GroupInviteView[]; cursor?: string }

export type ChatServerFrame =
  | SentFrame | InboxFrame | SyncedFrame | ReceiptFrame | ConvHistoryResultFrame | ConvsResultFrame | BlockedFrame
  | KickedFrame | GroupMessagesFrame | GroupSyncedFrame | GroupInfoFrame | GroupMembersResultFrame | GroupInviteFrame | GroupInvitesFrame;

// ---- validation ---------------------------------------------------------------------------------

export function isChatClientFrameType(type: string): type is ChatClientFrameType {
  return Object.hasOwn(CHAT_REQUESTS, type);
}

function uidField(frame: Record<string, unknown>, field: string): Uid {
  const value = frame[field];
  if (!isUidValue(value)) throw fail.bad_frame(`'${field}' must be a uid matching ${UID_PATTERN}`);
  return value;
}

function groupField(frame: Record<string, unknown>, field = 'group'): GroupId {
  const value = frame[field];
  if (value === undefined) throw fail.bad_frame(`'${field}' is required`);
  if (!isGroupId(value)) throw fail.bad_group();
  return value;
}

function seqField(frame: Record<string, unknown>, field: string): Seq {
  const value = frame[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw fail.bad_frame(`'${field}' must be a non-negative integer`);
  return value;
}

function optional<T>(frame: Record<string, unknown>, field: string, read: (frame: Record<string, unknown>, field: string) => T): T | undefined {
  return frame[field] === undefined || frame[field] === null ? undefined : read(frame, field);
}

function limitField(frame: Record<string, unknown>, field: string): number {
  const value = frame[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw fail.bad_frame(`'${field}' must be a positive integer`);
  return value;
}

function idField(frame: Record<string, unknown>): ClientMsgId {
  const id = frame.id;
  if (typeof id !== 'string' || id.length === 0 || id.length > CHAT_CLIENT_MSG_ID_MAX_LENGTH) {
    throw fail.bad_frame(`'id' must be a string of 1 to ${CHAT_CLIENT_MSG_ID_MAX_LENGTH} characters`);
  }
  return id;
}

function textField(frame: Record<string, unknown>): string {
  if (typeof frame.text !== 'string') throw fail.bad_frame("'text' must be a string");
  return frame.text;
}

function uidList(frame: Record<string, unknown>, field: string): Uid[] {
  const value = frame[field];
  if (!Array.isArray(value) || value.length > MAX_UIDS_PER_FRAME || !value.every(isUidValue)) {
    throw fail.bad_frame(`'${field}' must be a list of at most ${MAX_UIDS_PER_FRAME} uids`);
  }
  return [...new Set(value as Uid[])];
}

function addRoleField(frame: Record<string, unknown>, field: string): 'admin' | 'member' {
  const role = frame[field];
  if (role !== 'admin' && role !== 'member') throw fail.bad_frame(`'${field}' must be admin or member`);
  return role;
}

function cursorField(frame: Record<string, unknown>, field: string): string {
  const cursor = frame[field];
  if (typeof cursor !== 'string' || cursor.length > 32) throw fail.bad_frame(`'${field}' must be a string from an earlier page`);
  return cursor;
}

/** Only the fields the parser checked, with undefined ones left out. */
function defined<T extends object>(frame: T): T {
  for (const key of Object.keys(frame) as Array<keyof T>) if (frame[key] === undefined) delete frame[key];
  return frame;
}

/** The bus operation that carries a request to the room service: subject `svc.chat.<op>`. */
export type ChatOp = 'send' | 'sync' | 'ack' | 'op';
export type ChatFrameOf<K extends ChatClientFrameType> = Extract<ChatClientFrame, { t: K }>;

interface ChatRequestSpec<K extends ChatClientFrameType> {
  op: ChatOp;
  /** The frame type of the answer; null: none unless it fails. `sent` is matched by the client message id, the others by type (and group). */
  answer: ChatServerFrame['t'] | null;
  /** Checks a decoded frame of this type; throws bad_frame / bad_group. */
  parse(frame: Record<string, unknown>): ChatFrameOf<K>;
}

/**
 * Every chat request, declared once: the bus operation that carries it, the frame type of its answer
 * and its check. The gateway's forwarding, the room service's subjects and checks, and the SDK's
 * matching derive from it; the room service binds each type to its handler (chat-handlers.ts).
 */
export const CHAT_REQUESTS = {
  pm: { op: 'send', answer: 'sent', parse: (f) => ({ t: 'pm', to: uidField(f, 'to'), id: idField(f), text: textField(f) }) },
  sync: { op: 'sync', answer: 'synced', parse: (f) => defined({ t: 'sync', after: optional(f, 'after', seqField), limit: optional(f, 'limit', limitField) }) },
  inbox_ack: { op: 'ack', answer: null, parse: (f) => ({ t: 'inbox_ack', seq: seqField(f, 'seq') }) },
  read: { op: 'op', answer: null, parse: (f) => ({ t: 'read', peer: uidField(f, 'peer'), cseq: seqField(f, 'cseq') }) },
  conv_history: {
    op: 'op', answer: 'conv_history',
    parse: (f) => defined({ t: 'conv_history', peer: uidField(f, 'peer'), beforeSeq: optional(f, 'beforeSeq', seqField), limit: optional(f, 'limit', limitField) }),
  },
  convs: { op: 'op', answer: 'convs', parse: (f) => defined({ t: 'convs', cursor: optional(f, 'cursor', cursorField), limit: optional(f, 'limit', limitField) }) },
  block: { op: 'op', answer: 'blocked', parse: (f) => ({ t: 'block', uid: uidField(f, 'uid') }) },
  unblock: { op: 'op', answer: 'blocked', parse: (f) => ({ t: 'unblock', uid: uidField(f, 'uid') }) },
  gm: { op: 'send', answer: 'sent', parse: (f) => ({ t: 'gm', group: groupField(f), id: idField(f), text: textField(f) }) },
  group_sync: {
    op: 'sync', answer: 'group_synced',
    parse: (f) => defined({ t: 'group_sync', group: groupField(f), after: optional(f, 'after', seqField), limit: optional(f, 'limit', limitField) }),
  },
  group_ack: { op: 'ack', answer: null, parse: (f) => ({ t: 'group_ack', group: groupField(f), seq: seqField(f, 'seq') }) },
  group_create: { op: 'op', answer: 'group', parse: (f) => defined({ t: 'group_create', group: groupField(f), members: optional(f, 'members', uidList) }) },
  group_add: {
    op: 'op', answer: 'group',
    parse: (f) => defined({ t: 'group_add', group: groupField(f), uids: uidList(f, 'uids'), role: optional(f, 'role', addRoleField) }),
  },
  group_remove: { op: 'op', answer: 'group', parse: (f) => ({ t: 'group_remove', group: groupField(f), uids: uidList(f, 'uids') }) },
  group_members: {
    op: 'op', answer: 'group_members',
    parse: (f) => defined({ t: 'group_members', group: groupField(f), cursor: optional(f, 'cursor', cursorField), limit: optional(f, 'limit', limitField) }),
  },
  group_join: { op: 'op', answer: 'group', parse: (f) => ({ t: 'group_join', group: groupField(f) }) },
  group_leave: { op: 'op', answer: 'group', parse: (f) => ({ t: 'group_leave', group: groupField(f) }) },
  group_invites: {
    op: 'op', answer: 'group_invites',
    parse: (f) => defined({ t: 'group_invites', group: optional(f, 'group', groupField), cursor: optional(f, 'cursor', cursorField), limit: optional(f, 'limit', limitField) }),
  },
} as const satisfies { [K in ChatClientFrameType]: ChatRequestSpec<K> };

/** The bus operations, each a subject the room service answers. */
export const CHAT_OPS: readonly ChatOp[] = [...new Set(Object.values(CHAT_REQUESTS).map((spec) => spec.op))];

export const CHAT_CLIENT_FRAME_TYPES = Object.keys(CHAT_REQUESTS) as ChatClientFrameType[];

/** Requests answered by a frame matched by its type (and group): request type → answer type. */
export type MatchedRequestType = {
  [K in ChatClientFrameType]: (typeof CHAT_REQUESTS)[K]['answer'] extends 'sent' | null ? never : K
}[ChatClientFrameType];
export const ANSWER_OF = Object.fromEntries(CHAT_CLIENT_FRAME_TYPES
  .filter((type) => CHAT_REQUESTS[type].answer !== null && CHAT_REQUESTS[type].answer !== 'sent')
  .map((type) => [type, CHAT_REQUESTS[type].answer])) as { [K in MatchedRequestType]: NonNullable<(typeof CHAT_REQUESTS)[K]['answer']> };
/** The answer frames matched to a request by type. */
export const MATCHED_ANSWER_TYPES: ReadonlySet<string> = new Set(Object.values(ANSWER_OF));

/** Checks a decoded chat frame whose `t` is one of CHAT_CLIENT_FRAME_TYPES; throws bad_frame / bad_group. */
export function parseChatFrame<K extends ChatClientFrameType>(type: K, frame: Record<string, unknown>): ChatFrameOf<K> {
  return (CHAT_REQUESTS[type] as ChatRequestSpec<K>).parse(frame);
}
