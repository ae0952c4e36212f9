/**
 * Groups' member lists, each kept under the roster version it was read at (RosterVersion: it changes
 * with every change of membership). A lookup names the version the caller got from the store, so a
 * list is used only while the membership is the one it was read at: no invalidation messages are
 * needed, whichever replica changed the group. A list is also read again once it is `maxAgeMs` old:
 * room services of an earlier release change membership without a new version, and beside them in a
 * rolling update a list could otherwise stay wrong until the next change. The least recently used
 * lists go first once the lists together hold more than `maxUids` uids.
 */
import type { GroupId } from '../shared/protocol/chat-frames.js';
import type { Uid } from '../shared/protocol/frames.js';
import type { RosterVersion } from '../shared/store/group-store.js';

/** Uids the lists of one room service hold together (some MB): a few hundred groups of a thousand. */
export const DEFAULT_MEMBER_LIST_UIDS = 200_000;
/** How long a list is used at most: a busy group's members are read once a second, not at every send. */
export const DEFAULT_MEMBER_LIST_MAX_AGE_MS = 1000;

interface MemberList {
  roster: RosterVersion;
  uids: readonly Uid[];
  readAtMs: number;
}

export class MemberLists {
  /** In use order, the least recently used first. */
  private readonly lists = new Map<GroupId, MemberList>();
  private heldUids = 0;

  constructor(private readonly maxUids = DEFAULT_MEMBER_LIST_UIDS, private readonly maxAgeMs = DEFAULT_MEMBER_LIST_MAX_AGE_MS) {}

  /** The group's members at `roster`, if held and read less than `maxAgeMs` before `nowMs`. */
  get(group: GroupId, roster: RosterVersion, nowMs: number): readonly Uid[] | undefined {
    const list = this.lists.get(group);
    if (list?.roster !== roster || nowMs - list.readAtMs >= this.maxAgeMs) return undefined;
    this.lists.delete(group);
    this.lists.set(group, list);
    return list.uids;
  }

  /** Keeps `uids`, read at `readAtMs`, as the group's members at `roster`, in place of an older list. */
  set(group: GroupId, roster: RosterVersion, uids: readonly Uid[], readAtMs: number): void {
    this.drop(group);
    if (uids.length > this.maxUids) return;
    this.lists.set(group, { roster, uids, readAtMs });
    this.heldUids += uids.length;
    for (const oldest of this.lists.keys()) {
      if (this.heldUids <= this.maxUids) break;
      this.drop(oldest);
    }
  }

  private drop(group: GroupId): void {
    const list = this.lists.get(group);
    if (!list) return;
    this.lists.delete(group);
    this.heldUids -= list.uids.length;
  }
}
