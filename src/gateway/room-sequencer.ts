/**
 * One room's stream put in seq order. Messages arrive from the bus possibly late, twice or never; the
 * sequencer hands them on exactly once each, in seq order:
 *
 * - the next seq goes on at once, with whatever it unblocks;
 * - a seq ahead of a gap is held (up to MAX_OUT_OF_ORDER) for `reorderWindowMs`, then the gap is
 *   filled from the room's history;
 * - seqs that history no longer holds are skipped, and the sink is told (it writes a `gap` frame);
 * - a seq at or below the stream's head is a duplicate: counted and dropped.
 *
 * Before it is activated (the room's starting point is being read) messages are kept aside, up to
 * MAX_EARLY; later ones come from history.
 */
import type { GatewayMetrics } from '../shared/metrics.js';
import type { Logger } from '../shared/log.js';
import type { HistoryReply } from '../shared/protocol/bus-messages.js';
import type { RoomId, RoomMessage, Seq } from '../shared/protocol/frames.js';
import type { HistoryQuery } from './room-client.js';
import type { RoomCounters } from './room-stats.js';

/** Out-of-order messages held while a gap is filled; later ones come from history. */
const MAX_OUT_OF_ORDER = 1000;
/** Messages held while the room activates; later ones come from history. */
export const MAX_EARLY = 1000;
/** A failed gap fill is retried after this. */
export const FILL_RETRY_MS = 500;

export interface SequencerSettings {
  reorderWindowMs: number;
  historyPageMax: number;
}

/** Where the ordered stream goes. */
export interface SequencerSink {
  /** The next message of the stream. */
  deliver(message: RoomMessage): void;
  /** Seqs `from`..`to` are lost for good; the stream goes on after `to`. Called before the head moves. */
  skip(from: Seq, to: Seq): void;
  /** A gap fill reached the head of history: `pinned` is the room's pin as of the stream's head. */
  caughtUp(pinned: RoomMessage | undefined): void;
}

export interface SequencerDeps {
  room: RoomId;
  /** The room's history (the room service's `history` request). */
  history(query: HistoryQuery): Promise<HistoryReply>;
  sink: SequencerSink;
  counters: RoomCounters;
  metrics: Pick<GatewayMetrics, 'dropped' | 'gapFilled'>;
  log: Logger;
  settings: SequencerSettings;
}

export class RoomSequencer {
  /** The highest seq handed on (or skipped). */
  lastSeq: Seq = 0;
  /** The highest seq known to exist in the room (from the bus or a viewer report). */
  tailSeq: Seq = 0;
  active = false;
  private closed = false;
  private early: RoomMessage[] = [];
  private readonly outOfOrder = new Map<Seq, RoomMessage>();
  private reorderTimer: NodeJS.Timeout | null = null;
  private filling = false;

  constructor(private readonly deps: SequencerDeps) {}

  /** Starts the stream after `headSeq` (what the room's history held when the subscription was in place). */
  activate(headSeq: Seq): void {
    this.lastSeq = this.tailSeq = headSeq;
    this.active = true;
    const early = this.early.sort((a, b) => a.seq - b.seq);
    this.early = [];
    for (const message of early) this.accept(message);
  }

  close(): void {
    this.closed = true;
    this.clearTimer();
  }

  accept(message: RoomMessage): void {
    if (!this.active) {
      if (this.early.length < MAX_EARLY) this.early.push(message);
      return;
    }
    if (message.seq > this.tailSeq) this.tailSeq = message.seq;
    if (message.seq <= this.lastSeq) {
      this.deps.metrics.dropped('duplicate', message.prio);
      this.deps.counters.dropped.duplicate++;
      return;
    }
    if (message.seq === this.lastSeq + 1) {
      this.handOn(message);
      this.drainOutOfOrder();
      return;
    }
    // Ahead of a gap: hold it (up to a bound; beyond it, history brings it) and give the gap a moment.
    if (this.outOfOrder.size < MAX_OUT_OF_ORDER) this.outOfOrder.set(message.seq, message);
    if (!this.reorderTimer && !this.filling) this.retryIn(this.deps.settings.reorderWindowMs);
  }

  /** The room has reached `seq` (a viewer report): a quiet room's only way to notice a lost message. */
  noteTail(seq: Seq): void {
    if (seq <= this.lastSeq) return;
    this.tailSeq = Math.max(this.tailSeq, seq);
    void this.fillGap();
  }

  /** The bus was away: anything may have been missed, so the first fill page tells the real tail. */
  recheckTail(): void {
    this.tailSeq = Number.MAX_SAFE_INTEGER;
    void this.fillGap();
  }

  private handOn(message: RoomMessage): void {
    this.lastSeq = message.seq;
    this.deps.sink.deliver(message);
  }

  private drainOutOfOrder(): void {
    for (let next = this.outOfOrder.get(this.lastSeq + 1); next; next = this.outOfOrder.get(this.lastSeq + 1)) {
      this.outOfOrder.delete(next.seq);
      this.handOn(next);
    }
    // Entries at or below lastSeq were filled from history meanwhile.
    for (const seq of this.outOfOrder.keys()) if (seq <= this.lastSeq) this.outOfOrder.delete(seq);
    if (this.outOfOrder.size === 0) this.clearTimer();
  }

  private lowestHeld(): Seq | undefined {
    let lowest: Seq | undefined;
    for (const seq of this.outOfOrder.keys()) if (lowest === undefined || seq < lowest) lowest = seq;
    return lowest;
  }

  /** Fills the stream from history up to the lowest held message, or to the room's known tail. */
  private async fillGap(): Promise<void> {
    if (this.filling || this.closed || !this.active) return;
    this.filling = true;
    this.clearTimer();
    try {
      for (;;) {
        const lowest = this.lowestHeld();
        if (lowest === undefined && this.tailSeq <= this.lastSeq) break;
        const before = this.lastSeq;
        const page = await this.deps.history({
          afterSeq: this.lastSeq, limit: this.deps.settings.historyPageMax, ...(lowest === undefined ? {} : { beforeSeq: lowest }),
        });
        if (this.closed) return;
        // Without held messages this was a tail check, and the page tells where the tail is now.
        this.tailSeq = lowest === undefined ? page.lastSeq : Math.max(this.tailSeq, page.lastSeq);
        const upTo = Math.min(lowest ?? Infinity, page.lastSeq + 1);
        if (page.firstSeq > this.lastSeq + 1) this.skipTo(Math.min(page.firstSeq, upTo) - 1);
        for (const message of page.msgs) if (message.seq === this.lastSeq + 1) this.handOn(message);
        this.drainOutOfOrder();
        // Caught up to the page: its pin is the room's as of here, even if a lost pin message was skipped.
        if (this.lastSeq === page.lastSeq) this.deps.sink.caughtUp(page.pinned);
        if (this.lastSeq === before) {
          // History has nothing more below the held messages: they are gone for good.
          const stuckAt = this.lowestHeld();
          if (stuckAt === undefined) { this.tailSeq = this.lastSeq; break; }
          this.skipTo(stuckAt - 1);
          this.drainOutOfOrder();
        }
      }
      this.deps.metrics.gapFilled('filled');
    } catch (error) {
      this.deps.metrics.gapFilled('failed');
      this.deps.log.warn('gap fill failed; retrying', { room: this.deps.room, error });
      this.retryIn(FILL_RETRY_MS);
    } finally {
      this.filling = false;
    }
  }

  private skipTo(to: Seq): void {
    if (to <= this.lastSeq) return;
    this.deps.sink.skip(this.lastSeq + 1, to);
    this.lastSeq = to;
  }

  private retryIn(delayMs: number): void {
    this.reorderTimer = setTimeout(() => { this.reorderTimer = null; void this.fillGap(); }, delayMs);
  }

  private clearTimer(): void {
    if (this.reorderTimer) clearTimeout(this.reorderTimer);
    this.reorderTimer = null;
  }
}
