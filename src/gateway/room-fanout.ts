/**
 * Room subscriptions, reference counted, and the fan-out of each room's stream to local connections.
 *
 * A room has one bus subscription while at least one local connection is in it (or joining). Its
 * messages are put in seq order (a short reorder window, then gaps are filled from the room's
 * history), batched per room per tick, encoded once per batch and written to every member by uWS
 * topics in C++: no per-recipient work in JavaScript. The last flushed messages stay in a ring so a
 * join (or a rejoin with lastSeq) is served without a gap or a duplicate against the live stream.
 *
 * Notices about the room (slow mode, pins) come on the room's subject too and are written at once,
 * after the pending batch. Each room keeps its pinned message as of its stream (for `joined`) and its
 * counters (for `room_stats`), both updated per message or per batch, never per recipient.
 *
 * Overload: above the room's downlink budget, chat is sampled (ChatSampler, the same on every
 * gateway). A connection that falls behind is degraded: it moves to the room's high-priority topics,
 * which carry each batch without its chat, until it catches up (SlowConsumers decides).
 */
import type { Bus, BusStatus, Subscription } from '../shared/bus/bus.js';
import type { Clock } from '../shared/clock.js';
import { decodeBusMessage, encodeFrame, encodeJson, encodeMsgpack } from '../shared/codec/codec.js';
import { fail, RoomcastError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { GatewayMetrics } from '../shared/metrics.js';
import { subjects, type RoomEvent } from '../shared/protocol/bus-messages.js';
import type { RoomCount } from '../shared/protocol/fleet-messages.js';
import { MESSAGE_KINDS, PRIORITY_LOW, priorityOf } from '../shared/protocol/frames.js';
import type {
  Gap, GapFrame, JoinedFrame, LeftFrame, MessageKind, NoticeFrame, RoomId, RoomMessage, RoomStatsFrame, Seq, ServerFrame,
  ViewersFrame, WireFormat,
} from '../shared/protocol/frames.js';
import { ChatSampler } from './chat-sampler.js';
import { CompactMultimap } from './compact-multimap.js';
import { RoomCounters } from './room-stats.js';
import type { Conn, Publisher } from './uws-server.js';
import type { RoomClient } from './room-client.js';
import type { RoomAccess } from './room-access.js';

export interface FanoutSettings {
  batchWindowMs: number;
  /**
   * A room's window grows by this per 1,000 local viewers once that exceeds batchWindowMs: a flush
   * costs a socket write per viewer, so a big room writes less often and more per frame (0: fixed).
   */
  windowMsPer1000Viewers: number;
  batchMaxMessages: number;
  /** Messages a plain join brings. */
  recentMessages: number;
  reorderWindowMs: number;
  historyPageMax: number;
  /** Flushed messages kept per room to serve joins and short rejoins. */
  ringSize: number;
  /** Messages per second a room delivers before chat is sampled; 0: no budget. */
  roomBudgetPerSec: number;
}

export interface FanoutDeps {
  bus: Bus;
  publisher: Publisher;
  roomClient: RoomClient;
  /** Join rules held while the room is subscribed: opened after the subscription, fed its ban events. */
  access: Pick<RoomAccess, 'open' | 'close' | 'event'>;
  clock: Clock;
  log: Logger;
  metrics: GatewayMetrics;
  settings: FanoutSettings;
}

/** Out-of-order messages held per room while a gap is filled; later ones come from history. */
const MAX_OUT_OF_ORDER = 1000;
/** Messages held per room while it activates; later ones come from history. */
const MAX_EARLY = 1000;
/** A rejoin brings at most this many missed messages; older ones are reported as a gap. */
const MAX_CATCH_UP = 5000;
const FILL_RETRY_MS = 500;

/** A room's topics: one per wire format, each in a full and a high-priority-only tier. */
interface RoomTopics { full: Record<WireFormat, string>; high: Record<WireFormat, string> }

function topicsOf(room: RoomId): RoomTopics {
  return { full: { msgpack: `m/${room}`, json: `j/${room}` }, high: { msgpack: `mh/${room}`, json: `jh/${room}` } };
}

const WIRE_FORMATS: readonly WireFormat[] = ['msgpack', 'json'];

/**
 * A room's batch window: the configured one, longer for a room with many viewers on this gateway.
 * Each flush is one socket write per viewer (about 10 µs each on a 2-core machine), so 10,000 viewers
 * at 20 ms per 1,000 flush every 200 ms: 50 k writes/s instead of 200 k, which one core can afford.
 */
export function roomWindowMs(localViewers: number, settings: Pick<FanoutSettings, 'batchWindowMs' | 'windowMsPer1000Viewers'>): number {
  return Math.max(settings.batchWindowMs, (localViewers * settings.windowMsPer1000Viewers) / 1000);
}

class RoomChannel {
  readonly members = new Set<Conn>();
  readonly topics: RoomTopics;
  readonly sampler: ChatSampler;
  /** Joins waiting for activation or catch-up: they hold the subscription too. */
  pendingJoins = 0;
  subscription: Subscription | null = null;
  ready: Promise<void> | null = null;
  active = false;
  closed = false;
  /** The highest seq accepted into the stream (batched or flushed). */
  lastSeq: Seq = 0;
  /** The highest seq written to the members. */
  flushedSeq: Seq = 0;
  /** The highest seq known to exist in the room (from the bus or a viewer report). */
  tailSeq: Seq = 0;
  early: RoomMessage[] = [];
  readonly outOfOrder = new Map<Seq, RoomMessage>();
  batch: RoomMessage[] = [];
  /** When the last batch was written; a message after a quiet window goes out at once. */
  flushedAtMs = Number.NEGATIVE_INFINITY;
  flushScheduled = false;
  ring: RoomMessage[] = [];
  viewers = 0;
  reorderTimer: NodeJS.Timeout | null = null;
  filling = false;
  /** The pinned message as of flushedSeq. */
  pinned: RoomMessage | undefined;
  readonly counters = new RoomCounters();

  constructor(readonly room: RoomId, budgetPerSec: number) {
    this.topics = topicsOf(room);
    this.sampler = new ChatSampler(budgetPerSec);
  }

  get holders(): number {
    return this.members.size + this.pendingJoins;
  }

  lowestPending(): Seq | undefined {
    let lowest: Seq | undefined;
    for (const seq of this.outOfOrder.keys()) if (lowest === undefined || seq < lowest) lowest = seq;
    return lowest;
  }
}

export class RoomFanout {
  private readonly channels = new Map<RoomId, RoomChannel>();
  private readonly roomsByConn = new CompactMultimap<Conn, RoomId>();
  /** Connections that get only high-priority messages until they catch up. */
  private readonly degraded = new Set<Conn>();
  private readonly dirty = new Set<RoomChannel>();
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: FanoutDeps) {}

  start(): void {
    this.flushTimer = setInterval(() => this.flushDirty(), this.deps.settings.batchWindowMs);
    this.deps.bus.onStatus((status) => this.onBusStatus(status));
  }

  stop(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = null;
    this.flushDirty(true);
    for (const channel of [...this.channels.values()]) this.teardown(channel);
  }

  get roomCount(): number {
    return this.channels.size;
  }

  roomCountOf(conn: Conn): number {
    return this.roomsByConn.count(conn);
  }

  isMember(conn: Conn, room: RoomId): boolean {
    return this.roomsByConn.has(conn, room);
  }

  /**
   * Adds the connection to the room and sends it `joined`: the latest messages, or with lastSeq the
   * ones it missed (and a gap for those history no longer holds). `admit` runs once the room is open
   * (its rules loaded), right before the connection is added, in the same tick (so no ban event can
   * fall between): it throws to refuse the join.
   */
  async join(conn: Conn, room: RoomId, lastSeq?: Seq, admit?: () => void): Promise<void> {
    const channel = this.channelFor(room);
    channel.pendingJoins++;
    try {
      await channel.ready;
      if (conn.closed || channel.closed) return;
      if (lastSeq === undefined) {
        admit?.();
        this.addMember(channel, conn, channel.ring.slice(-this.deps.settings.recentMessages), undefined);
        return;
      }
      await this.catchUpAndAdd(channel, conn, lastSeq, admit);
    } finally {
      channel.pendingJoins--;
      if (channel.holders === 0) this.teardown(channel);
    }
  }

  /** Removes the connection from the room; resolves false when it was not in it. */
  leave(conn: Conn, room: RoomId): boolean {
    if (!this.roomsByConn.delete(conn, room)) return false;
    const channel = this.channels.get(room);
    if (channel) this.removeMember(channel, conn);
    return true;
  }

  leaveAll(conn: Conn): void {
    for (const room of this.roomsByConn.valuesOf(conn)) this.leave(conn, room);
    this.degraded.delete(conn);
  }

  /**
   * Moves a connection between the full and the high-priority-only tier of each of its rooms. A
   * degraded connection misses chat (counted as backpressure drops), never a high-priority message.
   */
  setDegraded(conn: Conn, degraded: boolean): void {
    if (degraded === this.degraded.has(conn)) return;
    if (degraded) this.degraded.add(conn);
    else this.degraded.delete(conn);
    this.roomsByConn.forEach(conn, (room) => {
      const topics = this.channels.get(room)?.topics ?? topicsOf(room);
      conn.unsubscribe((degraded ? topics.full : topics.high)[conn.format]);
      conn.subscribe((degraded ? topics.high : topics.full)[conn.format]);
    });
  }

  /** The room as this gateway sees it, for a connection that is in it; undefined otherwise. */
  stats(conn: Conn, room: RoomId): RoomStatsFrame | undefined {
    const channel = this.channels.get(room);
    if (!channel || !this.roomsByConn.has(conn, room)) return undefined;
    const { counters } = channel;
    return {
      t: 'room_stats', room, viewers: Math.max(channel.viewers, channel.members.size), seq: channel.flushedSeq,
      msgsPerSec: counters.msgsPerSec(this.deps.clock.now()), delivered: counters.delivered, sampled: counters.sampled,
      dropped: { ...counters.dropped }, ...(channel.pinned ? { pinned: channel.pinned } : {}),
    };
  }

  /** Local members and the newest seq seen, of every room with local members: the viewer report. */
  localCounts(): RoomCount[] {
    const counts: RoomCount[] = [];
    for (const channel of this.channels.values()) {
      if (channel.members.size > 0) counts.push([channel.room, channel.members.size, Math.max(channel.lastSeq, channel.tailSeq)]);
    }
    return counts;
  }

  /** The room's total viewers over all gateways, and its newest seq (a gap check for quiet rooms). */
  applyViewerReport(room: RoomId, total: number, lastSeq: Seq): void {
    const channel = this.channels.get(room);
    if (!channel?.active) return;
    if (total !== channel.viewers) {
      channel.viewers = total;
      this.publishFrame(channel, { t: 'viewers', room, count: total } satisfies ViewersFrame);
    }
    if (lastSeq > channel.lastSeq) {
      channel.tailSeq = Math.max(channel.tailSeq, lastSeq);
      void this.fillGap(channel);
    }
  }

  /** Writes every pending batch now. */
  /** Writes the rooms whose window is over (every dirty room with `all`, as when stopping). */
  flushDirty(all = false): void {
    const now = this.deps.clock.now();
    // A room is written at the tick nearest its window's end: half a tick early rather than a tick late.
    const slackMs = this.deps.settings.batchWindowMs / 2;
    for (const channel of this.dirty) {
      if (!all && now - channel.flushedAtMs < this.windowOf(channel) - slackMs) continue;
      this.flush(channel);
      this.dirty.delete(channel);
    }
  }

  private windowOf(channel: RoomChannel): number {
    return roomWindowMs(channel.members.size, this.deps.settings);
  }

  // ---- channel life cycle ------------------------------------------------------------------------

  private channelFor(room: RoomId): RoomChannel {
    let channel = this.channels.get(room);
    if (!channel) {
      channel = new RoomChannel(room, this.deps.settings.roomBudgetPerSec);
      this.channels.set(room, channel);
      this.deps.metrics.roomsActive(this.channels.size);
      channel.ready = this.activate(channel);
      // A failed activation rejects the joins waiting on it; nothing else awaits it.
      channel.ready.catch(() => undefined);
    }
    return channel;
  }

  private async activate(channel: RoomChannel): Promise<void> {
    const { bus, roomClient, settings } = this.deps;
    channel.subscription = bus.subscribe(subjects.room(channel.room), (message) => this.onBusMessage(channel, message.data));
    try {
      // The subscription is in place at the server before the stream's starting point is read.
      await bus.flush();
      await this.deps.access.open(channel.room);
      const head = await roomClient.history(channel.room, { limit: settings.ringSize });
      if (channel.closed) return;
      channel.ring = head.msgs;
      for (const message of head.msgs) channel.sampler.observe(message);
      channel.lastSeq = channel.flushedSeq = channel.tailSeq = head.lastSeq;
      channel.pinned = head.pinned;
      channel.active = true;
      const early = channel.early.sort((a, b) => a.seq - b.seq);
      channel.early = [];
      for (const message of early) this.onRoomMessage(channel, message);
    } catch (error) {
      if (!(error instanceof RoomcastError && error.code === 'unknown_room')) this.deps.metrics.busError();
      this.teardown(channel);
      throw error instanceof RoomcastError ? error : fail.unavailable('the room could not be opened', { cause: error });
    }
  }

  private teardown(channel: RoomChannel): void {
    if (channel.closed) return;
    this.flush(channel);
    channel.closed = true;
    channel.subscription?.unsubscribe();
    if (channel.reorderTimer) clearTimeout(channel.reorderTimer);
    this.dirty.delete(channel);
    if (this.channels.get(channel.room) === channel) {
      this.channels.delete(channel.room);
      this.deps.access.close(channel.room);
    }
    this.deps.metrics.roomsActive(this.channels.size);
  }

  private addMember(channel: RoomChannel, conn: Conn, msgs: RoomMessage[], gap: Gap | undefined): void {
    const joined: JoinedFrame = {
      t: 'joined', room: channel.room, seq: channel.flushedSeq, msgs,
      viewers: Math.max(channel.viewers, channel.members.size + 1), ...(gap ? { gap } : {}),
      ...(channel.pinned ? { pinned: channel.pinned } : {}),
    };
    conn.send(encodeFrame(conn.format, joined));
    conn.subscribe(this.topicFor(channel, conn));
    channel.members.add(conn);
    this.roomsByConn.add(conn, channel.room);
  }

  private removeMember(channel: RoomChannel, conn: Conn): void {
    if (!channel.members.delete(conn)) return;
    conn.unsubscribe(this.topicFor(channel, conn));
    if (channel.holders === 0) this.teardown(channel);
  }

  /**
   * Brings a rejoining connection from lastSeq to the live stream: pages of history up to where the
   * ring starts, then the ring, then the live topic. The last step is synchronous, so no flush can
   * fall between what the connection is given and what it is subscribed to.
   */
  private async catchUpAndAdd(channel: RoomChannel, conn: Conn, lastSeq: Seq, admit?: () => void): Promise<void> {
    const collected: RoomMessage[] = [];
    let after = lastSeq;
    let gap: Gap | undefined;
    const noteGap = (from: Seq, to: Seq) => { gap = gap ? { from: gap.from, to } : { from, to }; after = to; };
    if (channel.flushedSeq - after > MAX_CATCH_UP) noteGap(after + 1, channel.flushedSeq - MAX_CATCH_UP);
    for (;;) {
      const ringStart = channel.ring[0]?.seq ?? channel.flushedSeq + 1;
      if (after + 1 >= ringStart || after >= channel.flushedSeq) {
        for (const message of channel.ring) if (message.seq > after) collected.push(message);
        admit?.();
        this.addMember(channel, conn, collected, gap);
        return;
      }
      const page = await this.deps.roomClient.history(channel.room, {
        afterSeq: after, beforeSeq: ringStart, limit: this.deps.settings.historyPageMax,
      });
      if (conn.closed || channel.closed) return;
      if (page.firstSeq > after + 1) noteGap(after + 1, Math.min(page.firstSeq, ringStart) - 1);
      for (const message of page.msgs) {
        if (message.seq > after) { collected.push(message); after = message.seq; }
      }
      if (page.msgs.length === 0 && after + 1 < ringStart) noteGap(after + 1, ringStart - 1);
    }
  }

  // ---- the stream --------------------------------------------------------------------------------

  private onBusMessage(channel: RoomChannel, data: Uint8Array): void {
    let event: RoomEvent;
    try {
      event = decodeBusMessage(data) as RoomEvent;
    } catch (error) {
      this.deps.metrics.busError();
      this.deps.log.warn('undecodable room event', { room: channel.room, error });
      return;
    }
    if (event.t === 'msg') this.onRoomMessage(channel, event.m);
    else if (event.t === 'kick') {
      this.deps.access.event(event);
      this.kick(channel, event.uid);
    } else if (event.t === 'unban') this.deps.access.event(event);
    else if (event.t === 'notice') this.notice(channel, event.notice);
  }

  private onRoomMessage(channel: RoomChannel, message: RoomMessage): void {
    if (!channel.active) {
      if (channel.early.length < MAX_EARLY) channel.early.push(message);
      return;
    }
    if (message.seq > channel.tailSeq) channel.tailSeq = message.seq;
    if (message.seq <= channel.lastSeq) {
      this.deps.metrics.dropped('duplicate', message.prio);
      channel.counters.dropped.duplicate++;
      return;
    }
    if (message.seq === channel.lastSeq + 1) {
      this.append(channel, message);
      this.drainOutOfOrder(channel);
      return;
    }
    // Ahead of a gap: hold it (up to a bound; beyond it, history brings it) and give the gap a moment.
    if (channel.outOfOrder.size < MAX_OUT_OF_ORDER) channel.outOfOrder.set(message.seq, message);
    if (!channel.reorderTimer && !channel.filling) {
      channel.reorderTimer = setTimeout(() => { channel.reorderTimer = null; void this.fillGap(channel); }, this.deps.settings.reorderWindowMs);
    }
  }

  private topicFor(channel: RoomChannel, conn: Conn): string {
    return (this.degraded.has(conn) ? channel.topics.high : channel.topics.full)[conn.format];
  }

  private append(channel: RoomChannel, message: RoomMessage): void {
    channel.lastSeq = message.seq;
    channel.sampler.observe(message);
    channel.counters.observed(message.ts);
    if (!channel.sampler.keep(message)) {
      this.deps.metrics.dropped('sampled', message.prio, channel.members.size);
      channel.counters.sampled++;
      // Nothing waits in the batch: the stream is written up to here already.
      if (channel.batch.length === 0) channel.flushedSeq = message.seq;
      return;
    }
    channel.batch.push(message);
    if (channel.batch.length >= this.deps.settings.batchMaxMessages) {
      this.flush(channel);
      return;
    }
    this.dirty.add(channel);
    // The first message after a quiet window need not wait for the tick: it goes out once the
    // messages that arrived with it are in (setImmediate), so batching adds latency only when busy.
    if (!channel.flushScheduled && this.deps.clock.now() - channel.flushedAtMs >= this.windowOf(channel)) {
      channel.flushScheduled = true;
      setImmediate(() => {
        channel.flushScheduled = false;
        if (!channel.closed) this.flush(channel);
      });
    }
  }

  private drainOutOfOrder(channel: RoomChannel): void {
    for (let next = channel.outOfOrder.get(channel.lastSeq + 1); next; next = channel.outOfOrder.get(channel.lastSeq + 1)) {
      channel.outOfOrder.delete(next.seq);
      this.append(channel, next);
    }
    // Entries at or below lastSeq were filled from history meanwhile.
    for (const seq of channel.outOfOrder.keys()) if (seq <= channel.lastSeq) channel.outOfOrder.delete(seq);
    if (channel.outOfOrder.size === 0 && channel.reorderTimer) {
      clearTimeout(channel.reorderTimer);
      channel.reorderTimer = null;
    }
  }

  /** Fills the stream from history up to the lowest held message, or to the room's known tail. */
  private async fillGap(channel: RoomChannel): Promise<void> {
    if (channel.filling || channel.closed || !channel.active) return;
    channel.filling = true;
    if (channel.reorderTimer) { clearTimeout(channel.reorderTimer); channel.reorderTimer = null; }
    try {
      for (;;) {
        const lowest = channel.lowestPending();
        if (lowest === undefined && channel.tailSeq <= channel.lastSeq) break;
        const before = channel.lastSeq;
        const page = await this.deps.roomClient.history(channel.room, {
          afterSeq: channel.lastSeq, limit: this.deps.settings.historyPageMax, ...(lowest === undefined ? {} : { beforeSeq: lowest }),
        });
        if (channel.closed) return;
        // Without held messages this was a tail check, and the page tells where the tail is now.
        channel.tailSeq = lowest === undefined ? page.lastSeq : Math.max(channel.tailSeq, page.lastSeq);
        const upTo = Math.min(lowest ?? Infinity, page.lastSeq + 1);
        if (page.firstSeq > channel.lastSeq + 1) this.skipUnrecoverable(channel, Math.min(page.firstSeq, upTo) - 1);
        for (const message of page.msgs) if (message.seq === channel.lastSeq + 1) this.append(channel, message);
        this.drainOutOfOrder(channel);
        if (channel.lastSeq === page.lastSeq) {
          // Caught up to the page: its pin is the room's as of here, even if a lost pin message was skipped.
          this.flush(channel);
          channel.pinned = page.pinned;
        }
        if (channel.lastSeq === before) {
          // History has nothing more below the held messages: they are gone for good.
          const stuckAt = channel.lowestPending();
          if (stuckAt === undefined) { channel.tailSeq = channel.lastSeq; break; }
          this.skipUnrecoverable(channel, stuckAt - 1);
          this.drainOutOfOrder(channel);
        }
      }
      this.deps.metrics.gapFilled('filled');
    } catch (error) {
      this.deps.metrics.gapFilled('failed');
      this.deps.log.warn('gap fill failed; retrying', { room: channel.room, error });
      channel.reorderTimer = setTimeout(() => { channel.reorderTimer = null; void this.fillGap(channel); }, FILL_RETRY_MS);
    } finally {
      channel.filling = false;
    }
  }

  /** Tells the room's members that seqs up to `to` are lost, and moves the stream past them. */
  private skipUnrecoverable(channel: RoomChannel, to: Seq): void {
    if (to <= channel.lastSeq) return;
    this.flush(channel);
    const frame: GapFrame = { t: 'gap', room: channel.room, from: channel.lastSeq + 1, to };
    this.deps.metrics.gapFilled('unrecoverable');
    this.deps.metrics.dropped('gap_unrecoverable', 1, to - channel.lastSeq);
    channel.counters.dropped.gap_unrecoverable += to - channel.lastSeq;
    this.publishFrame(channel, frame);
    channel.lastSeq = channel.flushedSeq = to;
  }

  private flush(channel: RoomChannel): void {
    if (channel.batch.length === 0) return;
    const msgs = channel.batch;
    channel.batch = [];
    channel.flushedAtMs = this.deps.clock.now();
    const { recipients, bytes } = this.publishBatch(channel, msgs);
    channel.counters.delivered += msgs.length;
    // Sampled messages after the batch's last one are written too, in the sense that none will follow.
    channel.flushedSeq = channel.lastSeq;
    const ring = channel.ring;
    for (const message of msgs) {
      ring.push(message);
      // The pin follows the written stream, so that joined.pinned is the pin as of joined.seq.
      if (message.kind === 'pin') channel.pinned = pinnedBy(ring, message);
      else if (message.kind === 'unpin') channel.pinned = undefined;
    }
    if (ring.length > this.deps.settings.ringSize) ring.splice(0, ring.length - this.deps.settings.ringSize);
    this.deps.metrics.batchFlushed(msgs.length, recipients, bytes, msgs[0]!.ts, this.deps.clock.now());
  }

  /**
   * Writes a batch to the full tier, and the batch without its chat to the high-priority tier: each
   * encoded once per wire format that has subscribers. Chat that degraded connections miss is counted.
   */
  private publishBatch(channel: RoomChannel, msgs: RoomMessage[]): { recipients: number; bytes: number } {
    const { room, topics } = channel;
    const full = this.publishToTier(topics.full, { t: 'messages', room, msgs });
    const degradedCount = this.subscriberCount(topics.high);
    if (degradedCount === 0) return full;
    const high = msgs.filter((message) => message.prio !== PRIORITY_LOW);
    const chatMissed = msgs.length - high.length;
    if (chatMissed > 0) {
      this.deps.metrics.dropped('backpressure', PRIORITY_LOW, chatMissed * degradedCount);
      channel.counters.dropped.backpressure += chatMissed;
    }
    if (high.length === 0) return full;
    const sent = this.publishToTier(topics.high, { t: 'messages', room, msgs: high });
    return { recipients: full.recipients + sent.recipients, bytes: full.bytes + sent.bytes };
  }

  /** Room-wide frames (viewers, gap) go to both tiers. */
  private publishFrame(channel: RoomChannel, frame: ServerFrame): void {
    this.publishToTier(channel.topics.full, frame);
    this.publishToTier(channel.topics.high, frame);
  }

  private publishToTier(topics: Record<WireFormat, string>, frame: ServerFrame): { recipients: number; bytes: number } {
    let recipients = 0;
    let bytes = 0;
    for (const format of WIRE_FORMATS) {
      const topic = topics[format];
      const count = this.deps.publisher.subscribers(topic);
      if (count === 0) continue;
      const data = format === 'msgpack' ? encodeMsgpack(frame) : encodeJson(frame);
      this.deps.publisher.publish(topic, data);
      recipients += count;
      bytes += (typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength) * count;
    }
    return { recipients, bytes };
  }

  private subscriberCount(topics: Record<WireFormat, string>): number {
    return this.deps.publisher.subscribers(topics.msgpack) + this.deps.publisher.subscribers(topics.json);
  }

  /** Writes a room notice to every member at once, after the batch pending (so a pin message comes first). */
  private notice(channel: RoomChannel, notice: NoticeFrame): void {
    if (notice?.t !== 'notice' || typeof notice.text !== 'string' || !channel.active) return;
    this.flush(channel);
    this.publishFrame(channel, notice);
  }

  private kick(channel: RoomChannel, uid: string): void {
    for (const conn of [...channel.members]) {
      if (conn.identity.uid !== uid) continue;
      this.leave(conn, channel.room);
      conn.send(encodeFrame(conn.format, { t: 'left', room: channel.room, reason: 'banned' } satisfies LeftFrame));
    }
  }

  private onBusStatus(status: BusStatus): void {
    if (status === 'disconnected') { this.deps.metrics.busError(); return; }
    // Messages published while we were away are in history: check every room's tail (the first
    // page of the fill sets tailSeq to the room's real one).
    for (const channel of this.channels.values()) {
      channel.tailSeq = Number.MAX_SAFE_INTEGER;
      void this.fillGap(channel);
    }
  }
}

/**
 * The message a `pin` message pins: the original when the ring still holds it, otherwise rebuilt
 * from the pin message (its text, and the author and kind in `data`) as clients rebuild it.
 */
function pinnedBy(ring: readonly RoomMessage[], pin: RoomMessage): RoomMessage | undefined {
  const target = pin.target;
  if (target === undefined) return undefined;
  const held = findBySeq(ring, target);
  if (held) return held;
  const from = typeof pin.data?.from === 'string' ? pin.data.from : pin.uid;
  const kind = (MESSAGE_KINDS as readonly unknown[]).includes(pin.data?.kind) ? pin.data!.kind as MessageKind : 'chat';
  return { seq: target, uid: from, kind, prio: priorityOf(kind), text: pin.text, ts: pin.ts };
}

/** The message with this seq in a seq-ordered list, searched from the newest end. */
function findBySeq(messages: readonly RoomMessage[], seq: Seq): RoomMessage | undefined {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i]!;
    if (message.seq === seq) return message;
    if (message.seq < seq) return undefined;
  }
  return undefined;
}
