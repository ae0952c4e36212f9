/**
 * A room's stream put in seq order (docs/protocol.md 6.9): in-order delivery, out-of-order arrival
 * held and released, gaps filled from history, unrecoverable gaps skipped and reported, duplicates
 * dropped. Fake timers drive the reorder window; the history is a fake with a retention boundary.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FILL_RETRY_MS, MAX_EARLY, RoomSequencer } from '../../src/gateway/room-sequencer.js';
import { RoomCounters } from '../../src/gateway/room-stats.js';
import { silentLogger } from '../../src/shared/log.js';
import { GatewayMetrics, MetricsRegistry } from '../../src/shared/metrics.js';
import type { RoomMessage, Seq } from '../../src/shared/protocol/frames.js';
import { FakeHistory, message } from '../helpers/fanout-fakes.js';

const REORDER_MS = 100;

function setUp(headSeq = 0) {
  const history = new FakeHistory();
  for (let seq = 1; seq <= headSeq; seq++) history.store(message(seq));
  const delivered: Seq[] = [];
  const skipped: Array<[Seq, Seq]> = [];
  const caughtUp: Array<RoomMessage | undefined> = [];
  const counters = new RoomCounters();
  const registry = new MetricsRegistry();
  const sequencer = new RoomSequencer({
    room: 'r', counters, metrics: new GatewayMetrics(registry), log: silentLogger,
    settings: { reorderWindowMs: REORDER_MS, historyPageMax: 3 },
    history: async (query) => history.read(query),
    sink: {
      deliver: (m) => delivered.push(m.seq),
      skip: (from, to) => skipped.push([from, to]),
      caughtUp: (pinned) => caughtUp.push(pinned),
    },
  });
  /** Stores messages in history (as the room service does) and lists them for accept(). */
  const publish = (...seqs: Seq[]) => seqs.map((seq) => message(seq));
  const arrive = (...seqs: Seq[]) => { for (const m of publish(...seqs)) sequencer.accept(m); };
  const metric = async (name: string) => registry.registry.getSingleMetricAsString(name);
  return { history, sequencer, delivered, skipped, caughtUp, counters, arrive, metric };
}

describe('the room sequencer', () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  it('hands on messages that arrive in order at once, without reading history', () => {
    const { sequencer, delivered, history, arrive } = setUp(10);
    sequencer.activate(10);
    arrive(11, 12, 13);
    expect(delivered).toEqual([11, 12, 13]);
    expect(sequencer.lastSeq).toBe(13);
    expect(history.queries).toEqual([]);
  });

  it('holds a message that arrives ahead of a gap and releases it when the gap closes within the window', async () => {
    const { sequencer, delivered, history, arrive } = setUp();
    sequencer.activate(0);
    arrive(1, 3, 4);
    expect(delivered).toEqual([1]);
    await vi.advanceTimersByTimeAsync(REORDER_MS - 1);
    arrive(2);
    expect(delivered).toEqual([1, 2, 3, 4]);
    await vi.advanceTimersByTimeAsync(10 * REORDER_MS);
    expect(history.queries).toEqual([]);
  });

  it('fills a gap from history once the reorder window is over, up to the held messages', async () => {
    const { sequencer, delivered, history, skipped, arrive } = setUp();
    for (let seq = 1; seq <= 6; seq++) history.store(message(seq));
    sequencer.activate(0);
    arrive(1, 5, 6);
    await vi.advanceTimersByTimeAsync(REORDER_MS - 1);
    expect(history.queries).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(history.queries[0]).toEqual({ afterSeq: 1, beforeSeq: 5, limit: 3 });
    expect(delivered).toEqual([1, 2, 3, 4, 5, 6]);
    expect(skipped).toEqual([]);
  });

  it('drops a duplicate seq, counted per room and in the drop metric', async () => {
    const { sequencer, delivered, counters, arrive, metric } = setUp();
    sequencer.activate(0);
    arrive(1, 2, 2, 1, 3);
    expect(delivered).toEqual([1, 2, 3]);
    expect(counters.dropped.duplicate).toBe(2);
    expect(await metric('roomcast_gateway_dropped_messages_total')).toContain('reason="duplicate",priority="0"} 2');
  });

  it('skips seqs that history no longer holds and tells the sink before the stream goes on', async () => {
    const { sequencer, delivered, history, skipped, arrive, metric } = setUp();
    for (let seq = 1; seq <= 8; seq++) history.store(message(seq));
    history.retainedFrom = 5;
    sequencer.activate(0);
    arrive(1, 7, 8);
    await vi.advanceTimersByTimeAsync(REORDER_MS);
    expect(skipped).toEqual([[2, 4]]);
    expect(delivered).toEqual([1, 5, 6, 7, 8]);
    expect(await metric('roomcast_gateway_gap_fills_total')).toContain('result="filled"} 1');
  });

  it('skips a seq that history never had, below a held message', async () => {
    const { sequencer, delivered, history, skipped, arrive } = setUp();
    history.store(message(1), message(3));
    sequencer.activate(0);
    arrive(1, 3);
    await vi.advanceTimersByTimeAsync(REORDER_MS);
    expect(skipped).toEqual([[2, 2]]);
    expect(delivered).toEqual([1, 3]);
  });

  it('finds what a quiet room lost from the tail a viewer report names, and the pin as of the head', async () => {
    const { sequencer, delivered, history, caughtUp } = setUp(2);
    sequencer.activate(2);
    history.store(message(3), message(4));
    sequencer.noteTail(2);
    await vi.advanceTimersByTimeAsync(0);
    expect(history.queries).toEqual([]);
    sequencer.noteTail(4);
    await vi.advanceTimersByTimeAsync(0);
    expect(delivered).toEqual([3, 4]);
    expect(caughtUp).toEqual([undefined]);
    expect(sequencer.tailSeq).toBe(4);
  });

  it('after a bus reconnect reads history to its real tail', async () => {
    const { sequencer, delivered, history } = setUp();
    sequencer.activate(0);
    for (let seq = 1; seq <= 7; seq++) history.store(message(seq));
    sequencer.recheckTail();
    await vi.advanceTimersByTimeAsync(0);
    // Pages of 3: 1-3, 4-6, 7; then the tail is known.
    expect(delivered).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(sequencer.tailSeq).toBe(7);
  });

  it('retries a failed fill after FILL_RETRY_MS', async () => {
    const { sequencer, delivered, history, arrive, metric } = setUp();
    history.store(message(1), message(2), message(3));
    history.failNext = 1;
    sequencer.activate(0);
    arrive(1, 3);
    await vi.advanceTimersByTimeAsync(REORDER_MS);
    expect(delivered).toEqual([1]);
    expect(await metric('roomcast_gateway_gap_fills_total')).toContain('result="failed"} 1');
    await vi.advanceTimersByTimeAsync(FILL_RETRY_MS);
    expect(delivered).toEqual([1, 2, 3]);
  });

  it('keeps messages that arrive before activation aside and hands on the new ones in order', () => {
    const { sequencer, delivered, arrive } = setUp();
    arrive(12, 11, 10);
    expect(delivered).toEqual([]);
    sequencer.activate(10);
    expect(delivered).toEqual([11, 12]);
  });

  it(`keeps at most ${MAX_EARLY} messages aside before activation; history brings the rest`, async () => {
    const { sequencer, delivered, history, arrive } = setUp();
    const count = MAX_EARLY + 5;
    for (let seq = 1; seq <= count; seq++) history.store(message(seq));
    arrive(...Array.from({ length: count }, (_, i) => i + 1));
    sequencer.activate(0);
    expect(delivered).toHaveLength(MAX_EARLY);
    sequencer.noteTail(count);
    await vi.advanceTimersByTimeAsync(0);
    expect(delivered).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  });

  it('does nothing more once closed', async () => {
    const { sequencer, history, arrive } = setUp();
    history.store(message(1), message(2), message(3));
    sequencer.activate(0);
    arrive(1, 3);
    sequencer.close();
    await vi.advanceTimersByTimeAsync(10 * REORDER_MS);
    expect(history.queries).toEqual([]);
  });
});
