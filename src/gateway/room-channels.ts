/**
 * The gateway's room subscriptions, reference counted: a room has one bus subscription while at
 * least one local holder (a member, or a join under way) needs it, and none otherwise. What a room
 * does with its messages is its owner's business (RoomFanout); this registry only keeps the
 * subscription in step with the holders.
 */
import type { Bus, Subscription } from '../shared/bus/bus.js';
import type { GatewayMetrics } from '../shared/metrics.js';
import { subjects } from '../shared/protocol/bus-messages.js';
import type { RoomId } from '../shared/protocol/frames.js';

/** One room's entry. A holder keeps its RoomHold, so a release never reaches a later entry of the same room. */
export interface RoomHold<S> {
  readonly room: RoomId;
  readonly state: S;
  /** True once the room was closed; a holder that still has it must not use it. */
  readonly closed: boolean;
}

export interface RoomChannelsDeps<S> {
  bus: Bus;
  metrics: Pick<GatewayMetrics, 'roomsActive'>;
  /** Makes a room's state when its first holder arrives (its subscription is already in place). */
  open(hold: RoomHold<S>): S;
  /** A message on the room's subject. */
  receive(state: S, data: Uint8Array): void;
  /** The room is closing (last holder gone, or dropped): its state's last work, before the unsubscribe. */
  close(state: S): void;
}

class Entry<S> implements RoomHold<S> {
  state!: S;
  holders = 0;
  closed = false;
  subscription: Subscription | null = null;
  constructor(readonly room: RoomId) {}
}

export class RoomChannels<S> {
  private readonly entries = new Map<RoomId, Entry<S>>();

  constructor(private readonly deps: RoomChannelsDeps<S>) {}

  get size(): number {
    return this.entries.size;
  }

  get(room: RoomId): RoomHold<S> | undefined {
    return this.entries.get(room);
  }

  /** The open rooms' states. */
  *states(): IterableIterator<S> {
    for (const entry of this.entries.values()) yield entry.state;
  }

  /** Takes a hold on the room: subscribes to it when it is the first. */
  acquire(room: RoomId): RoomHold<S> {
    let entry = this.entries.get(room);
    if (!entry) {
      const opened = new Entry<S>(room);
      entry = opened;
      this.entries.set(room, opened);
      opened.subscription = this.deps.bus.subscribe(subjects.room(room), (message) => {
        if (!opened.closed) this.deps.receive(opened.state, message.data);
      });
      opened.state = this.deps.open(opened);
      this.deps.metrics.roomsActive(this.entries.size);
    }
    entry.holders++;
    return entry;
  }

  /** Gives a hold back: the last one closes the room and unsubscribes. */
  release(hold: RoomHold<S>): void {
    const entry = hold as Entry<S>;
    if (entry.closed) return;
    if (--entry.holders <= 0) this.drop(entry);
  }

  /** Closes the room whatever its holders (it failed to open, or the gateway stops); they see it closed. */
  drop(hold: RoomHold<S>): void {
    const entry = hold as Entry<S>;
    if (entry.closed) return;
    this.deps.close(entry.state);
    entry.closed = true;
    entry.subscription?.unsubscribe();
    if (this.entries.get(entry.room) === entry) this.entries.delete(entry.room);
    this.deps.metrics.roomsActive(this.entries.size);
  }

  dropAll(): void {
    for (const entry of [...this.entries.values()]) this.drop(entry);
  }
}
