/**
 * Group chat state: members with roles, and each group message stored once in the group's log with a
 * group seq; each member has a cursor (the last group seq it acknowledged) instead of a copy of the
 * message. A member sees only messages after it joined. Redis in distributed mode (members in a hash,
 * read in chunks), memory in the all-in-one mode; one contract suite runs against both.
 *
 * Invites are kept apart from members: an invited user is not a member (it gets no messages, cannot
 * sync or send, and is not counted in `members`) until it accepts, and then sees messages from its
 * acceptance on. Pending invites count against the member limit, so invites cannot grow a group past it.
 */
import type { ClientMsgId, Seq, Uid } from '../protocol/frames.js';
import type { GroupId, GroupMessage, GroupRole } from '../protocol/chat-frames.js';
import type { ChatRetention } from './inbox-store.js';
import type { RateLimit } from './room-store.js';

export function groupMessageId(group: GroupId, seq: Seq): string {
  return `g/${group}/${seq}`;
}

export interface GroupInfo {
  group: GroupId;
  owner: Uid;
  createdAtMs: number;
  lastSeq: Seq;
  members: number;
  /** Pending invites. */
  invited: number;
}

/** A pending invite: `uid` may join `group` with `role`; `by` invited it at `atMs`. */
export interface GroupInvite {
  group: GroupId;
  uid: Uid;
  role: 'admin' | 'member';
  by: Uid;
  atMs: number;
}

export type InviteResult =
  /** `pending`: every uid of the call that is now invited, those invited by this call (`fresh`) first. */
  | { status: 'ok'; pending: Uid[]; fresh: Uid[] }
  | { status: 'unknown_group' | 'too_many_members' };

export type AcceptResult = 'joined' | 'member' | 'not_invited' | 'unknown_group' | 'too_many_members';

export interface GroupMember {
  uid: Uid;
  role: GroupRole;
  /** The group's seq when the member joined: it sees only later messages. */
  joinSeq: Seq;
}

export interface GroupSendInput {
  group: GroupId;
  from: Uid;
  cid: ClientMsgId;
  text: string;
  nowMs: number;
  rate: RateLimit;
}

/**
 * Names a group's membership: it changes with every change of who is a member (create, add, accepted
 * invite, removal of a member) and with nothing else, so two equal versions mean the same members.
 */
export type RosterVersion = string;

export type GroupSendResult =
  /** `roster`: the membership's version when the message was stored; null for a group the store has no version of (yet). */
  | { status: 'stored' | 'duplicate'; message: GroupMessage; roster: RosterVersion | null }
  | { status: 'rejected'; code: 'unknown_group' | 'not_group_member' | 'rate_limited' };

export interface GroupPage {
  msgs: GroupMessage[];
  /** The member's cursor after the call. */
  cursor: Seq;
  lastSeq: Seq;
  /** The oldest seq the member may still get: after its join and within retention. */
  firstSeq: Seq;
  /** The group's seq when the member joined. */
  joinSeq: Seq;
  /** Time of the group's newest message still held, ms since the epoch; 0 when it holds none. */
  lastTs: number;
}

export interface GroupStoreLimits extends ChatRetention {
  maxMembers: number;
}

export interface GroupStore {
  /**
   * Creates the group with `owner` and `members`, and invites `invitees` (by the owner); members and
   * invites together count against the limit.
   */
  create(group: GroupId, owner: Uid, members: readonly Uid[], nowMs: number, invitees?: readonly Uid[]): Promise<'created' | 'exists' | 'too_many_members'>;
  info(group: GroupId): Promise<GroupInfo | null>;
  member(group: GroupId, uid: Uid): Promise<GroupMember | null>;
  /**
   * Adds members (existing ones keep their role and join seq); they see messages from now on. A
   * pending invite of an added uid is used up.
   */
  addMembers(group: GroupId, uids: readonly Uid[], role: 'admin' | 'member'): Promise<'ok' | 'unknown_group' | 'too_many_members'>;
  /**
   * Makes admins of those of `uids` that are members with the role `member` (the owner stays owner,
   * admins stay admins, others are left out); answers the uids promoted, or null for an unknown group.
   */
  promote(group: GroupId, uids: readonly Uid[]): Promise<Uid[] | null>;
  /** Invites the uids that are neither members nor invited already (an invite is never renewed). */
  invite(group: GroupId, uids: readonly Uid[], role: 'admin' | 'member', by: Uid, nowMs: number): Promise<InviteResult>;
  /** Turns `uid`'s invite into membership from the group's current seq on; `member` when it is one already. */
  accept(group: GroupId, uid: Uid): Promise<AcceptResult>;
  /** `uid`'s pending invite to `group`, or null. */
  pendingInvite(group: GroupId, uid: Uid): Promise<GroupInvite | null>;
  /** A page of the group's pending invites in no particular order; `cursor` continues it. */
  invites(group: GroupId, cursor: string | undefined, limit: number): Promise<{ invites: GroupInvite[]; cursor?: string }>;
  /** The pending invites of `uid`, oldest first, at most `limit`. */
  invitesOf(uid: Uid, limit: number): Promise<GroupInvite[]>;
  /** Removes members with their cursors, and pending invites (declined or withdrawn). Resolves false for an unknown group. */
  removeMembers(group: GroupId, uids: readonly Uid[]): Promise<boolean>;
  /** A page of at most `limit` members in no particular order; `cursor` continues it (absent on the last page). */
  members(group: GroupId, cursor: string | undefined, limit: number): Promise<{ members: GroupMember[]; cursor?: string }>;
  /** Every member's uid, in chunks of about `chunk`: large groups are never read in one reply. */
  memberUids(group: GroupId, chunk: number): AsyncIterable<Uid[]>;
  /** The version of the group's membership now (RosterVersion); null for an unknown group, or one the store has no version of. */
  roster(group: GroupId): Promise<RosterVersion | null>;
  /** Checks membership, deduplicates, rates and stores once with the next group seq, atomically. */
  send(input: GroupSendInput): Promise<GroupSendResult>;
  /**
   * Messages after `after` (default: the member's cursor), never before its join; asking with
   * `after` acknowledges up to it. Null when `uid` is not a member.
   */
  sync(group: GroupId, uid: Uid, after: Seq | undefined, limit: number, nowMs: number): Promise<GroupPage | null>;
  /** Moves the member's cursor to max(cursor, min(seq, lastSeq)); null when not a member. */
  ack(group: GroupId, uid: Uid, seq: Seq, nowMs: number): Promise<Seq | null>;
  /** The groups `uid` is a member of. */
  groupsOf(uid: Uid): Promise<GroupId[]>;
  close(): Promise<void>;
}
