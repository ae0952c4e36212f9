/**
 * What one gateway has seen of a room since it subscribed to it, for the `room_stats` frame: messages
 * delivered, sampled away and dropped by reason, and the room's message rate. Everything counts
 * messages, added once per message or per batch, never per recipient.
 */
import type { RoomDrops } from '../shared/protocol/frames.js';

/** The rate is taken over this many whole seconds before the current one. */
export const RATE_WINDOW_S = 5;
const MS_PER_SECOND = 1000;

export class RoomCounters {
  /** Messages written to the room's local connections. */
  delivered = 0;
  /** Chat skipped by the room's budget. */
  sampled = 0;
  readonly dropped: RoomDrops = { backpressure: 0, gap_unrecoverable: 0, duplicate: 0 };
  /** Messages per second of server time (the messages' `ts`), in a ring over the window and the current second. */
  private readonly counts = new Float64Array(RATE_WINDOW_S + 1);
  /** Which second each slot counts (-1: none), so a slot from an older lap is never read as current. */
  private readonly seconds = new Float64Array(RATE_WINDOW_S + 1).fill(-1);

  /** Counts a message of the room's stream at its server timestamp. */
  observed(tsMs: number): void {
    const second = Math.floor(tsMs / MS_PER_SECOND);
    const slot = second % this.counts.length;
    const held = this.seconds[slot]!;
    // A message older than what the slot holds now (a late gap fill) is outside the window anyway.
    if (second < held) return;
    if (second > held) {
      this.seconds[slot] = second;
      this.counts[slot] = 0;
    }
    this.counts[slot]! += 1;
  }

  /** Messages per second over the RATE_WINDOW_S whole seconds before the one `nowMs` is in. */
  msgsPerSec(nowMs: number): number {
    const current = Math.floor(nowMs / MS_PER_SECOND);
    let total = 0;
    for (let second = current - RATE_WINDOW_S; second < current; second++) {
      const slot = ((second % this.counts.length) + this.counts.length) % this.counts.length;
      if (this.seconds[slot] === second) total += this.counts[slot]!;
    }
    return total / RATE_WINDOW_S;
  }
}
