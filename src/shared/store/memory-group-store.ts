/**
 * Group chat state of the all-in-one mode: the GroupStore contract in one process's memory, each
 * operation without an await between its checks and its changes.
 */
import type { Seq, Uid } from '../protocol/frames.js';
import type { GroupId, GroupMessage, GroupRole } from '../protocol/chat-frames.js';
import { take, type TokenBucket } from './token-bucket.js';
import {
  groupMessageId,
  type AcceptResult, type GroupInfo, type GroupInvite, type GroupMember, type GroupPage, type GroupSendInput, type GroupSendResult,
  type GroupStore, type GroupStoreLimits, type InviteResult, type RosterVersion,
} from './group-store.js';

interface StoredGroupMessage { from: Uid; text: string; cid: string; ts: number }

interface GroupState {
  owner: Uid;
  createdAtMs: number;
  members: Map<Uid, { role: GroupRole; joinSeq: Seq }>;
  cursors: Map<Uid, Seq>;
  invites: Map<Uid, Omit<GroupInvite, 'group' | 'uid'>>;
  log: StoredGroupMessage[];
  /** Seq of log[0]. */
  first: number;
  dedup: Map<string, { seq: Seq; untilMs: number }>;
  /** Counts the changes of membership: the roster version. */
  roster: number;
}

const DEDUP_PRUNE_SIZE = 1000;

export class MemoryGroupStore implements GroupStore {
  private readonly groups = new Map<GroupId, GroupState>();
  private readonly memberOf = new Map<Uid, Set<GroupId>>();
  private readonly invitedTo = new Map<Uid, Set<GroupId>>();
  /** "<group>\0<uid>" → uid's send bucket in that group. */
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly limits: GroupStoreLimits) {}

  async create(group: GroupId, owner: Uid, members: readonly Uid[], nowMs: number, invitees: readonly Uid[] = []): Promise<'created' | 'exists' | 'too_many_members'> {
    if (this.groups.has(group)) return 'exists';
    const all = new Set([owner, ...members]);
    const invited = new Set(invitees.filter((uid) => !all.has(uid)));
    if (all.size + invited.size > this.limits.maxMembers) return 'too_many_members';
    const state: GroupState = {
      owner, createdAtMs: nowMs, members: new Map(), cursors: new Map(), invites: new Map(), log: [], first: 1, dedup: new Map(), roster: 0,
    };
    this.groups.set(group, state);
    for (const uid of all) this.join(group, state, uid, uid === owner ? 'owner' : 'member');
    for (const uid of invited) this.addInvite(group, state, uid, { role: 'member', by: owner, atMs: nowMs });
    return 'created';
  }

  async info(group: GroupId): Promise<GroupInfo | null> {
    const state = this.groups.get(group);
    return state
      ? { group, owner: state.owner, createdAtMs: state.createdAtMs, lastSeq: lastSeqOf(state), members: state.members.size, invited: state.invites.size }
      : null;
  }

  async member(group: GroupId, uid: Uid): Promise<GroupMember | null> {
    const entry = this.groups.get(group)?.members.get(uid);
    return entry ? { uid, ...entry } : null;
  }

  async addMembers(group: GroupId, uids: readonly Uid[], role: 'admin' | 'member'): Promise<'ok' | 'unknown_group' | 'too_many_members'> {
    const state = this.groups.get(group);
    if (!state) return 'unknown_group';
    const fresh = new Set(uids.filter((uid) => !state.members.has(uid)));
    // An invited uid holds a place already.
    const places = [...fresh].filter((uid) => !state.invites.has(uid)).length;
    if (state.members.size + state.invites.size + places > this.limits.maxMembers) return 'too_many_members';
    for (const uid of fresh) {
      this.dropInvite(group, state, uid);
      this.join(group, state, uid, role);
    }
    return 'ok';
  }

  async promote(group: GroupId, uids: readonly Uid[]): Promise<Uid[] | null> {
    const state = this.groups.get(group);
    if (!state) return null;
    const promoted: Uid[] = [];
    for (const uid of new Set(uids)) {
      const member = state.members.get(uid);
      if (member?.role !== 'member') continue;
      member.role = 'admin';
      promoted.push(uid);
    }
    return promoted;
  }

  async invite(group: GroupId, uids: readonly Uid[], role: 'admin' | 'member', by: Uid, nowMs: number): Promise<InviteResult> {
    const state = this.groups.get(group);
    if (!state) return { status: 'unknown_group' };
    const candidates = [...new Set(uids.filter((uid) => !state.members.has(uid)))];
    const fresh = candidates.filter((uid) => !state.invites.has(uid));
    if (state.members.size + state.invites.size + fresh.length > this.limits.maxMembers) return { status: 'too_many_members' };
    for (const uid of fresh) this.addInvite(group, state, uid, { role, by, atMs: nowMs });
    return { status: 'ok', pending: [...fresh, ...candidates.filter((uid) => !fresh.includes(uid))], fresh };
  }

  async accept(group: GroupId, uid: Uid): Promise<AcceptResult> {
    const state = this.groups.get(group);
    if (!state) return 'unknown_group';
    if (state.members.has(uid)) return 'member';
    const invite = state.invites.get(uid);
    if (!invite) return 'not_invited';
    // The invite held a place: only a direct add since then can have filled the group.
    if (state.members.size + state.invites.size > this.limits.maxMembers) return 'too_many_members';
    this.dropInvite(group, state, uid);
    this.join(group, state, uid, invite.role);
    return 'joined';
  }

  async pendingInvite(group: GroupId, uid: Uid): Promise<GroupInvite | null> {
    const invite = this.groups.get(group)?.invites.get(uid);
    return invite ? { group, uid, ...invite } : null;
  }

  async invites(group: GroupId, cursor: string | undefined, limit: number): Promise<{ invites: GroupInvite[]; cursor?: string }> {
    const all = [...(this.groups.get(group)?.invites.entries() ?? [])].sort((a, b) => a[0].localeCompare(b[0]));
    const start = cursor === undefined ? 0 : Number(cursor) || 0;
    const invites = all.slice(start, start + limit).map(([uid, invite]) => ({ group, uid, ...invite }));
    return start + limit < all.length ? { invites, cursor: String(start + limit) } : { invites };
  }

  async invitesOf(uid: Uid, limit: number): Promise<GroupInvite[]> {
    const invites: GroupInvite[] = [];
    for (const group of this.invitedTo.get(uid) ?? []) {
      const invite = this.groups.get(group)?.invites.get(uid);
      if (invite) invites.push({ group, uid, ...invite });
    }
    return invites.sort((a, b) => a.atMs - b.atMs || a.group.localeCompare(b.group)).slice(0, limit);
  }

  async removeMembers(group: GroupId, uids: readonly Uid[]): Promise<boolean> {
    const state = this.groups.get(group);
    if (!state) return false;
    for (const uid of uids) {
      if (state.members.delete(uid)) state.roster++;
      state.cursors.delete(uid);
      this.memberOf.get(uid)?.delete(group);
      this.dropInvite(group, state, uid);
    }
    return true;
  }

  async members(group: GroupId, cursor: string | undefined, limit: number): Promise<{ members: GroupMember[]; cursor?: string }> {
    const state = this.groups.get(group);
    if (!state) return { members: [] };
    const all = [...state.members.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    const start = cursor === undefined ? 0 : Number(cursor) || 0;
    const page = all.slice(start, start + limit).map(([uid, entry]) => ({ uid, ...entry }));
    return start + limit < all.length ? { members: page, cursor: String(start + limit) } : { members: page };
  }

  async *memberUids(group: GroupId, chunk: number): AsyncIterable<Uid[]> {
    const uids = [...(this.groups.get(group)?.members.keys() ?? [])];
    for (let i = 0; i < uids.length; i += chunk) yield uids.slice(i, i + chunk);
  }

  async roster(group: GroupId): Promise<RosterVersion | null> {
    const state = this.groups.get(group);
    return state ? String(state.roster) : null;
  }

  async send(input: GroupSendInput): Promise<GroupSendResult> {
    const { group, from, cid, nowMs, rate } = input;
    const state = this.groups.get(group);
    if (!state) return { status: 'rejected', code: 'unknown_group' };
    if (!state.members.has(from)) return { status: 'rejected', code: 'not_group_member' };
    const key = `${from}\u0000${cid}`;
    if (state.dedup.size > DEDUP_PRUNE_SIZE) for (const [k, entry] of state.dedup) if (entry.untilMs <= nowMs) state.dedup.delete(k);
    const seen = state.dedup.get(key);
    if (seen && seen.untilMs > nowMs) {
      const stored = state.log[seen.seq - state.first] ?? { from, text: '', cid, ts: nowMs };
      return { status: 'duplicate', message: view(group, seen.seq, stored), roster: String(state.roster) };
    }
    // The bucket lives with the group it protects, as on Redis: the rate is per sender and group.
    const bucketKey = `${group}\u0000${from}`;
    const bucket = take(this.buckets.get(bucketKey), rate, nowMs);
    if (!bucket) return { status: 'rejected', code: 'rate_limited' };
    this.buckets.set(bucketKey, bucket);
    const stored: StoredGroupMessage = { from, text: input.text, cid, ts: nowMs };
    state.log.push(stored);
    const seq = lastSeqOf(state);
    this.trim(state, nowMs);
    state.dedup.set(key, { seq, untilMs: nowMs + this.limits.dedupTtlMs });
    return { status: 'stored', message: view(group, seq, stored), roster: String(state.roster) };
  }

  async sync(group: GroupId, uid: Uid, after: Seq | undefined, limit: number, nowMs: number): Promise<GroupPage | null> {
    const state = this.groups.get(group);
    const member = state?.members.get(uid);
    if (!state || !member) return null;
    this.trim(state, nowMs);
    if (after !== undefined) this.moveCursor(state, uid, after);
    const cursor = state.cursors.get(uid) ?? member.joinSeq;
    const firstSeq = Math.max(state.first, member.joinSeq + 1);
    const low = Math.max((after ?? cursor) + 1, firstSeq);
    const high = Math.min(lastSeqOf(state), low + limit - 1);
    const msgs: GroupMessage[] = [];
    for (let seq = low; seq <= high; seq++) msgs.push(view(group, seq, state.log[seq - state.first]!));
    return { msgs, cursor, lastSeq: lastSeqOf(state), firstSeq, joinSeq: member.joinSeq, lastTs: state.log[state.log.length - 1]?.ts ?? 0 };
  }

  async ack(group: GroupId, uid: Uid, seq: Seq, nowMs: number): Promise<Seq | null> {
    const state = this.groups.get(group);
    if (!state?.members.has(uid)) return null;
    this.trim(state, nowMs);
    return this.moveCursor(state, uid, seq);
  }

  async groupsOf(uid: Uid): Promise<GroupId[]> {
    return [...(this.memberOf.get(uid) ?? [])].sort();
  }

  async close(): Promise<void> {}

  private join(group: GroupId, state: GroupState, uid: Uid, role: GroupRole): void {
    const joinSeq = lastSeqOf(state);
    state.members.set(uid, { role, joinSeq });
    state.cursors.set(uid, joinSeq);
    state.roster++;
    let groups = this.memberOf.get(uid);
    if (!groups) this.memberOf.set(uid, (groups = new Set()));
    groups.add(group);
  }

  private addInvite(group: GroupId, state: GroupState, uid: Uid, invite: Omit<GroupInvite, 'group' | 'uid'>): void {
    state.invites.set(uid, invite);
    let groups = this.invitedTo.get(uid);
    if (!groups) this.invitedTo.set(uid, (groups = new Set()));
    groups.add(group);
  }

  private dropInvite(group: GroupId, state: GroupState, uid: Uid): void {
    state.invites.delete(uid);
    this.invitedTo.get(uid)?.delete(group);
  }

  private moveCursor(state: GroupState, uid: Uid, seq: Seq): Seq {
    const joinSeq = state.members.get(uid)?.joinSeq ?? 0;
    const cursor = Math.max(state.cursors.get(uid) ?? joinSeq, Math.min(seq, lastSeqOf(state)));
    state.cursors.set(uid, cursor);
    return cursor;
  }

  private trim(state: GroupState, nowMs: number): void {
    let drop = Math.max(0, state.log.length - this.limits.count);
    while (drop < state.log.length && state.log[drop]!.ts < nowMs - this.limits.maxAgeMs) drop++;
    if (drop > 0) {
      state.log.splice(0, drop);
      state.first += drop;
    }
  }
}

function lastSeqOf(state: GroupState): Seq {
  return state.first + state.log.length - 1;
}

function view(group: GroupId, seq: Seq, stored: StoredGroupMessage): GroupMessage {
  return { seq, mid: groupMessageId(group, seq), group, from: stored.from, text: stored.text, ts: stored.ts, cid: stored.cid };
}
