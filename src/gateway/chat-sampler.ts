/**
 * The per-room downlink budget: above `budgetPerSec` messages per second, ordinary chat (`prio` 0) is
 * sampled; high-priority messages always pass.
 *
 * The decision must be the same on every gateway, so that all viewers of a room see the same chat.
 * It therefore depends only on what every gateway sees identically: the room's seq order and the
 * server timestamps the room service stamped on each message, never on local clocks or arrival times.
 *
 * - The room's rate at message `seq` is RATE_WINDOW messages over the time between message
 *   `seq - RATE_WINDOW` and message `seq`.
 * - Above the budget a chat message is kept when frac(seq × φ) < budget / rate: a low-discrepancy
 *   sequence, so the kept messages spread evenly over the stream instead of arriving in bursts.
 * - When the gateway has not seen message `seq - RATE_WINDOW` (a room just opened, or seqs lost for
 *   good), the rate is unknown and the message is kept: the policy only ever drops on evidence.
 */
import type { RoomMessage, Seq } from '../shared/protocol/frames.js';
import { PRIORITY_LOW } from '../shared/protocol/frames.js';

/** Messages the room's rate is measured over. */
export const RATE_WINDOW = 64;
const GOLDEN_RATIO_FRACTION = 0.618033988749895;

export class ChatSampler {
  /** Server timestamps of the last RATE_WINDOW + 1 seqs, indexed by seq modulo the ring size. */
  private readonly timestamps = new Float64Array(RATE_WINDOW + 1);
  /** Which seq each timestamp slot holds (-1: none), so a stale slot is never read as current. */
  private readonly slotSeqs = new Float64Array(RATE_WINDOW + 1).fill(-1);

  constructor(private readonly budgetPerSec: number) {}

  /** Records a message of the room's stream; every message, kept or not, in seq order. */
  observe(message: Pick<RoomMessage, 'seq' | 'ts'>): void {
    const slot = message.seq % this.timestamps.length;
    this.timestamps[slot] = message.ts;
    this.slotSeqs[slot] = message.seq;
  }

  /** Whether the message goes to viewers; call after observe(message). */
  keep(message: Pick<RoomMessage, 'seq' | 'prio'>): boolean {
    if (this.budgetPerSec <= 0 || message.prio !== PRIORITY_LOW) return true;
    const rate = this.rateAt(message.seq);
    if (rate === undefined || rate <= this.budgetPerSec) return true;
    const fraction = (message.seq * GOLDEN_RATIO_FRACTION) % 1;
    return fraction < this.budgetPerSec / rate;
  }

  /** Messages per second over the window ending at `seq`, or undefined when the window is not known. */
  rateAt(seq: Seq): number | undefined {
    const older = seq - RATE_WINDOW;
    if (older < 1) return undefined;
    const olderSlot = older % this.timestamps.length;
    const slot = seq % this.timestamps.length;
    if (this.slotSeqs[olderSlot] !== older || this.slotSeqs[slot] !== seq) return undefined;
    // Two room-service replicas may stamp a few ms apart: never divide by less than 1 ms.
    const spanMs = Math.max(1, this.timestamps[slot]! - this.timestamps[olderSlot]!);
    return (RATE_WINDOW * 1000) / spanMs;
  }
}
