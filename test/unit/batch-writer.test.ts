/**
 * The batch writer (docs/protocol.md 6.10): the batch window, fixed and grown by local viewers, the
 * first message after a quiet window at once, the high-priority tier for degraded connections, and one
 * encode per wire format per batch. Frames go through a recording publisher and are decoded with the
 * codec; time is vitest's fake clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as codec from '../../src/shared/codec/codec.js';
import { BatchWriter, VIEWER_COUNT_WRITES_PER_TICK, type BatchSettings } from '../../src/gateway/batch-writer.js';
import { RoomCounters } from '../../src/gateway/room-stats.js';
import { systemClock } from '../../src/shared/clock.js';
import { GatewayMetrics, MetricsRegistry } from '../../src/shared/metrics.js';
import type { RoomMessage, Seq } from '../../src/shared/protocol/frames.js';
import { FakeConn, message, RecordingPublisher } from '../helpers/fanout-fakes.js';

vi.mock('../../src/shared/codec/codec.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/shared/codec/codec.js')>();
  return { ...original, encodeMsgpack: vi.fn(original.encodeMsgpack), encodeJson: vi.fn(original.encodeJson) };
});

const WINDOW_MS = 50;
const SETTINGS: BatchSettings = { batchWindowMs: WINDOW_MS, windowMsPer1000Viewers: 20, batchMaxMessages: 5 };

function setUp(options: { viewers?: number } = {}) {
  const publisher = new RecordingPublisher();
  const registry = new MetricsRegistry();
  const writer = new BatchWriter({ publisher, clock: systemClock, metrics: new GatewayMetrics(registry), settings: SETTINGS });
  const counters = new RoomCounters();
  const flushed: Seq[][] = [];
  const output = writer.open('r', counters, {
    viewers: () => options.viewers ?? 1,
    flushed: (msgs: RoomMessage[]) => flushed.push(msgs.map((m) => m.seq)),
  });
  const join = (id: string, format: 'msgpack' | 'json' = 'msgpack', degraded = false) => {
    const conn = new FakeConn(publisher, id, format);
    writer.subscribe(output, conn, degraded);
    return conn;
  };
  const add = (...messages: RoomMessage[]) => { for (const m of messages) writer.add(output, m); };
  const metric = async (name: string) => registry.registry.getSingleMetricAsString(name);
  writer.start();
  return { publisher, writer, output, counters, flushed, join, add, metric };
}

describe('the batch writer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.mocked(codec.encodeMsgpack).mockClear();
    vi.mocked(codec.encodeJson).mockClear();
  });
  afterEach(() => { vi.useRealTimers(); });

  it('writes the first message after a quiet window at once, with the ones that arrived in the same turn', async () => {
    const { join, add, flushed, writer } = setUp();
    const viewer = join('a');
    add(message(1), message(2));
    expect(viewer.received).toEqual([]);
    await vi.advanceTimersToNextTimerAsync();
    expect(viewer.received).toEqual([{ t: 'messages', room: 'r', msgs: [message(1), message(2)] }]);
    expect(flushed).toEqual([[1, 2]]);
    writer.stop();
  });

  it('holds later messages for the rest of the window and writes them together on the tick at its end', async () => {
    const { join, add, writer } = setUp();
    const viewer = join('a');
    add(message(1));
    await vi.advanceTimersByTimeAsync(1);
    add(message(2));
    await vi.advanceTimersByTimeAsync(10);
    add(message(3));
    await vi.advanceTimersByTimeAsync(WINDOW_MS - 12);
    expect(viewer.seqs()).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1);
    expect(viewer.received.map((f) => f.t === 'messages' && f.msgs.map((m) => m.seq))).toEqual([[1], [2, 3]]);
    writer.stop();
  });

  it('keeps no timer while no room waits for the tick, so that an idle gateway sleeps', async () => {
    const { join, add, writer } = setUp();
    const viewer = join('a');
    expect(vi.getTimerCount()).toBe(0);
    // A message after a quiet window goes at once: nothing waits for the tick.
    add(message(1));
    await vi.advanceTimersToNextTimerAsync();
    expect(viewer.seqs()).toEqual([1]);
    expect(vi.getTimerCount()).toBe(0);
    // One within the window waits for the tick, which stops once it has written it.
    add(message(2));
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(WINDOW_MS);
    expect(viewer.seqs()).toEqual([1, 2]);
    expect(vi.getTimerCount()).toBe(0);
    writer.stop();
  });

  it('waits longer in a room with many local viewers: 20 ms per 1,000 once that exceeds the window', async () => {
    const { join, add, writer } = setUp({ viewers: 5000 });
    const viewer = join('a');
    add(message(1));
    await vi.advanceTimersByTimeAsync(1);
    add(message(2));
    // A 100 ms window: the tick at 50 ms is too early, the one at 100 ms is its end.
    await vi.advanceTimersByTimeAsync(WINDOW_MS + 10);
    expect(viewer.seqs()).toEqual([1]);
    await vi.advanceTimersByTimeAsync(WINDOW_MS);
    expect(viewer.seqs()).toEqual([1, 2]);
    writer.stop();
  });

  it(`writes a batch at once when it reaches ${SETTINGS.batchMaxMessages} messages`, () => {
    const { join, add, writer } = setUp();
    const viewer = join('a');
    add(...[1, 2, 3, 4, 5].map((seq) => message(seq)));
    expect(viewer.seqs()).toEqual([1, 2, 3, 4, 5]);
    writer.stop();
  });

  it('gives degraded connections every high-priority message and no chat, and counts the chat they miss', async () => {
    const { join, add, writer, counters, metric } = setUp();
    const full = join('full');
    const degraded = join('slow', 'msgpack', true);
    add(message(1), message(2, 'gift'), message(3), message(4, 'system'));
    await vi.advanceTimersToNextTimerAsync();
    expect(full.seqs()).toEqual([1, 2, 3, 4]);
    expect(degraded.seqs()).toEqual([2, 4]);
    expect(counters.dropped.backpressure).toBe(2);
    expect(await metric('roomcast_gateway_dropped_deliveries_total')).toContain('reason="backpressure",priority="0"} 2');
    // A batch of chat only writes nothing to the degraded tier.
    await vi.advanceTimersByTimeAsync(WINDOW_MS);
    add(message(5));
    await vi.advanceTimersToNextTimerAsync();
    expect(degraded.seqs()).toEqual([2, 4]);
    writer.stop();
  });

  it('moves a connection between the tiers', async () => {
    const { join, add, writer, output } = setUp();
    const conn = join('a');
    writer.moveTier(output, conn, true);
    add(message(1), message(2, 'gift'));
    await vi.advanceTimersToNextTimerAsync();
    expect(conn.seqs()).toEqual([2]);
    writer.moveTier(output, conn, false);
    await vi.advanceTimersByTimeAsync(WINDOW_MS);
    add(message(3));
    await vi.advanceTimersToNextTimerAsync();
    expect(conn.seqs()).toEqual([2, 3]);
    writer.stop();
  });

  it('encodes each batch once per wire format that has subscribers, however many connections use it', async () => {
    const { join, add, writer } = setUp();
    const msgpackConns = [join('a'), join('b'), join('c')];
    add(message(1));
    await vi.advanceTimersToNextTimerAsync();
    expect(vi.mocked(codec.encodeMsgpack)).toHaveBeenCalledTimes(1);
    expect(vi.mocked(codec.encodeJson)).not.toHaveBeenCalled();
    const jsonConns = [join('d', 'json'), join('e', 'json')];
    await vi.advanceTimersByTimeAsync(WINDOW_MS);
    add(message(2));
    await vi.advanceTimersToNextTimerAsync();
    expect(vi.mocked(codec.encodeMsgpack)).toHaveBeenCalledTimes(2);
    expect(vi.mocked(codec.encodeJson)).toHaveBeenCalledTimes(1);
    for (const conn of msgpackConns) expect(conn.seqs()).toEqual([1, 2]);
    for (const conn of jsonConns) expect(conn.seqs()).toEqual([2]);
    writer.stop();
  });

  it('counts each topic\'s subscribers itself: deliveries follow joins, leaves and tier moves', async () => {
    const { join, add, writer, output, metric } = setUp();
    const [a, b] = [join('a'), join('b')];
    const c = join('c', 'json');
    add(message(1), message(2));
    writer.flush(output);
    expect(await metric('roomcast_gateway_deliveries_total')).toContain('roomcast_gateway_deliveries_total 6');
    writer.unsubscribe(output, b, false);
    writer.moveTier(output, c, true);
    add(message(3), message(4, 'gift'));
    writer.flush(output);
    // a gets both, c (degraded) the gift only, b nothing.
    expect(await metric('roomcast_gateway_deliveries_total')).toContain('roomcast_gateway_deliveries_total 9');
    expect([a.seqs(), b.seqs(), c.seqs()]).toEqual([[1, 2, 3, 4], [1, 2], [1, 2, 4]]);
    expect(Array.from(output.subscribers)).toEqual([1, 0, 0, 1]);
  });

  it('writes room-wide frames to both tiers, after the pending batch when flushed first', async () => {
    const { join, add, writer, output } = setUp();
    const full = join('full');
    const degraded = join('slow', 'json', true);
    add(message(1, 'gift'));
    writer.flush(output);
    writer.publishFrame(output, { t: 'gap', room: 'r', from: 2, to: 3 });
    expect(full.received.map((f) => f.t)).toEqual(['messages', 'gap']);
    expect(degraded.received).toEqual([{ t: 'messages', room: 'r', msgs: [message(1, 'gift')] }, { t: 'gap', room: 'r', from: 2, to: 3 }]);
    await vi.advanceTimersByTimeAsync(WINDOW_MS);
    expect(full.received).toHaveLength(2);
    writer.stop();
  });

  it('writes a changed viewer count with the room\'s pending batch, just before it, and only the newest', async () => {
    const { join, add, writer, output, publisher } = setUp();
    const viewer = join('a');
    const degraded = join('slow', 'json', true);
    add(message(1, 'gift'));
    writer.setViewers(output, { t: 'viewers', room: 'r', count: 5 });
    writer.setViewers(output, { t: 'viewers', room: 'r', count: 6 });
    expect(viewer.received).toEqual([]);
    await vi.advanceTimersToNextTimerAsync();
    expect(viewer.received).toEqual([{ t: 'viewers', room: 'r', count: 6 }, { t: 'messages', room: 'r', msgs: [message(1, 'gift')] }]);
    expect(degraded.received.map((f) => f.t)).toEqual(['viewers', 'messages']);
    // Nothing is left for the pacing: the count went with the batch.
    const writes = publisher.writes.length;
    await vi.advanceTimersByTimeAsync(WINDOW_MS * 2);
    expect(publisher.writes).toHaveLength(writes);
    writer.stop();
  });

  it(`paces the counts of quiet rooms: at most ${VIEWER_COUNT_WRITES_PER_TICK} connections a tick, oldest first, none twice`, async () => {
    const publisher = new RecordingPublisher();
    const writer = new BatchWriter({ publisher, clock: systemClock, metrics: new GatewayMetrics(new MetricsRegistry()), settings: SETTINGS });
    const roomSize = VIEWER_COUNT_WRITES_PER_TICK / 2;
    const rooms = ['a', 'b', 'c'].map((room) => {
      const output = writer.open(room, new RoomCounters(), { viewers: () => roomSize, flushed: () => undefined });
      const conns = Array.from({ length: roomSize }, (_, i) => {
        const conn = new FakeConn(publisher, `${room}${i}`, 'msgpack');
        writer.subscribe(output, conn, false);
        return conn;
      });
      return { output, first: conns[0]! };
    });
    writer.start();
    for (const [i, { output }] of rooms.entries()) writer.setViewers(output, { t: 'viewers', room: output.room, count: 10 + i });
    writer.setViewers(rooms[0]!.output, { t: 'viewers', room: 'a', count: 20 });
    const counts = () => rooms.map(({ first }) => first.framesOf('viewers').map((f) => f.count));
    expect(counts()).toEqual([[], [], []]);
    await vi.advanceTimersByTimeAsync(WINDOW_MS);
    expect(counts()).toEqual([[20], [11], []]);
    await vi.advanceTimersByTimeAsync(WINDOW_MS);
    expect(counts()).toEqual([[20], [11], [12]]);
    await vi.advanceTimersByTimeAsync(WINDOW_MS * 2);
    expect(counts()).toEqual([[20], [11], [12]]);
    writer.stop();
  });

  it('drops a viewer count still waiting when its room closes', async () => {
    const { join, writer, output } = setUp();
    const viewer = join('a');
    writer.setViewers(output, { t: 'viewers', room: 'r', count: 3 });
    writer.close(output);
    await vi.advanceTimersByTimeAsync(WINDOW_MS * 2);
    expect(viewer.received).toEqual([]);
    writer.stop();
  });

  it('writes what is pending when a room closes, and nothing after', async () => {
    const { join, add, writer, output } = setUp();
    const viewer = join('a');
    add(message(1));
    writer.close(output);
    expect(viewer.seqs()).toEqual([1]);
    await vi.advanceTimersByTimeAsync(WINDOW_MS * 2);
    expect(viewer.received).toHaveLength(1);
    writer.stop();
  });
});
