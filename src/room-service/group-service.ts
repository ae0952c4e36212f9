/**
 * Group chat decisions: membership with roles (owner, admin, member), and messages stored once in
 * the group's log, then fanned out here, in the business layer, to the members that are online,
 * grouped by gateway (one publish per gateway). Members that are offline catch up from their cursor;
 * an offline-push event names them.
 *
 * Who may do what: the owner adds and removes anyone but itself, and makes admins; an admin adds and
 * removes members; a member may remove only itself (leave). Backends (HTTP API) act as the owner.
 * Who may create groups, and whether a user added by another user is invited (a member only once it
 * accepts) or added at once, is the group policy (group-policy.ts). An invited user is not a member:
 * group sends, syncs, summaries and offline pushes never see it; it gets a `group_invite` push instead.
 * A user who blocked the adder is neither added nor invited.
 */
import type { Clock } from '../shared/clock.js';
import type { RoomServiceMetrics } from '../shared/metrics.js';
import { fail, type RoomcastError } from '../shared/errors.js';
import type {
  ConversationSummary, GroupId, GroupInfoFrame, GroupInviteView, GroupInvitesFrame, GroupMembersResultFrame, GroupRole,
  GroupSyncedFrame, SentFrame,
} from '../shared/protocol/chat-frames.js';
import type { Seq, Uid } from '../shared/protocol/frames.js';
import type { GroupInvite, GroupStore, RosterVersion } from '../shared/store/group-store.js';
import type { RateLimit } from '../shared/store/room-store.js';
import type { InboxStore } from '../shared/store/inbox-store.js';
import type { ChatHandlers } from './chat-handlers.js';
import type { ChatRouting } from './chat-routing.js';
import { addsDirectly, checkMayCreateGroup, isTrusted, type GroupPolicy, type GroupPrincipal } from './group-policy.js';
import { checkText, storeCall } from './service-calls.js';
import { MemberLists } from './member-lists.js';
import { LOOKUP_CHUNK } from './recipient-router.js';

/** The frame types group chat answers. */
export type GroupFrameType =
  | 'gm' | 'group_sync' | 'group_ack' | 'group_create' | 'group_add' | 'group_remove' | 'group_members' | 'group_join' | 'group_leave' | 'group_invites';

export interface GroupLimits {
  maxTextLength: number;
  rate: RateLimit;
  syncPage: number;
  /** Largest member page. */
  membersPage: number;
}

export interface GroupServiceDeps {
  groups: GroupStore;
  /** Live pushes with offline-push events, as for private chat. */
  routing: Pick<ChatRouting, 'routeSafely'>;
  /** Who blocked whom (kept with private chat): a user who blocked the adder is neither added nor invited. */
  blocks: Pick<InboxStore, 'isBlocked'>;
  clock: Clock;
  metrics: RoomServiceMetrics;
  limits: GroupLimits;
  policy: GroupPolicy;
}

/** Acting for a backend: every permission of an owner. */
export const BACKEND_ACTOR = Symbol('backend');
export type GroupActor = Uid | typeof BACKEND_ACTOR;

export class GroupService {
  /** Member lists of the groups that send, by roster version: a send does not read its group's members again. */
  private readonly memberLists = new MemberLists();

  constructor(private readonly deps: GroupServiceDeps) {}

  /** The group requests, each bound to its answer (chat-handlers.ts). */
  readonly handlers: Pick<ChatHandlers, GroupFrameType> = {
    gm: async (caller, frame) => ({ frame: await this.send(caller.uid, frame.group, frame.id, frame.text, caller.connId) }),
    group_sync: async (caller, frame) => ({ frame: await this.sync(caller.uid, frame.group, frame.after, frame.limit) }),
    group_ack: async (caller, frame) => {
      const cursor = await this.stored('groupAck', () => this.deps.groups.ack(frame.group, caller.uid, frame.seq, this.deps.clock.now()));
      if (cursor === null) throw await this.notMember(frame.group);
      return {};
    },
    group_create: async (caller, frame) => ({ frame: await this.create(caller.uid, frame.group, frame.members ?? [], caller.role) }),
    group_add: async (caller, frame) => ({ frame: await this.add(caller.uid, frame.group, frame.uids, frame.role ?? 'member', caller.role) }),
    group_remove: async (caller, frame) => ({ frame: await this.remove(caller.uid, frame.group, frame.uids) }),
    group_members: async (caller, frame) => ({ frame: await this.members(caller.uid, frame.group, frame.cursor, frame.limit) }),
    group_join: async (caller, frame) => ({ frame: await this.join(caller.uid, frame.group) }),
    group_leave: async (caller, frame) => ({ frame: await this.leave(caller.uid, frame.group) }),
    group_invites: async (caller, frame) => ({
      frame: frame.group === undefined
        ? { t: 'group_invites', invites: await this.invitesOf(caller.uid, frame.limit) }
        : await this.groupInvites(caller.uid, frame.group, frame.cursor, frame.limit),
    }),
  };

  /**
   * Creates the group with `owner`, if the policy lets `principal` create groups; `members` are added
   * or invited (by the owner) as the policy says.
   */
  async create(owner: Uid, group: GroupId, members: readonly Uid[], principal: GroupPrincipal): Promise<GroupInfoFrame> {
    const { policy, clock } = this.deps;
    checkMayCreateGroup(policy, principal);
    const nowMs = clock.now();
    const direct = addsDirectly(policy, principal);
    const blocked = isTrusted(principal) ? [] : await this.blockersOf(owner, members);
    const admitted = members.filter((uid) => !blocked.includes(uid) && uid !== owner);
    const status = await this.stored('groupCreate', () =>
      this.deps.groups.create(group, owner, direct ? admitted : [], nowMs, direct ? [] : admitted));
    if (status === 'exists') throw fail.group_exists(group);
    if (status === 'too_many_members') throw tooManyMembers();
    if (!direct) await this.pushInvites(admitted, { group, role: 'member', by: owner, atMs: nowMs });
    return withBlocked(await this.info(group, 'owner'), blocked);
  }

  /** Adds members, or invites them when the policy wants users to accept what another user asks. */
  async add(actor: GroupActor, group: GroupId, uids: readonly Uid[], role: 'admin' | 'member', principal: GroupPrincipal): Promise<GroupInfoFrame> {
    const actorRole = await this.roleOf(actor, group);
    if (actorRole === 'member' || (role === 'admin' && actorRole !== 'owner')) {
      throw fail.forbidden(role === 'admin' ? 'only the owner makes admins' : 'only the owner and admins add members');
    }
    const { groups, policy, clock } = this.deps;
    // Members named with role admin are promoted at once (only the owner gets here with it); the
    // others are added or invited as admins.
    if (role === 'admin') {
      const promoted = await this.stored('groupPromote', () => groups.promote(group, uids));
      if (promoted === null) throw unknownGroup(group);
    }
    const blocked = actor === BACKEND_ACTOR || isTrusted(principal) ? [] : await this.blockersOf(actor, uids);
    const admitted = uids.filter((uid) => !blocked.includes(uid));
    if (actor === BACKEND_ACTOR || addsDirectly(policy, principal)) {
      const status = await this.stored('groupAdd', () => groups.addMembers(group, admitted, role));
      if (status === 'unknown_group') throw unknownGroup(group);
      if (status === 'too_many_members') throw tooManyMembers();
    } else {
      const nowMs = clock.now();
      const result = await this.stored('groupInvite', () => groups.invite(group, admitted, role, actor, nowMs));
      if (result.status !== 'ok') throw result.status === 'unknown_group' ? unknownGroup(group) : tooManyMembers();
      await this.pushInvites(result.fresh, { group, role, by: actor, atMs: nowMs });
    }
    return withBlocked(await this.info(group, actorRole), blocked);
  }

  /** Accepts `uid`'s invite: it becomes a member from the group's current seq on. Idempotent. */
  async join(uid: Uid, group: GroupId): Promise<GroupInfoFrame> {
    const status = await this.stored('groupAccept', () => this.deps.groups.accept(group, uid));
    if (status === 'unknown_group') throw unknownGroup(group);
    if (status === 'not_invited') throw fail.not_found(`no pending invite to group '${group}'`);
    if (status === 'too_many_members') throw tooManyMembers();
    const member = await this.stored('groupMember', () => this.deps.groups.member(group, uid));
    return this.info(group, member?.role);
  }

  /** A member leaves, or an invited user declines; the owner cannot leave. */
  async leave(uid: Uid, group: GroupId): Promise<GroupInfoFrame> {
    const { groups } = this.deps;
    const info = await this.stored('groupInfo', () => groups.info(group));
    if (!info) throw unknownGroup(group);
    if (info.owner === uid) throw fail.forbidden('the owner cannot be removed');
    const [member, invite] = await Promise.all([
      this.stored('groupMember', () => groups.member(group, uid)),
      this.stored('groupInvite', () => groups.pendingInvite(group, uid)),
    ]);
    if (!member && !invite) throw fail.not_group_member(group);
    await this.stored('groupRemove', () => groups.removeMembers(group, [uid]));
    return this.info(group);
  }

  /** The user's pending invites, oldest first. */
  async invitesOf(uid: Uid, limit?: number): Promise<GroupInviteView[]> {
    const size = Math.min(limit ?? this.deps.limits.membersPage, this.deps.limits.membersPage);
    return (await this.stored('groupInvitesOf', () => this.deps.groups.invitesOf(uid, size))).map(inviteView);
  }

  /** A page of the group's pending invites, for its members, backends and admins. */
  async groupInvites(actor: GroupActor, group: GroupId, cursor: string | undefined, limit: number | undefined): Promise<GroupInvitesFrame> {
    await this.roleOf(actor, group);
    const size = Math.min(limit ?? this.deps.limits.membersPage, this.deps.limits.membersPage);
    const page = await this.stored('groupInvites', () => this.deps.groups.invites(group, cursor, size));
    return { t: 'group_invites', group, invites: page.invites.map(inviteView), ...(page.cursor === undefined ? {} : { cursor: page.cursor }) };
  }

  async remove(actor: GroupActor, group: GroupId, uids: readonly Uid[]): Promise<GroupInfoFrame> {
    // Removing oneself is leaving (or declining an invite, which needs no membership).
    if (actor !== BACKEND_ACTOR && uids.length === 1 && uids[0] === actor) return this.leave(actor, group);
    const actorRole = await this.roleOf(actor, group);
    const info = await this.stored('groupInfo', () => this.deps.groups.info(group));
    if (!info) throw unknownGroup(group);
    if (uids.includes(info.owner)) throw fail.forbidden('the owner cannot be removed');
    if (actorRole === 'member') throw fail.forbidden('a member may only remove itself');
    if (actorRole === 'admin') {
      for (const uid of uids) {
        const member = await this.stored('groupMember', () => this.deps.groups.member(group, uid));
        if (member && member.role !== 'member' && uid !== actor) throw fail.forbidden('only the owner removes admins');
      }
    }
    await this.stored('groupRemove', () => this.deps.groups.removeMembers(group, uids));
    return this.info(group, actorRole);
  }

  async members(actor: GroupActor, group: GroupId, cursor: string | undefined, limit: number | undefined): Promise<GroupMembersResultFrame> {
    await this.roleOf(actor, group);
    const size = Math.min(limit ?? this.deps.limits.membersPage, this.deps.limits.membersPage);
    const page = await this.stored('groupMembers', () => this.deps.groups.members(group, cursor, size));
    return {
      t: 'group_members', group, members: page.members.map(({ uid, role }) => ({ uid, role })),
      ...(page.cursor === undefined ? {} : { cursor: page.cursor }),
    };
  }

  /** Stores once, fans out to online members by gateway, then acknowledges. */
  async send(from: Uid, group: GroupId, id: string, text: string, connId?: string): Promise<SentFrame> {
    const { groups, clock, limits, routing } = this.deps;
    checkText(text, limits.maxTextLength);
    const nowMs = clock.now();
    const result = await this.stored('groupSend', () => groups.send({ group, from, cid: id, text, nowMs, rate: limits.rate }));
    if (result.status === 'rejected') {
      if (result.code === 'unknown_group') throw unknownGroup(group);
      if (result.code === 'not_group_member') throw fail.not_group_member(group);
      throw fail.rate_limited();
    }
    const { message } = result;
    if (result.status === 'stored') this.deps.metrics.messagePublished('group');
    const frame = { t: 'group_msgs' as const, group, msgs: [message] };
    // Members are looked up in pipelined chunks, then published once per gateway.
    const members = await this.membersAt(group, result.roster);
    await routing.routeSafely(
      [{ to: members, frame, ...(connId ? { except: connId } : {}) }],
      { kind: 'group', mid: message.mid, from, text, ts: message.ts, group },
      (uid) => uid !== from,
    );
    return {
      t: 'sent', id, mid: message.mid, seq: message.seq, ts: message.ts, group,
      ...(result.status === 'duplicate' ? { duplicate: true as const } : {}),
    };
  }

  /**
   * Every member's uid at roster version `roster` (the one the store answered with the message): the
   * list held for that version, or read in chunks and then held if the membership did not change
   * while it was read.
   */
  private async membersAt(group: GroupId, roster: RosterVersion | null): Promise<readonly Uid[]> {
    const readAtMs = this.deps.clock.now();
    const held = roster === null ? undefined : this.memberLists.get(group, roster, readAtMs);
    if (held) return held;
    // A scan may name a uid twice (Redis HSCAN while the hash grows): each member once.
    const read = new Set<Uid>();
    for await (const uids of this.deps.groups.memberUids(group, LOOKUP_CHUNK)) for (const uid of uids) read.add(uid);
    const members = [...read];
    if (roster !== null && (await this.stored('groupRoster', () => this.deps.groups.roster(group))) === roster) {
      this.memberLists.set(group, roster, members, readAtMs);
    }
    return members;
  }

  async sync(uid: Uid, group: GroupId, after: Seq | undefined, requested: number | undefined): Promise<GroupSyncedFrame> {
    const limit = Math.min(requested ?? this.deps.limits.syncPage, this.deps.limits.syncPage);
    const page = await this.stored('groupSync', () => this.deps.groups.sync(group, uid, after, limit, this.deps.clock.now()));
    if (!page) throw await this.notMember(group);
    // Messages from before the join are not the member's: they are never a gap.
    const from = Math.max(after ?? page.cursor, page.joinSeq);
    const lastShown = page.msgs[page.msgs.length - 1]?.seq ?? Math.max(from, page.firstSeq - 1);
    const synced: GroupSyncedFrame = { t: 'group_synced', group, msgs: page.msgs, cursor: page.cursor, lastSeq: page.lastSeq, more: lastShown < page.lastSeq };
    if (from + 1 < page.firstSeq) synced.gap = { from: from + 1, to: page.firstSeq - 1 };
    return synced;
  }

  /** The user's groups with their unread counts (messages after the member's cursor) and last activity. */
  async summaries(uid: Uid): Promise<ConversationSummary[]> {
    const { groups, clock } = this.deps;
    const ids = await this.stored('groupsOf', () => groups.groupsOf(uid));
    // One read per group, each in its group's slot, sent together.
    const pages = await Promise.all(ids.map((group) => this.stored('groupSync', () => groups.sync(group, uid, undefined, 0, clock.now()))));
    const summaries: ConversationSummary[] = [];
    pages.forEach((page, i) => {
      if (page) {
        summaries.push({
          group: ids[i]!, lastSeq: page.lastSeq, readSeq: page.cursor, unread: Math.max(0, page.lastSeq - page.cursor), ...(page.lastTs > 0 ? { ts: page.lastTs } : {}),
        });
      }
    });
    return summaries;
  }

  async info(group: GroupId, role?: GroupRole): Promise<GroupInfoFrame> {
    const info = await this.stored('groupInfo', () => this.deps.groups.info(group));
    if (!info) throw unknownGroup(group);
    return { t: 'group', group, members: info.members, invited: info.invited, lastSeq: info.lastSeq, ...(role ? { role } : {}) };
  }

  /** The invitees' online devices get one `group_invite` frame; offline ones see it at their next login. */
  private async pushInvites(uids: readonly Uid[], invite: Omit<GroupInvite, 'uid'>): Promise<void> {
    if (uids.length === 0) return;
    const { group, role, by, atMs } = invite;
    await this.deps.routing.routeSafely([{ to: uids, frame: { t: 'group_invite', group, role, by, ts: atMs } }]);
  }

  /** The uids among `uids` that blocked `by`: it may neither add nor invite them. */
  private async blockersOf(by: Uid, uids: readonly Uid[]): Promise<Uid[]> {
    // One lookup each, sent together.
    const blocks = await this.stored('groupBlocks', () => Promise.all(uids.map((uid) => this.deps.blocks.isBlocked(uid, by))));
    return uids.filter((_, i) => blocks[i]);
  }

  private async roleOf(actor: GroupActor, group: GroupId): Promise<GroupRole> {
    if (actor === BACKEND_ACTOR) {
      if (!(await this.stored('groupInfo', () => this.deps.groups.info(group)))) throw unknownGroup(group);
      return 'owner';
    }
    const member = await this.stored('groupMember', () => this.deps.groups.member(group, actor));
    if (!member) throw await this.notMember(group);
    return member.role;
  }

  private async notMember(group: GroupId): Promise<RoomcastError> {
    const info = await this.stored('groupInfo', () => this.deps.groups.info(group));
    return info ? fail.not_group_member(group) : unknownGroup(group);
  }

  private stored<T>(op: string, action: () => Promise<T>): Promise<T> {
    return storeCall(this.deps.metrics, 'group', op, action);
  }
}

function tooManyMembers(): RoomcastError {
  return fail.bad_request('more members (and pending invites) than a group may have');
}

function withBlocked(frame: GroupInfoFrame, blocked: readonly Uid[]): GroupInfoFrame {
  return blocked.length === 0 ? frame : { ...frame, blocked: [...blocked] };
}

function inviteView(invite: GroupInvite): GroupInviteView {
  return { group: invite.group, uid: invite.uid, role: invite.role, by: invite.by, ts: invite.atMs };
}

function unknownGroup(group: GroupId): RoomcastError {
  return fail.unknown_group(group);
}
