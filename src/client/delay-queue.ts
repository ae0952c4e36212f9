/**
 * The viewer delay: holds each room's messages back until `message.ts + delayMs` by the local clock
 * (the room service stamps `ts`, so this assumes clocks synced by NTP), releasing them in the order
 * they were pushed, so a message never overtakes an earlier one of its room. One timer per room at
 * most, armed for the room's oldest held message. With a delay of 0 a message pushed to a room with
 * nothing held is released at once, with no timer and no allocation.
 */
import type { RoomId, RoomMessage } from '../shared/protocol/frames.js';

/** Past this many released entries at the head of a room's array, the array is compacted. */
const COMPACT_AFTER = 1024;

interface RoomQueue {
  messages: Array<RoomMessage | undefined>;
  /** The index of the oldest message still held. */
  head: number;
  timer: ReturnType<typeof setTimeout> | null;
}

export class DelayQueue {
  private delay: number;
  private readonly rooms = new Map<RoomId, RoomQueue>();
  /** The queue whose messages are being released, so a listener's setDelay() does not release them twice. */
  private releasing: RoomQueue | null = null;

  /**
   * @param delayMs how long after its `ts` a message is released, in ms (0: at once)
   * @param release called with each message when its time has come
   * @param now the local clock, in ms since the epoch
   */
  constructor(delayMs: number, private readonly release: (room: RoomId, message: RoomMessage) => void, private readonly now: () => number = Date.now) {
    this.delay = checkedDelay(delayMs);
  }

  get delayMs(): number {
    return this.delay;
  }

  /** Holds `message` until its time, behind every message of `room` held before it. */
  push(room: RoomId, message: RoomMessage): void {
    let queue = this.rooms.get(room);
    if (!queue) {
      if (this.delay === 0) {
        this.release(room, message);
        return;
      }
      queue = { messages: [], head: 0, timer: null };
      this.rooms.set(room, queue);
    }
    queue.messages.push(message);
    // A queue with a timer waits for its head, which is due no later than this message can overtake.
    if (queue.timer === null && queue !== this.releasing) this.drain(room, queue);
  }

  /**
   * Changes the delay: every held message is rescheduled for `ts + delayMs` (0 releases them all now).
   * Throws a RangeError for a negative or non-finite value.
   */
  setDelay(delayMs: number): void {
    this.delay = checkedDelay(delayMs);
    for (const [room, queue] of [...this.rooms]) {
      if (queue.timer) clearTimeout(queue.timer);
      queue.timer = null;
      if (queue !== this.releasing && this.rooms.get(room) === queue) this.drain(room, queue);
    }
  }

  /** Forgets the messages held for `room` (the client left it). */
  dropRoom(room: RoomId): void {
    const queue = this.rooms.get(room);
    if (!queue) return;
    if (queue.timer) clearTimeout(queue.timer);
    this.rooms.delete(room);
  }

  /** Forgets every held message. */
  clear(): void {
    for (const queue of this.rooms.values()) if (queue.timer) clearTimeout(queue.timer);
    this.rooms.clear();
  }

  /** How many messages of `room` are held. */
  heldCount(room: RoomId): number {
    const queue = this.rooms.get(room);
    return queue ? queue.messages.length - queue.head : 0;
  }

  /** Releases the messages of `room` that are due, oldest first, and arms the timer for the next. */
  private drain(room: RoomId, queue: RoomQueue): void {
    const outer = this.releasing;
    this.releasing = queue;
    try {
      while (queue.head < queue.messages.length) {
        const message = queue.messages[queue.head]!;
        // Timers may fire a little early: the clock decides, and an early wake-up waits again.
        const waitMs = this.delay === 0 ? 0 : message.ts + this.delay - this.now();
        if (waitMs > 0) {
          compact(queue);
          queue.timer = setTimeout(() => {
            queue.timer = null;
            if (this.rooms.get(room) === queue) this.drain(room, queue);
          }, waitMs);
          return;
        }
        queue.messages[queue.head++] = undefined;
        this.release(room, message);
        // A listener left the room (or left and joined it again): this queue is gone.
        if (this.rooms.get(room) !== queue) return;
      }
      this.rooms.delete(room);
    } finally {
      this.releasing = outer;
    }
  }
}

function compact(queue: RoomQueue): void {
  if (queue.head < COMPACT_AFTER || queue.head * 2 < queue.messages.length) return;
  queue.messages.splice(0, queue.head);
  queue.head = 0;
}

function checkedDelay(delayMs: number): number {
  if (!(typeof delayMs === 'number' && delayMs >= 0 && Number.isFinite(delayMs))) throw new RangeError('delayMs must be a non-negative number of ms');
  return delayMs;
}
