import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../../src/shared/codec/codec.js';
import type { ServerFrame } from '../../src/shared/protocol/frames.js';
import { AnswerOutbox } from '../../src/gateway/answer-outbox.js';
import { FakeConn, RecordingPublisher } from '../helpers/fanout-fakes.js';

/** Lets the microtasks queued so far run, as the handling of one room service reply does. */
const afterMicrotasks = () => Promise.resolve();
const ack = (id: string, seq: number): ServerFrame => ({ t: 'ack', id, room: 'lobby', seq });

describe('AnswerOutbox', () => {
  it("writes a connection's frames of one reply once its microtasks have run, in order, in one corked write", async () => {
    const outbox = new AnswerOutbox();
    const conn = new FakeConn(new RecordingPublisher(), 'c1');
    for (const [id, seq] of [['a', 1], ['b', 2], ['c', 3]] as const) outbox.send(conn, encodeFrame(conn.format, ack(id, seq)));
    expect(conn.received).toEqual([]);

    await afterMicrotasks();

    expect(conn.corked).toEqual([[ack('a', 1), ack('b', 2), ack('c', 3)]]);
    expect(conn.received).toEqual([ack('a', 1), ack('b', 2), ack('c', 3)]);
  });

  it('gives each connection its own write, a lone frame without corking, and starts afresh after each flush', async () => {
    const outbox = new AnswerOutbox();
    const publisher = new RecordingPublisher();
    const one = new FakeConn(publisher, 'c1');
    const two = new FakeConn(publisher, 'c2', 'json');
    outbox.send(one, encodeFrame(one.format, ack('a', 1)));
    outbox.send(two, encodeFrame(two.format, ack('x', 7)));
    outbox.send(one, encodeFrame(one.format, ack('b', 2)));

    await afterMicrotasks();
    expect(one.corked).toEqual([[ack('a', 1), ack('b', 2)]]);
    expect(two.corked).toEqual([]);
    expect(two.received).toEqual([ack('x', 7)]);

    outbox.send(two, encodeFrame(two.format, ack('y', 8)));
    await afterMicrotasks();
    expect(two.received).toEqual([ack('x', 7), ack('y', 8)]);
    expect(one.received).toHaveLength(2);
  });
});
