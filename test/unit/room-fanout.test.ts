/**
 * RoomFanout as the three parts make it: membership, join catch-up with lastSeq against the live
 * stream, gaps, degraded connections, kicks and notices. On MemoryBus with a fake room history served
 * on the room service's subject, a recording publisher and vitest's fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RoomFanout, type FanoutSettings } from '../../src/gateway/room-fanout.js';
import { RoomAccess } from '../../src/gateway/room-access.js';
import { RoomClient } from '../../src/gateway/room-client.js';
import { MemoryBus } from '../../src/shared/bus/memory-bus.js';
import { serve } from '../../src/shared/bus/rpc.js';
import { systemClock } from '../../src/shared/clock.js';
import { encodeBusMessage } from '../../src/shared/codec/codec.js';
import { silentLogger } from '../../src/shared/log.js';
import { GatewayMetrics, MetricsRegistry } from '../../src/shared/metrics.js';
import { subjects, type AccessReply, type AccessRequest, type HistoryRequest, type RoomEvent } from '../../src/shared/protocol/bus-messages.js';
import type { MessageKind, RoomMessage, Seq } from '../../src/shared/protocol/frames.js';
import { FakeConn, FakeHistory, message, RecordingPublisher } from '../helpers/fanout-fakes.js';

const WINDOW_MS = 50;
const REORDER_MS = 100;
const SETTINGS: FanoutSettings = {
  batchWindowMs: WINDOW_MS, windowMsPer1000Viewers: 20, batchMaxMessages: 200, recentMessages: 3,
  reorderWindowMs: REORDER_MS, historyPageMax: 4, ringSize: 5, roomBudgetPerSec: 0,
};
const ROOM = 'r';

function setUp(stored = 0) {
  const bus = new MemoryBus();
  const history = new FakeHistory();
  for (let seq = 1; seq <= stored; seq++) history.store(message(seq));
  serve<HistoryRequest, ReturnType<FakeHistory['read']>>(bus, subjects.roomHistory, 'rooms', async (request) => history.read(request), (error) => { throw error; });
  const publisher = new RecordingPublisher();
  serve<AccessRequest, AccessReply>(bus, subjects.roomAccess, 'rooms', async () => ({ bans: [] }), (error) => { throw error; });
  const metrics = new GatewayMetrics(new MetricsRegistry());
  const roomClient = new RoomClient(bus, 1000, metrics, { windowMs: 0, maxItems: 1 });
  const access = new RoomAccess({ roomClient, clock: systemClock });
  const fanout = new RoomFanout({ bus, publisher, clock: systemClock, log: silentLogger, metrics, settings: SETTINGS, roomClient, access });
  fanout.start();
  const conn = (id: string, uid = id) => new FakeConn(publisher, id, 'msgpack', uid);
  const event = (e: RoomEvent) => bus.publish(subjects.room(ROOM), encodeBusMessage(e));
  /** The room service stores the message and publishes it (or loses it on the bus with `lost`). */
  const roomPublishes = (seq: Seq, kind: MessageKind = 'chat', options: { lost?: boolean; stored?: boolean } = {}) => {
    const m = message(seq, kind);
    if (options.stored !== false) history.store(m);
    if (!options.lost) event({ t: 'msgs', room: ROOM, ms: [m] });
    return m;
  };
  /** Lets the bus deliver and the room's window end. */
  const settle = async () => { await bus.flush(); await vi.advanceTimersByTimeAsync(WINDOW_MS); };
  return { bus, history, publisher, fanout, access, conn, event, roomPublishes, settle };
}

const seqsOf = (msgs: RoomMessage[]) => msgs.map((m) => m.seq);

describe('the room fan-out', () => {
  let stop: (() => Promise<void>) | undefined;
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(async () => {
    await stop?.();
    vi.useRealTimers();
  });

  function start(stored = 0) {
    const setup = setUp(stored);
    stop = async () => { setup.fanout.stop(); await setup.bus.close(); };
    return setup;
  }

  it('subscribes to the room on the first join and unsubscribes after the last member leaves', async () => {
    const { bus, fanout, conn } = start();
    const [a, b] = [conn('a'), conn('b')];
    await fanout.join(a, ROOM);
    await fanout.join(b, ROOM);
    expect(bus.subscriptionCount(subjects.room(ROOM))).toBe(1);
    expect(fanout.roomCount).toBe(1);
    expect(fanout.leave(a, ROOM)).toBe(true);
    expect(bus.subscriptionCount(subjects.room(ROOM))).toBe(1);
    fanout.leaveAll(b);
    expect(bus.subscriptionCount(subjects.room(ROOM))).toBe(0);
    expect(fanout.roomCount).toBe(0);
    expect(fanout.leave(a, ROOM)).toBe(false);
  });

  it('a plain join brings the latest messages, then the live stream without a duplicate', async () => {
    const { fanout, conn, roomPublishes, settle } = start(12);
    const viewer = conn('a');
    await fanout.join(viewer, ROOM);
    const [joined] = viewer.framesOf('joined');
    expect(joined).toMatchObject({ room: ROOM, seq: 12, viewers: 1 });
    expect(seqsOf(joined!.msgs)).toEqual([10, 11, 12]);
    roomPublishes(13);
    roomPublishes(14);
    await settle();
    expect(viewer.seqs()).toEqual([13, 14]);
  });

  it('a rejoin with lastSeq gets exactly what it missed: history pages up to the ring, then the ring', async () => {
    const { fanout, conn, history, roomPublishes, settle } = start(12);
    const first = conn('first');
    await fanout.join(first, ROOM);
    const viewer = conn('back');
    await fanout.join(viewer, ROOM, 2);
    const [joined] = viewer.framesOf('joined');
    expect(joined!.seq).toBe(12);
    expect(joined!.gap).toBeUndefined();
    expect(seqsOf(joined!.msgs)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // The ring (5) held 8..12; pages of 4 brought 3..6 and 7.
    expect(history.queries.slice(1)).toEqual([
      { room: ROOM, afterSeq: 2, beforeSeq: 8, limit: 4 },
      { room: ROOM, afterSeq: 6, beforeSeq: 8, limit: 4 },
    ]);
    roomPublishes(13);
    await settle();
    expect(viewer.seqs()).toEqual([13]);
  });

  it('a rejoin older than history is told the gap and gets the rest', async () => {
    const { fanout, conn, history } = start(12);
    history.retainedFrom = 6;
    const viewer = conn('back');
    await fanout.join(viewer, ROOM, 1);
    const [joined] = viewer.framesOf('joined');
    expect(joined!.gap).toEqual({ from: 2, to: 5 });
    expect(seqsOf(joined!.msgs)).toEqual([6, 7, 8, 9, 10, 11, 12]);
  });

  it('reorders the live stream, drops a duplicate and reports a message lost for good with a gap frame', async () => {
    const { fanout, conn, roomPublishes, event, settle } = start();
    const viewer = conn('a');
    await fanout.join(viewer, ROOM);
    roomPublishes(1);
    roomPublishes(3);
    roomPublishes(2);
    const again = message(2);
    event({ t: 'msgs', room: ROOM, ms: [again] });
    await settle();
    expect(viewer.seqs()).toEqual([1, 2, 3]);
    roomPublishes(4, 'chat', { lost: true, stored: false });
    roomPublishes(5, 'gift');
    await settle();
    await vi.advanceTimersByTimeAsync(REORDER_MS);
    await settle();
    expect(viewer.received.slice(-2)).toEqual([{ t: 'gap', room: ROOM, from: 4, to: 4 }, { t: 'messages', room: ROOM, msgs: [message(5, 'gift')] }]);
    const stats = fanout.stats(viewer, ROOM)!;
    expect(stats).toMatchObject({ seq: 5, delivered: 4, dropped: { duplicate: 1, gap_unrecoverable: 1, backpressure: 0 } });
  });

  it('fills from history what the bus lost', async () => {
    const { fanout, conn, roomPublishes, settle } = start();
    const viewer = conn('a');
    await fanout.join(viewer, ROOM);
    roomPublishes(1);
    roomPublishes(2, 'chat', { lost: true });
    roomPublishes(3);
    await settle();
    expect(viewer.seqs()).toEqual([1]);
    await vi.advanceTimersByTimeAsync(REORDER_MS);
    await settle();
    expect(viewer.seqs()).toEqual([1, 2, 3]);
  });

  it('a degraded connection gets the room\'s high-priority messages only, until restored', async () => {
    const { fanout, conn, roomPublishes, settle } = start();
    const [slow, fine] = [conn('slow'), conn('fine')];
    await fanout.join(slow, ROOM);
    await fanout.join(fine, ROOM);
    fanout.setDegraded(slow, true);
    roomPublishes(1);
    roomPublishes(2, 'gift');
    await settle();
    expect(slow.seqs()).toEqual([2]);
    expect(fine.seqs()).toEqual([1, 2]);
    expect(fanout.stats(fine, ROOM)!.dropped.backpressure).toBe(1);
    fanout.setDegraded(slow, false);
    roomPublishes(3);
    await settle();
    expect(slow.seqs()).toEqual([2, 3]);
  });

  it('a kick takes the user\'s connections out of the room with left banned, and the room\'s rules hold the ban', async () => {
    const { fanout, access, conn, event, bus } = start();
    const [phone, laptop, other] = [conn('p', 'bob'), conn('l', 'bob'), conn('o', 'ann')];
    for (const c of [phone, laptop, other]) await fanout.join(c, ROOM);
    event({ t: 'kick', room: ROOM, uid: 'bob', reason: 'banned', untilMs: Date.now() + 60_000 });
    await bus.flush();
    expect(() => access.check(ROOM, 'bob')).toThrow(expect.objectContaining({ code: 'banned' }));
    expect(() => access.check(ROOM, 'ann')).not.toThrow();
    for (const c of [phone, laptop]) {
      expect(c.framesOf('left')).toEqual([{ t: 'left', room: ROOM, reason: 'banned' }]);
      expect(fanout.isMember(c, ROOM)).toBe(false);
    }
    expect(fanout.isMember(other, ROOM)).toBe(true);
  });

  it('writes a notice at once, after the messages pending', async () => {
    const { fanout, conn, event, roomPublishes, bus, settle } = start();
    const viewer = conn('a');
    await fanout.join(viewer, ROOM);
    roomPublishes(1);
    await settle();
    roomPublishes(2, 'pin');
    event({ t: 'notice', room: ROOM, notice: { t: 'notice', room: ROOM, text: 'pinned', code: 'pinned' } });
    await bus.flush();
    expect(viewer.received.slice(-2).map((f) => f.t)).toEqual(['messages', 'notice']);
    expect(viewer.seqs()).toEqual([1, 2]);
  });

  it('reports its local members and the newest seq, and pushes the fleet\'s viewer count', async () => {
    const { fanout, conn, bus } = start(4);
    const viewer = conn('a');
    await fanout.join(viewer, ROOM);
    expect(fanout.localCounts()).toEqual([[ROOM, 1, 4]]);
    fanout.applyViewerReport(ROOM, 7, 4);
    await bus.flush();
    // A quiet room's count waits for the writer's tick (paced: see the batch writer's suite).
    expect(viewer.framesOf('viewers')).toEqual([]);
    await vi.advanceTimersByTimeAsync(WINDOW_MS);
    expect(viewer.framesOf('viewers')).toEqual([{ t: 'viewers', room: ROOM, count: 7 }]);
    expect(fanout.stats(viewer, ROOM)?.viewers).toBe(7);
  });
});
