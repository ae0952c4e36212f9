/**
 * Join decisions made on the gateway, from the room's state held here while the gateway is
 * subscribed to the room: the room exists, and its bans with their expiry. RoomFanout opens a room's
 * state once its subscription is in place at the bus server (so no ban or unban published after the
 * read can pass unseen), feeds it the room's ban and unban events, and drops it with the
 * subscription. A flash crowd into one room then costs one request per room and gateway, not one
 * per join. Events missed while the bus connection was down are made good by reading every held
 * room's rules again when it is back; until then joins of those rooms answer `unavailable`.
 */
import type { BusStatus } from '../shared/bus/bus.js';
import type { Clock } from '../shared/clock.js';
import { fail } from '../shared/errors.js';
import type { RoomKickEvent, RoomUnbanEvent } from '../shared/protocol/bus-messages.js';
import type { RoomId, Uid } from '../shared/protocol/frames.js';
import type { RoomClient } from './room-client.js';

export type BanEvent = RoomKickEvent | RoomUnbanEvent;

/** A room's rules that could not be read again after a reconnect are asked for this often. */
const RELOAD_RETRY_MS = 1000;

interface RoomRules {
  /** uid → banned until (ms); null until the room service answered. */
  bans: Map<Uid, number> | null;
  /** Ban events that came while the answer was on its way: applied over it, in order. */
  early: BanEvent[];
}

export class RoomAccess {
  private readonly rooms = new Map<RoomId, RoomRules>();

  constructor(private readonly deps: { roomClient: Pick<RoomClient, 'access'>; clock: Clock }) {}

  /**
   * Reads the room's rules; rejects with unknown_room (nothing is kept then). The caller's
   * subscription to the room must be in place at the server already.
   */
  async open(room: RoomId): Promise<void> {
    const rules: RoomRules = { bans: null, early: [] };
    this.rooms.set(room, rules);
    try {
      await this.load(room, rules);
    } catch (error) {
      if (this.rooms.get(room) === rules) this.rooms.delete(room);
      throw error;
    }
  }

  /** The bus connection's state: ban events may have been missed while it was down. */
  busStatus(status: BusStatus): void {
    for (const [room, held] of this.rooms) {
      const rules: RoomRules = { bans: null, early: held.bans === null ? held.early : [] };
      this.rooms.set(room, rules);
      // The subscriptions are back at the server with the connection: read the rules again.
      if (status === 'reconnected') this.reload(room, rules);
    }
  }

  /** Reads a held room's rules again, retrying while the room is still held by these rules. */
  private reload(room: RoomId, rules: RoomRules): void {
    this.load(room, rules).catch(() => {
      if (this.rooms.get(room) !== rules) return;
      setTimeout(() => { if (this.rooms.get(room) === rules) this.reload(room, rules); }, RELOAD_RETRY_MS).unref();
    });
  }

  private async load(room: RoomId, rules: RoomRules): Promise<void> {
    const reply = await this.deps.roomClient.access(room);
    const bans = new Map<Uid, number>();
    for (const { uid, untilMs } of reply.bans) bans.set(uid, untilMs);
    for (const event of rules.early) apply(bans, event);
    rules.bans = bans;
    rules.early = [];
  }

  /** The subscription ended: the room's rules are no longer kept exact. */
  close(room: RoomId): void {
    this.rooms.delete(room);
  }

  /** A ban or unban published on the room's subject. */
  event(event: BanEvent): void {
    const rules = this.rooms.get(event.room);
    if (!rules) return;
    if (rules.bans) apply(rules.bans, event);
    else rules.early.push(event);
  }

  /** Throws `banned` when the user may not join the room now; the room must be open. */
  check(room: RoomId, uid: Uid): void {
    const bans = this.rooms.get(room)?.bans;
    if (!bans) throw fail.unavailable(`the rules of room '${room}' are not loaded`);
    const untilMs = bans.get(uid);
    if (untilMs === undefined) return;
    // An expired ban is honoured by its expiry time, and forgotten then.
    if (untilMs > this.deps.clock.now()) throw fail.banned(room);
    bans.delete(uid);
  }
}

function apply(bans: Map<Uid, number>, event: BanEvent): void {
  if (event.t === 'unban') bans.delete(event.uid);
  // A kick without an expiry (a room service of the previous version) holds until an unban.
  else bans.set(event.uid, typeof event.untilMs === 'number' ? event.untilMs : Number.POSITIVE_INFINITY);
}
