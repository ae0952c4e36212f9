/**
 * Writes each room's messages to its local connections in batches, by uWS topics in C++.
 *
 * A room's messages are coalesced for its batch window (longer in a room with many viewers here, see
 * roomWindowMs) and written as one `messages` frame, encoded once per wire format that has
 * subscribers. The first message after a quiet window goes out at once (after the messages that
 * arrived with it). A room has two tiers per wire format: the full stream, and a high-priority one
 * that carries each batch without its chat, for degraded connections (SlowConsumers decides who).
 *
 * A room's viewer count is a frame to every connection in it, so it is written with the room's next
 * batch when one is pending (uWS sends what a connection gets in one turn as one write), and otherwise
 * paced: at most VIEWER_COUNT_WRITES_PER_TICK connections' worth per tick. A report that changes the
 * count of every room (after a flash crowd, or in a busy fleet every interval) then never stalls the
 * messages behind tens of thousands of writes at once.
 *
 * The room service's answers (a send's `ack`) are written at the end of the turn, after the rooms due
 * then: a room's batch carries one waiting sender's answers in that sender's write (AnswerOutbox), so a
 * chat message in a quiet room costs its sender one write, not two.
 *
 * Most rooms are small and quiet, so the work per message outside uWS's writes is kept to a few
 * steps: the writer counts each topic's subscribers itself (no call into uWS per flush), a format or
 * tier nobody uses is neither encoded nor written, the rooms due at once share one setImmediate, and
 * a room with nothing pending costs nothing per tick.
 */
import type { Clock } from '../shared/clock.js';
import { encodeJson, encodeMsgpack } from '../shared/codec/codec.js';
import type { GatewayMetrics } from '../shared/metrics.js';
import { PRIORITY_LOW } from '../shared/protocol/frames.js';
import type { MessagesFrame, RoomId, RoomMessage, ServerFrame, ViewersFrame, WireFormat } from '../shared/protocol/frames.js';
import { AnswerOutbox } from './answer-outbox.js';
import type { RoomCounters } from './room-stats.js';
import type { Conn, Publisher } from './uws-server.js';

export interface BatchSettings {
  batchWindowMs: number;
  /**
   * A room's window grows by this per 1,000 local viewers once that exceeds batchWindowMs: a flush
   * costs a socket write per viewer, so a big room writes less often and more per frame (0: fixed).
   */
  windowMsPer1000Viewers: number;
  batchMaxMessages: number;
}

export interface BatchWriterDeps {
  publisher: Publisher;
  clock: Clock;
  metrics: Pick<GatewayMetrics, 'batchFlushed' | 'dropped'>;
  settings: BatchSettings;
}

/** A room's topics: one per wire format, each in a full and a high-priority-only tier. */
export interface RoomTopics { full: Record<WireFormat, string>; high: Record<WireFormat, string> }

export function topicsOf(room: RoomId): RoomTopics {
  return { full: { msgpack: `m/${room}`, json: `j/${room}` }, high: { msgpack: `mh/${room}`, json: `jh/${room}` } };
}

const MSGPACK = 0;
const JSON_FORMAT = 1;
const FULL = 0;
const HIGH = 2;
/**
 * Connections written per tick with viewer counts of rooms that have no batch pending: 20,000 a second
 * at the 50 ms window, about 15 ms of one core per tick at the slowest write measured (bench/README.md).
 * A room larger than this goes alone in its tick.
 */
export const VIEWER_COUNT_WRITES_PER_TICK = 1000;

/**
 * A room's batch window: the configured one, longer for a room with many viewers on this gateway.
 * Each flush is one socket write per viewer (about 7 µs of CPU each on the 2-core machine of
 * bench/README.md), so 10,000 viewers at 15 ms per 1,000 flush every 150 ms: 67 k writes/s instead of
 * 200 k, about half of one core, and a latency p99 near 210 ms.
 */
export function roomWindowMs(localViewers: number, settings: Pick<BatchSettings, 'batchWindowMs' | 'windowMsPer1000Viewers'>): number {
  return Math.max(settings.batchWindowMs, (localViewers * settings.windowMsPer1000Viewers) / 1000);
}

export interface RoomOutputHooks {
  /** Local viewers of the room: they set its window. */
  viewers(): number;
  /** A batch was written (in seq order). */
  flushed(msgs: RoomMessage[]): void;
}

/** One room's output: its topics, who is on them, and its pending batch. */
export class RoomOutput {
  readonly topics: RoomTopics;
  /** Subscribers per topic, by tier + format index (FULL/HIGH + MSGPACK/JSON_FORMAT): kept here, not asked of uWS. */
  readonly subscribers = new Int32Array(4);
  batch: RoomMessage[] = [];
  /** When the last batch was written; a message after a quiet window goes out at once. */
  flushedAtMs = Number.NEGATIVE_INFINITY;
  flushScheduled = false;
  closed = false;
  /** The newest viewer count not yet written: it goes with the next batch, or its turn in the pacing. */
  viewers: ViewersFrame | null = null;

  constructor(readonly room: RoomId, readonly counters: RoomCounters, readonly hooks: RoomOutputHooks) {
    this.topics = topicsOf(room);
  }
}

export class BatchWriter {
  /** Room service answers, written after the turn's rooms; a batch carries one sender's along (publishTo). */
  private readonly answers = new AnswerOutbox(() => this.flushImmediate());
  /** Rooms with a pending batch. */
  private readonly dirty = new Set<RoomOutput>();
  /** Rooms with a viewer count to write and no batch to carry it, in the order they got it. */
  private readonly countsWaiting = new Set<RoomOutput>();
  /** Rooms to write once this turn's messages are in: one setImmediate for all of them. */
  private due: RoomOutput[] = [];
  private spare: RoomOutput[] = [];
  private readonly flushDueNow = () => this.flushImmediate();
  /** The tick runs only while a room waits for it (a batch or a viewer count): an idle gateway sleeps. */
  private tickTimer: NodeJS.Timeout | null = null;
  private running = false;
  /** Ticks fall on whole windows since start, whether or not the tick ran in between. */
  private startedAtMs = 0;
  /** What the batch being written delivered (messages × connections) and its bytes, without an object per publish. */
  private deliveries = 0;
  private bytes = 0;

  constructor(private readonly deps: BatchWriterDeps) {}

  start(): void {
    this.running = true;
    this.startedAtMs = this.deps.clock.now();
  }

  /** Stops the tick and writes every pending batch. */
  stop(): void {
    this.running = false;
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = null;
    this.flushDue(true);
  }

  private readonly tick = (): void => {
    this.tickTimer = null;
    this.flushDue();
    this.writeWaitingCounts();
    if (this.dirty.size > 0 || this.countsWaiting.size > 0) this.tickNext();
  };

  /** Arms the tick for the next whole window since start, unless it is armed. */
  private tickNext(): void {
    if (!this.running || this.tickTimer) return;
    const windowMs = this.deps.settings.batchWindowMs;
    this.tickTimer = setTimeout(this.tick, windowMs - ((this.deps.clock.now() - this.startedAtMs) % windowMs));
  }

  open(room: RoomId, counters: RoomCounters, hooks: RoomOutputHooks): RoomOutput {
    return new RoomOutput(room, counters, hooks);
  }

  /** Writes what is pending and stops the room's output. */
  close(output: RoomOutput): void {
    this.flush(output);
    output.closed = true;
    this.dirty.delete(output);
    this.countsWaiting.delete(output);
  }

  /** Puts the connection on the room's full or high-priority topic of its wire format. */
  subscribe(output: RoomOutput, conn: Conn, degraded: boolean): void {
    conn.subscribe(topicOf(output.topics, conn, degraded));
    output.subscribers[slotOf(conn, degraded)]! += 1;
  }

  unsubscribe(output: RoomOutput, conn: Conn, degraded: boolean): void {
    conn.unsubscribe(topicOf(output.topics, conn, degraded));
    output.subscribers[slotOf(conn, degraded)]! -= 1;
  }

  /** Moves a connection between the room's tiers. */
  moveTier(output: RoomOutput, conn: Conn, degraded: boolean): void {
    this.unsubscribe(output, conn, !degraded);
    this.subscribe(output, conn, degraded);
  }

  /** Writes a room service answer at the end of the turn, with the frame of `room` if that is written then (AnswerOutbox). */
  answer(conn: Conn, data: Uint8Array | string, room?: RoomId): void {
    this.answers.send(conn, data, room);
  }

  /** Queues a message of the room's stream (in seq order). */
  add(output: RoomOutput, message: RoomMessage): void {
    output.batch.push(message);
    if (output.batch.length >= this.deps.settings.batchMaxMessages) {
      this.flush(output);
      return;
    }
    this.dirty.add(output);
    // The first message after a quiet window need not wait for the tick: it goes out once the
    // messages that arrived with it are in (setImmediate), so batching adds latency only when busy.
    if (!output.flushScheduled && this.deps.clock.now() - output.flushedAtMs >= this.windowOf(output)) {
      output.flushScheduled = true;
      if (this.due.length === 0) setImmediate(this.flushDueNow);
      this.due.push(output);
    }
    if (!output.flushScheduled) this.tickNext();
  }

  /** Writes the rooms whose first message after a quiet window came in this turn (their setImmediate, or the answers'). */
  private flushImmediate(): void {
    const due = this.due;
    this.due = this.spare;
    for (const output of due) {
      output.flushScheduled = false;
      if (!output.closed) this.flush(output);
    }
    due.length = 0;
    this.spare = due;
  }

  /** Writes the rooms whose window is over (every pending room with `all`, as when stopping). */
  flushDue(all = false): void {
    const now = this.deps.clock.now();
    // A room is written at the tick nearest its window's end: half a tick early rather than a tick late.
    const slackMs = this.deps.settings.batchWindowMs / 2;
    for (const output of this.dirty) {
      if (!all && now - output.flushedAtMs < this.windowOf(output) - slackMs) continue;
      this.flush(output);
    }
  }

  /** Writes the room's pending batch now, after its viewer count if one waits. */
  flush(output: RoomOutput): void {
    this.dirty.delete(output);
    if (output.batch.length === 0) return;
    this.writeViewers(output);
    const msgs = output.batch;
    output.batch = [];
    output.flushedAtMs = this.deps.clock.now();
    this.deliveries = this.bytes = 0;
    this.publishBatch(output, msgs);
    output.counters.delivered += msgs.length;
    output.hooks.flushed(msgs);
    this.deps.metrics.batchFlushed(msgs.length, this.deliveries, this.bytes, msgs[0]!.ts, output.flushedAtMs);
  }

  /** Writes a room-wide frame (gap, notice) to both tiers now, after nothing else. */
  publishFrame(output: RoomOutput, frame: ServerFrame): void {
    this.publishToTier(output, FULL, frame);
    this.publishToTier(output, HIGH, frame);
  }

  /** The room's viewer count changed: written with its next batch, or in its turn (see the class comment). */
  setViewers(output: RoomOutput, frame: ViewersFrame): void {
    output.viewers = frame;
    if (output.batch.length === 0) {
      this.countsWaiting.add(output);
      this.tickNext();
    }
  }

  /** Writes the waiting viewer counts, oldest first, up to the tick's budget of connections. */
  writeWaitingCounts(): void {
    let budget = VIEWER_COUNT_WRITES_PER_TICK;
    for (const output of this.countsWaiting) {
      if (budget <= 0) return;
      budget -= this.writeViewers(output);
    }
  }

  /** Writes the room's waiting viewer count, if any; returns the connections written. */
  private writeViewers(output: RoomOutput): number {
    // Only a room with a count can be waiting: a flush without one costs no set operation.
    const frame = output.viewers;
    if (!frame) return 0;
    this.countsWaiting.delete(output);
    output.viewers = null;
    return this.publishToTier(output, FULL, frame) + this.publishToTier(output, HIGH, frame);
  }

  private windowOf(output: RoomOutput): number {
    return roomWindowMs(output.hooks.viewers(), this.deps.settings);
  }

  /**
   * Writes a batch to the full tier, and the batch without its chat to the high-priority tier: each
   * encoded once per wire format that has subscribers. Chat that degraded connections miss is counted.
   */
  private publishBatch(output: RoomOutput, msgs: RoomMessage[]): void {
    const { room, subscribers } = output;
    const frame: MessagesFrame = { t: 'messages', room, msgs };
    this.deliveries += msgs.length * this.publishToTier(output, FULL, frame, true);
    const degradedCount = subscribers[HIGH + MSGPACK]! + subscribers[HIGH + JSON_FORMAT]!;
    if (degradedCount === 0) return;
    const high = msgs.filter((message) => message.prio !== PRIORITY_LOW);
    const chatMissed = msgs.length - high.length;
    if (chatMissed > 0) {
      this.deps.metrics.dropped('backpressure', PRIORITY_LOW, chatMissed * degradedCount);
      output.counters.dropped.backpressure += chatMissed;
    }
    if (high.length > 0) this.deliveries += high.length * this.publishToTier(output, HIGH, { t: 'messages', room, msgs: high });
  }

  /**
   * Encodes the frame for each wire format the tier's subscribers use, and writes it to them; returns
   * how many they are. `withAnswers`: the frame takes a waiting sender's answers along (publishTo).
   */
  private publishToTier(output: RoomOutput, tier: typeof FULL | typeof HIGH, frame: ServerFrame, withAnswers = false): number {
    const topics = tier === FULL ? output.topics.full : output.topics.high;
    const msgpackCount = output.subscribers[tier + MSGPACK]!;
    if (msgpackCount > 0) {
      const data = encodeMsgpack(frame);
      this.publishTo(output.room, topics.msgpack, 'msgpack', data, withAnswers);
      this.bytes += data.byteLength * msgpackCount;
    }
    const jsonCount = output.subscribers[tier + JSON_FORMAT]!;
    if (jsonCount > 0) {
      const data = encodeJson(frame);
      this.publishTo(output.room, topics.json, 'json', data, withAnswers);
      this.bytes += Buffer.byteLength(data) * jsonCount;
    }
    return msgpackCount + jsonCount;
  }

  /**
   * Publishes `data` on the topic. With answers, a connection on the topic that waits for answers about
   * the room gets the frame written directly, its answers in the same write, and the rest by the
   * topic: a pending topic frame cannot share a cork with other frames on uWS.js 20.30 (once its
   * pub/sub drain has corked a socket, it uncorks whatever socket it drains into).
   */
  private publishTo(room: RoomId, topic: string, format: WireFormat, data: Uint8Array | string, withAnswers: boolean): void {
    const sender = withAnswers ? this.answers.senderIn(room, format) : undefined;
    if (sender?.publishToOthers(topic, data)) this.answers.writeWith(sender, data);
    else this.deps.publisher.publish(topic, data);
  }
}

function topicOf(topics: RoomTopics, conn: Conn, degraded: boolean): string {
  return (degraded ? topics.high : topics.full)[conn.format];
}

function slotOf(conn: Conn, degraded: boolean): number {
  return (degraded ? HIGH : FULL) + (conn.format === 'msgpack' ? MSGPACK : JSON_FORMAT);
}
