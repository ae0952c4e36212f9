/**
 * The room side of the gateway: which local connection is in which room, and each room's stream from
 * the bus to them. It composes three parts:
 *
 * - RoomChannels: one bus subscription per room while a local connection is in it (or joining);
 * - RoomSequencer: the room's messages in seq order, gaps filled from history or reported;
 * - BatchWriter: batches per room per tick, encoded once per wire format, written by uWS topics.
 *
 * What stays here is membership and the room's view as of its written stream: the last flushed
 * messages in a ring (so a join, or a rejoin with lastSeq, is served without a gap or a duplicate
 * against the live stream), the pinned message (for `joined`), its counters (for `room_stats`) and
 * the chat sampler (above the room's downlink budget, the same on every gateway). Notices come on the
 * room's subject too and are written at once, after the pending batch.
 */
import type { Bus, BusStatus } from '../shared/bus/bus.js';
import type { Clock } from '../shared/clock.js';
import { decodeBusMessage, encodeFrame } from '../shared/codec/codec.js';
import { fail, RoomcastError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { GatewayMetrics } from '../shared/metrics.js';
import type { RoomEvent } from '../shared/protocol/bus-messages.js';
import type { RoomCount } from '../shared/protocol/fleet-messages.js';
import { MESSAGE_KINDS, priorityOf } from '../shared/protocol/frames.js';
import type {
  Gap, GapFrame, JoinedFrame, LeftFrame, MessageKind, NoticeFrame, RoomId, RoomMessage, RoomStatsFrame, Seq,
} from '../shared/protocol/frames.js';
import { BatchWriter, type BatchSettings, type RoomOutput } from './batch-writer.js';
import { ChatSampler } from './chat-sampler.js';
import { CompactMultimap } from './compact-multimap.js';
import { RoomChannels, type RoomHold } from './room-channels.js';
import type { RoomClient } from './room-client.js';
import type { RoomAccess } from './room-access.js';
import { RoomSequencer, type SequencerSettings } from './room-sequencer.js';
import { RoomCounters } from './room-stats.js';
import type { Conn, Publisher } from './uws-server.js';

export interface FanoutSettings extends BatchSettings, SequencerSettings {
  /** Messages a plain join brings. */
  recentMessages: number;
  /** Flushed messages kept per room to serve joins and short rejoins (up to a quarter more between trims). */
  ringSize: number;
  /** Messages per second a room delivers before chat is sampled; 0: no budget. */
  roomBudgetPerSec: number;
}

export interface FanoutDeps {
  bus: Bus;
  publisher: Publisher;
  roomClient: Pick<RoomClient, 'history'>;
  /** Join rules held while the room is subscribed: opened after the subscription, fed its ban events. */
  access: Pick<RoomAccess, 'open' | 'close' | 'event'>;
  clock: Clock;
  log: Logger;
  metrics: GatewayMetrics;
  settings: FanoutSettings;
}

/** A rejoin brings at most this many missed messages; older ones are reported as a gap. */
const MAX_CATCH_UP = 5000;
const RING_TRIM_MIN = 8;

/** A room open on this gateway. */
class Room {
  readonly members = new Set<Conn>();
  readonly sampler: ChatSampler;
  readonly counters = new RoomCounters();
  sequencer!: RoomSequencer;
  output!: RoomOutput;
  /** Resolves once the room's starting point is read; joins wait for it. */
  ready: Promise<void> = Promise.resolve();
  /** The highest seq written to the members. */
  flushedSeq: Seq = 0;
  ring: RoomMessage[] = [];
  /** Viewers over all gateways, from the fleet's report. */
  viewers = 0;
  /** The pinned message as of flushedSeq. */
  pinned: RoomMessage | undefined;

  constructor(readonly hold: RoomHold<Room>, budgetPerSec: number) {
    this.sampler = new ChatSampler(budgetPerSec);
  }

  get room(): RoomId { return this.hold.room; }
  get closed(): boolean { return this.hold.closed; }
}

export class RoomFanout {
  private readonly channels: RoomChannels<Room>;
  private readonly writer: BatchWriter;
  private readonly roomsByConn = new CompactMultimap<Conn, RoomId>();
  /** Connections that get only high-priority messages until they catch up. */
  private readonly degraded = new Set<Conn>();

  constructor(private readonly deps: FanoutDeps) {
    const { bus, publisher, clock, metrics, settings } = deps;
    this.writer = new BatchWriter({ publisher, clock, metrics, settings });
    this.channels = new RoomChannels<Room>({
      bus, metrics,
      open: (hold) => this.open(hold),
      receive: (room, data) => this.onBusMessage(room, data),
      close: (room) => {
        this.writer.close(room.output);
        room.sequencer.close();
        this.deps.access.close(room.room);
      },
    });
  }

  start(): void {
    this.writer.start();
    this.deps.bus.onStatus((status) => this.onBusStatus(status));
  }

  stop(): void {
    this.writer.stop();
    this.channels.dropAll();
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
    const hold = this.channels.acquire(room);
    let added = false;
    try {
      await hold.state.ready;
      if (conn.closed || hold.closed) return;
      if (lastSeq === undefined) {
        admit?.();
        this.addMember(hold.state, conn, hold.state.ring.slice(-this.deps.settings.recentMessages), undefined);
        added = true;
        return;
      }
      added = await this.catchUpAndAdd(hold.state, conn, lastSeq, admit);
    } finally {
      // A member keeps the join's hold until it leaves.
      if (!added) this.channels.release(hold);
    }
  }

  /** Removes the connection from the room; resolves false when it was not in it. */
  leave(conn: Conn, room: RoomId): boolean {
    if (!this.roomsByConn.delete(conn, room)) return false;
    const hold = this.channels.get(room);
    if (hold && hold.state.members.delete(conn)) {
      this.writer.unsubscribe(hold.state.output, conn, this.degraded.has(conn));
      this.channels.release(hold);
    }
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
      const hold = this.channels.get(room);
      if (hold) this.writer.moveTier(hold.state.output, conn, degraded);
    });
  }

  /** The room as this gateway sees it, for a connection that is in it; undefined otherwise. */
  stats(conn: Conn, room: RoomId): RoomStatsFrame | undefined {
    const state = this.channels.get(room)?.state;
    if (!state || !this.roomsByConn.has(conn, room)) return undefined;
    const { counters } = state;
    return {
      t: 'room_stats', room, viewers: Math.max(state.viewers, state.members.size), seq: state.flushedSeq,
      msgsPerSec: counters.msgsPerSec(this.deps.clock.now()), delivered: counters.delivered, sampled: counters.sampled,
      dropped: { ...counters.dropped }, ...(state.pinned ? { pinned: state.pinned } : {}),
    };
  }

  /** Local members and the newest seq seen, of every room with local members: the viewer report. */
  localCounts(): RoomCount[] {
    const counts: RoomCount[] = [];
    for (const state of this.channels.states()) {
      const { members, sequencer } = state;
      if (members.size > 0) counts.push([state.room, members.size, Math.max(sequencer.lastSeq, sequencer.tailSeq)]);
    }
    return counts;
  }

  /** The room's total viewers over all gateways, and its newest seq (a gap check for quiet rooms). */
  applyViewerReport(room: RoomId, total: number, lastSeq: Seq): void {
    const state = this.channels.get(room)?.state;
    if (!state?.sequencer.active) return;
    if (total !== state.viewers) {
      state.viewers = total;
      this.writer.setViewers(state.output, { t: 'viewers', room, count: total });
    }
    state.sequencer.noteTail(lastSeq);
  }

  /** Writes a room service answer at the end of the turn, with the frame of `room` if that is written then. */
  answer(conn: Conn, data: Uint8Array | string, room?: RoomId): void {
    this.writer.answer(conn, data, room);
  }

  /** Writes the rooms whose window is over (every pending one with `all`). */
  flushDirty(all = false): void {
    this.writer.flushDue(all);
  }

  // ---- a room's life cycle ------------------------------------------------------------------------

  private open(hold: RoomHold<Room>): Room {
    const { settings, metrics, log } = this.deps;
    const room = new Room(hold, settings.roomBudgetPerSec);
    room.output = this.writer.open(hold.room, room.counters, {
      viewers: () => room.members.size,
      flushed: (msgs) => this.flushed(room, msgs),
    });
    room.sequencer = new RoomSequencer({
      room: hold.room, counters: room.counters, metrics, log, settings,
      history: (query) => this.deps.roomClient.history(hold.room, query),
      sink: {
        deliver: (message) => this.append(room, message),
        skip: (from, to) => this.skipUnrecoverable(room, from, to),
        caughtUp: (pinned) => {
          this.writer.flush(room.output);
          room.pinned = pinned;
        },
      },
    });
    room.ready = this.activate(room);
    // A failed activation rejects the joins waiting on it; nothing else awaits it.
    room.ready.catch(() => undefined);
    return room;
  }

  private async activate(room: Room): Promise<void> {
    const { bus, roomClient, settings } = this.deps;
    try {
      // The subscription is in place at the server before the stream's starting point is read.
      await bus.flush();
      await this.deps.access.open(room.room);
      const head = await roomClient.history(room.room, { limit: settings.ringSize });
      if (room.closed) return;
      room.ring = head.msgs;
      for (const message of head.msgs) room.sampler.observe(message);
      room.flushedSeq = head.lastSeq;
      room.pinned = head.pinned;
      room.sequencer.activate(head.lastSeq);
    } catch (error) {
      if (!(error instanceof RoomcastError && error.code === 'unknown_room')) this.deps.metrics.busError();
      this.channels.drop(room.hold);
      throw error instanceof RoomcastError ? error : fail.unavailable('the room could not be opened', { cause: error });
    }
  }

  private addMember(room: Room, conn: Conn, msgs: RoomMessage[], gap: Gap | undefined): void {
    const joined: JoinedFrame = {
      t: 'joined', room: room.room, seq: room.flushedSeq, msgs,
      viewers: Math.max(room.viewers, room.members.size + 1), ...(gap ? { gap } : {}),
      ...(room.pinned ? { pinned: room.pinned } : {}),
    };
    conn.send(encodeFrame(conn.format, joined));
    this.writer.subscribe(room.output, conn, this.degraded.has(conn));
    room.members.add(conn);
    this.roomsByConn.add(conn, room.room);
  }

  /**
   * Brings a rejoining connection from lastSeq to the live stream: pages of history up to where the
   * ring starts, then the ring, then the live topic. The last step is synchronous, so no flush can
   * fall between what the connection is given and what it is subscribed to. False when the connection
   * or the room closed meanwhile.
   */
  private async catchUpAndAdd(room: Room, conn: Conn, lastSeq: Seq, admit?: () => void): Promise<boolean> {
    const collected: RoomMessage[] = [];
    let after = lastSeq;
    let gap: Gap | undefined;
    const noteGap = (from: Seq, to: Seq) => { gap = gap ? { from: gap.from, to } : { from, to }; after = to; };
    if (room.flushedSeq - after > MAX_CATCH_UP) noteGap(after + 1, room.flushedSeq - MAX_CATCH_UP);
    for (;;) {
      const ringStart = room.ring[0]?.seq ?? room.flushedSeq + 1;
      if (after + 1 >= ringStart || after >= room.flushedSeq) {
        for (const message of room.ring) if (message.seq > after) collected.push(message);
        admit?.();
        this.addMember(room, conn, collected, gap);
        return true;
      }
      const page = await this.deps.roomClient.history(room.room, {
        afterSeq: after, beforeSeq: ringStart, limit: this.deps.settings.historyPageMax,
      });
      if (conn.closed || room.closed) return false;
      if (page.firstSeq > after + 1) noteGap(after + 1, Math.min(page.firstSeq, ringStart) - 1);
      for (const message of page.msgs) {
        if (message.seq > after) { collected.push(message); after = message.seq; }
      }
      if (page.msgs.length === 0 && after + 1 < ringStart) noteGap(after + 1, ringStart - 1);
    }
  }

  // ---- the stream --------------------------------------------------------------------------------

  private onBusMessage(room: Room, data: Uint8Array): void {
    let event: RoomEvent;
    try {
      event = decodeBusMessage(data) as RoomEvent;
    } catch (error) {
      this.deps.metrics.busError();
      this.deps.log.warn('undecodable room event', { room: room.room, error });
      return;
    }
    if (event.t === 'msgs') for (const message of event.ms) room.sequencer.accept(message);
    else if (event.t === 'kick') {
      this.deps.access.event(event);
      this.kick(room, event.uid);
    } else if (event.t === 'unban') this.deps.access.event(event);
    else if (event.t === 'notice') this.notice(room, event.notice);
  }

  /** The next message of the room's stream: sampled away, or batched. */
  private append(room: Room, message: RoomMessage): void {
    room.sampler.observe(message);
    room.counters.observed(message.ts);
    if (!room.sampler.keep(message)) {
      this.deps.metrics.dropped('sampled', message.prio, room.members.size);
      room.counters.sampled++;
      // Nothing waits in the batch: the stream is written up to here already.
      if (room.output.batch.length === 0) room.flushedSeq = message.seq;
      return;
    }
    this.writer.add(room.output, message);
  }

  /** A batch was written: the ring, the pin and the written seq follow it. */
  private flushed(room: Room, msgs: RoomMessage[]): void {
    // Sampled messages after the batch's last one are written too, in the sense that none will follow.
    room.flushedSeq = room.sequencer.lastSeq;
    const { ring } = room;
    for (const message of msgs) {
      ring.push(message);
      // The pin follows the written stream, so that joined.pinned is the pin as of joined.seq.
      if (message.kind === 'pin') room.pinned = pinnedBy(ring, message);
      else if (message.kind === 'unpin') room.pinned = undefined;
    }
    // Trimmed in steps of a quarter ring, not per message: a splice moves the whole ring.
    const { ringSize } = this.deps.settings;
    if (ring.length >= ringSize + Math.max(RING_TRIM_MIN, ringSize >> 2)) ring.splice(0, ring.length - ringSize);
  }

  /** Tells the room's members that seqs `from`..`to` are lost, after what was pending. */
  private skipUnrecoverable(room: Room, from: Seq, to: Seq): void {
    this.writer.flush(room.output);
    const lost = to - from + 1;
    this.deps.metrics.gapFilled('unrecoverable');
    this.deps.metrics.dropped('gap_unrecoverable', 1, lost);
    room.counters.dropped.gap_unrecoverable += lost;
    this.writer.publishFrame(room.output, { t: 'gap', room: room.room, from, to } satisfies GapFrame);
    room.flushedSeq = to;
  }

  /** Writes a room notice to every member at once, after the batch pending (so a pin message comes first). */
  private notice(room: Room, notice: NoticeFrame): void {
    if (notice?.t !== 'notice' || typeof notice.text !== 'string' || !room.sequencer.active) return;
    this.writer.flush(room.output);
    this.writer.publishFrame(room.output, notice);
  }

  private kick(room: Room, uid: string): void {
    for (const conn of [...room.members]) {
      if (conn.identity.uid !== uid) continue;
      this.leave(conn, room.room);
      conn.send(encodeFrame(conn.format, { t: 'left', room: room.room, reason: 'banned' } satisfies LeftFrame));
    }
  }

  private onBusStatus(status: BusStatus): void {
    if (status === 'disconnected') { this.deps.metrics.busError(); return; }
    // Messages published while we were away are in history: check every room's tail.
    for (const room of this.channels.states()) room.sequencer.recheckTail();
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
