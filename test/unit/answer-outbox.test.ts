/**
 * The answer outbox: a connection's answers of one turn go out corked, in order, at the end of the
 * turn's I/O callbacks, after the rooms due in that turn are written; a room's batch takes along the
 * answers of one sender waiting on that room, so that its copy of the frame and its `ack` are one write
 * (on the gateway, one sendto: bench/README.md).
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
const ack = (id: string, seq: number, room = 'lobby'): ServerFrame => ({ t: 'ack', id, room, seq });
const kinds = (frames: ServerFrame[][]) => frames.map((write) => write.map((frame) => frame.t));

describe('AnswerOutbox', () => {
  it("holds a connection's answers past the turn's microtasks and writes them in order, in one corked write", async () => {
    const outbox = new AnswerOutbox();
    const conn = new FakeConn(new RecordingPublisher(), 'c1');
    for (const [id, seq] of [['a', 1], ['b', 2], ['c', 3]] as const) outbox.send(conn, encodeFrame(conn.format, ack(id, seq)), 'lobby');

    await afterMicrotasks();
    expect(conn.received).toEqual([]);

    await afterImmediates();
    expect(conn.corked).toEqual([[ack('a', 1), ack('b', 2), ack('c', 3)]]);
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
});

describe("a room's batch and its sender's answers", () => {
  function setUp() {
    const publisher = new RecordingPublisher();
    const writer = new BatchWriter({
      publisher, clock: systemClock, metrics: new GatewayMetrics(new MetricsRegistry()),
      settings: { batchWindowMs: 50, windowMsPer1000Viewers: 0, batchMaxMessages: 100 },
    });
    const output = writer.open('lobby', new RoomCounters(), { viewers: () => 3, flushed: () => undefined });
    const join = (id: string, options: { format?: 'msgpack' | 'json'; degraded?: boolean } = {}) => {
      const conn = new FakeConn(publisher, id, options.format);
      writer.subscribe(output, conn, options.degraded ?? false);
      return conn;
    };
    const answer = (conn: FakeConn, frame: ServerFrame) => writer.answer(conn, encodeFrame(conn.format, frame), 'lobby');
    return { publisher, writer, output, join, answer };
  }

  it("writes the sender's copy of the frame and its ack in one corked write, everyone else's by the topic", async () => {
    const { publisher, writer, output, join, answer } = setUp();
    const sender = join('sender');
    const viewer = join('viewer');
    // The answer comes before the message reaches the room, as when the reply is read first.
    answer(sender, ack('a', 1));
    writer.add(output, message(1));
    await afterImmediates();

    expect(kinds(sender.corked)).toEqual([['messages', 'ack']]);
    expect(sender.received.map((frame) => frame.t)).toEqual(['messages', 'ack']);
    expect(viewer.received.map((frame) => frame.t)).toEqual(['messages']);
    expect(publisher.writes.map((write) => [write.frame.t, write.except])).toEqual([['messages', 'sender']]);
  });

  it("takes along one sender per frame; another's answers follow in their own write", async () => {
    const { writer, output, join, answer } = setUp();
    const first = join('first');
    const second = join('second');
    answer(first, ack('a', 1));
    answer(second, ack('b', 2));
    writer.add(output, message(1));
    writer.add(output, message(2));
    await afterImmediates();

    expect(kinds(first.corked)).toEqual([['messages', 'ack']]);
    expect(kinds(second.corked)).toEqual([['ack']]);
    expect(second.received.map((frame) => frame.t)).toEqual(['messages', 'ack']);
  });

  it('publishes to everyone when the waiting sender is not on the topic (degraded, another format, or an answer about another room)', async () => {
    const { publisher, writer, output, join, answer } = setUp();
    const degraded = join('degraded', { degraded: true });
    const inJson = join('json', { format: 'json' });
    const elsewhere = join('elsewhere');
    answer(degraded, ack('a', 1));
    writer.answer(elsewhere, encodeFrame(elsewhere.format, ack('c', 9, 'other')), 'other');
    writer.add(output, message(1, 'gift'));
    await afterImmediates();

    expect(publisher.writes.every((write) => write.except === undefined)).toBe(true);
    expect(kinds(degraded.corked)).toEqual([['ack']]);
    expect(degraded.received.map((frame) => frame.t)).toEqual(['messages', 'ack']);
    expect(inJson.received.map((frame) => frame.t)).toEqual(['messages']);
    expect(kinds(elsewhere.corked)).toEqual([['ack']]);
  });

  it("writes a JSON sender's frame from the JSON topic with its ack", async () => {
    const { publisher, writer, output, join, answer } = setUp();
    const viewer = join('viewer');
    const inJson = join('json', { format: 'json' });
    answer(inJson, ack('b', 2));
    writer.add(output, message(2));
    await afterImmediates();

    expect(kinds(inJson.corked)).toEqual([['messages', 'ack']]);
    expect(viewer.received.map((frame) => frame.t)).toEqual(['messages']);
    expect(publisher.writes.map((write) => [write.topic, write.except])).toEqual([['m/lobby', undefined], ['j/lobby', 'json']]);
  });
});
