/**
 * The answer outbox: a connection's answers of one turn go out corked, in order, at the end of the
 * turn's I/O callbacks, after the rooms due in that turn are published, so that uWS writes a sender's
 * room frame and its `ack` together (one socket write, checked with strace; here the order and the cork).
 */
import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../../src/shared/codec/codec.js';
import { GatewayMetrics, MetricsRegistry } from '../../src/shared/metrics.js';
import type { ServerFrame } from '../../src/shared/protocol/frames.js';
import { AnswerOutbox } from '../../src/gateway/answer-outbox.js';
import { BatchWriter } from '../../src/gateway/batch-writer.js';
import { RoomCounters } from '../../src/gateway/room-stats.js';
import { systemClock } from '../../src/shared/clock.js';
import { FakeConn, message, RecordingPublisher } from '../helpers/fanout-fakes.js';

const afterMicrotasks = () => Promise.resolve();
const afterImmediates = () => new Promise<void>((resolve) => setImmediate(resolve));
const ack = (id: string, seq: number): ServerFrame => ({ t: 'ack', id, room: 'lobby', seq });

describe('AnswerOutbox', () => {
  it("holds a connection's answers past the turn's microtasks and writes them in order, in one corked write", async () => {
    const outbox = new AnswerOutbox();
    const conn = new FakeConn(new RecordingPublisher(), 'c1');
    for (const [id, seq] of [['a', 1], ['b', 2], ['c', 3]] as const) outbox.send(conn, encodeFrame(conn.format, ack(id, seq)));

    await afterMicrotasks();
    expect(conn.received).toEqual([]);

    await afterImmediates();
    expect(conn.corked).toEqual([[ack('a', 1), ack('b', 2), ack('c', 3)]]);
    expect(conn.received).toEqual([ack('a', 1), ack('b', 2), ack('c', 3)]);
  });

  it('gives each connection its own corked write, a lone frame too, and starts afresh after each flush', async () => {
    const outbox = new AnswerOutbox();
    const publisher = new RecordingPublisher();
    const one = new FakeConn(publisher, 'c1');
    const two = new FakeConn(publisher, 'c2', 'json');
    outbox.send(one, encodeFrame(one.format, ack('a', 1)));
    outbox.send(two, encodeFrame(two.format, ack('x', 7)));
    outbox.send(one, encodeFrame(one.format, ack('b', 2)));

    await afterImmediates();
    expect(one.corked).toEqual([[ack('a', 1), ack('b', 2)]]);
    expect(two.corked).toEqual([[ack('x', 7)]]);

    outbox.send(two, encodeFrame(two.format, ack('y', 8)));
    await afterImmediates();
    expect(two.corked).toEqual([[ack('x', 7)], [ack('y', 8)]]);
    expect(one.received).toHaveLength(2);
  });

  it("publishes the rooms due in the turn first, so a sender's ack follows its room's frame", async () => {
    const publisher = new RecordingPublisher();
    const writer = new BatchWriter({
      publisher, clock: systemClock, metrics: new GatewayMetrics(new MetricsRegistry()),
      settings: { batchWindowMs: 50, windowMsPer1000Viewers: 0, batchMaxMessages: 100 },
    });
    const output = writer.open('lobby', new RoomCounters(), { viewers: () => 2, flushed: () => undefined });
    const sender = new FakeConn(publisher, 'sender');
    const viewer = new FakeConn(publisher, 'viewer');
    writer.subscribe(output, sender, false);
    writer.subscribe(output, viewer, false);
    const outbox = new AnswerOutbox(() => writer.flushImmediate());

    // The answer is queued before the message reaches the room: the room still goes first.
    outbox.send(sender, encodeFrame(sender.format, ack('a', 1)));
    writer.add(output, message(1));
    await afterImmediates();

    expect(publisher.writes.map((write) => write.frame.t)).toEqual(['messages']);
    expect(sender.received.map((frame) => frame.t)).toEqual(['messages', 'ack']);
    expect(viewer.received.map((frame) => frame.t)).toEqual(['messages']);
  });
});
