/**
 * Fleet-wide viewer counts, aggregated in memory from the gateways' reports on the bus: each gateway
 * sends all its rooms' local counts in one `fleet.viewers.<gatewayId>` message per interval, every
 * room service keeps the sum per room (for GET /v1/rooms/{room}), and one of them publishes, once per
 * interval, the totals of the rooms that changed on `fleet.rooms.viewers` for the gateways to push to
 * their viewers. No Redis work at all; a report costs an in-memory map update per room it names.
 *
 * One publisher, without a coordinator: the room service with the lowest instance id that published
 * lately publishes; the others listen to it, so they know what the gateways were told and whoever
 * takes over after it stops sends only what differs.
 *
 * The totals carry each room's newest seq, a gap check for quiet rooms: a gateway that lost a room's
 * last message hears of it here instead of at the room's next message. Gateways report the newest
 * seq they have, and every replica remembers the seqs it published itself for a while: a report that
 * comes well after such a message and still lacks it makes that replica send the room's seq at its
 * next tick, leader or not (a rare, small message).
 */
import type { Bus, Subscription } from '../shared/bus/bus.js';
import type { Clock } from '../shared/clock.js';
import { decodeBusMessage, encodeBusMessage } from '../shared/codec/codec.js';
import type { GatewayDirectory } from '../shared/fleet/gateway-directory.js';
import type { Logger } from '../shared/log.js';
import { subjects, type GatewayId } from '../shared/protocol/bus-messages.js';
import type { GatewayViewersReport, RoomCount, RoomViewerTotals } from '../shared/protocol/fleet-messages.js';
import type { RoomId, Seq } from '../shared/protocol/frames.js';

export interface ViewerTotalsDeps {
  bus: Bus;
  clock: Clock;
  log: Logger;
  /** Reports of gateway instances that are over are dropped at once. */
  gateways: GatewayDirectory;
  /** This room service's instance id (unique per process run). */
  instanceId: string;
  /** How often totals are published; gateways report as often (ROOMCAST_VIEWER_INTERVAL_MS). */
  intervalMs: number;
}

/** Another publisher with a lower id that was heard within this many intervals keeps this one quiet. */
const PUBLISHER_SILENCE_INTERVALS = 2.5;
/** A replica publishes nothing until it has heard every gateway's report once (and a publisher, if any). */
const WARM_UP_INTERVALS = 1.5;
/** A gateway report this long after a message was published should include it; otherwise it was lost there. */
const DELIVERY_GRACE_MS = 1000;

interface GatewayReport {
  epoch: number;
  rooms: Map<RoomId, { count: number; lastSeq: Seq }>;
  expiresAtMs: number;
}

interface RoomTotal { total: number; lastSeq: Seq }

export class ViewerTotals {
  private readonly reports = new Map<GatewayId, GatewayReport>();
  /** Sums over `reports`, kept up to date on every report. */
  private readonly totals = new Map<RoomId, RoomTotal>();
  /** What the gateways were last told, per room (by us or by the publisher we listen to). */
  private readonly published = new Map<RoomId, RoomTotal>();
  private readonly subscriptions: Subscription[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** The lowest-id other publisher lately heard, and when. */
  private otherPublisher: { id: string; heardAtMs: number } | null = null;
  private startedAtMs = Number.POSITIVE_INFINITY;
  /** Seqs this replica published lately, per room, and when (pruned each tick). */
  private readonly appended = new Map<RoomId, { seq: Seq; atMs: number }>();
  /** Rooms a gateway reported without a message this replica published: their seq goes out next tick. */
  private readonly lagging = new Set<RoomId>();

  constructor(private readonly deps: ViewerTotalsDeps) {}

  start(): void {
    const { bus } = this.deps;
    this.startedAtMs = this.deps.clock.now();
    this.subscriptions.push(
      bus.subscribe(subjects.fleetAllViewers, (message) => this.decoded(message.data, isViewersReport, (report) => this.onReport(report))),
      bus.subscribe(subjects.fleetRoomViewers, (message) => this.decoded(message.data, isTotals, (totals) => this.onTotals(totals))),
    );
    this.timer = setInterval(() => this.tick(), this.deps.intervalMs);
  }

  stop(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The room's viewers over every live gateway: a map lookup (sums follow each report; silent gateways drop out at the next tick). */
  count(room: RoomId): number {
    return this.totals.get(room)?.total ?? 0;
  }

  /** This replica published `seq` in `room`: an in-memory map update, nothing more. */
  noteAppended(room: RoomId, seq: Seq): void {
    const known = this.appended.get(room);
    if (!known || known.seq < seq) this.appended.set(room, { seq, atMs: this.deps.clock.now() });
  }

  /** One interval's work: forget silent gateways, and publish what changed when this is the publisher. */
  tick(): void {
    this.dropStale();
    const lagging = this.takeLagging();
    if (!this.isPublisher()) {
      if (lagging.length > 0) this.publish(lagging);
      return;
    }
    const changed: RoomCount[] = [];
    for (const [room, total] of this.totals) {
      const told = this.published.get(room);
      if (!told || told.total !== total.total || told.lastSeq !== total.lastSeq) changed.push([room, total.total, total.lastSeq]);
    }
    for (const [room, told] of this.published) if (!this.totals.has(room)) changed.push([room, 0, told.lastSeq]);
    // Sent even when nothing changed: the message says who publishes, so the others stay quiet.
    this.publish(changed);
  }

  private publish(rooms: RoomCount[]): void {
    this.remember(rooms);
    const message: RoomViewerTotals = { t: 'totals', from: this.deps.instanceId, rooms };
    this.deps.bus.publish(subjects.fleetRoomViewers, encodeBusMessage(message));
  }

  /**
   * The rooms some gateway lacks a message of that this replica published, with the room's total and
   * that seq; raised into the totals too, so the publisher's next message carries it. Also forgets
   * seqs old enough that every report since has had its chance.
   */
  private takeLagging(): RoomCount[] {
    const nowMs = this.deps.clock.now();
    const rooms: RoomCount[] = [];
    for (const room of this.lagging) {
      const seq = this.appended.get(room)?.seq ?? 0;
      const total = this.totals.get(room);
      if (!total) continue;
      total.lastSeq = Math.max(total.lastSeq, seq);
      rooms.push([room, total.total, total.lastSeq]);
    }
    this.lagging.clear();
    const keepMs = DELIVERY_GRACE_MS + 2 * this.deps.intervalMs;
    for (const [room, { atMs }] of this.appended) if (nowMs - atMs > keepMs) this.appended.delete(room);
    return rooms;
  }

  private onReport(report: GatewayViewersReport): void {
    const current = this.reports.get(report.gatewayId);
    if (current && current.epoch > report.epoch) return;
    if (!this.deps.gateways.isLive(report)) return;
    if (current) this.subtract(current);
    const rooms = new Map<RoomId, { count: number; lastSeq: Seq }>();
    const nowMs = this.deps.clock.now();
    for (const [room, count, lastSeq] of report.rooms) {
      rooms.set(room, { count, lastSeq });
      const appended = this.appended.get(room);
      if (appended && appended.seq > lastSeq && nowMs - appended.atMs > DELIVERY_GRACE_MS) this.lagging.add(room);
      // A gateway that newly reports a room must hear its total even if the sum did not move.
      if (!current?.rooms.has(room)) this.published.delete(room);
    }
    // The report's lifetime as its sender set it, measured on this process's clock.
    const lifetimeMs = Math.max(0, report.expiresAtMs - report.sentAtMs);
    const entry: GatewayReport = { epoch: report.epoch, rooms, expiresAtMs: nowMs + lifetimeMs };
    this.reports.set(report.gatewayId, entry);
    this.add(entry);
  }

  private onTotals(totals: RoomViewerTotals): void {
    if (totals.from === this.deps.instanceId) return;
    const now = this.deps.clock.now();
    const other = this.otherPublisher;
    if (!other || totals.from <= other.id || this.silent(other, now)) this.otherPublisher = { id: totals.from, heardAtMs: now };
    this.remember(totals.rooms);
  }

  private isPublisher(): boolean {
    // Totals from half the fleet's reports would tell viewers a wrong count for an interval.
    if (this.deps.clock.now() - this.startedAtMs < WARM_UP_INTERVALS * this.deps.intervalMs) return false;
    const other = this.otherPublisher;
    return !other || other.id > this.deps.instanceId || this.silent(other, this.deps.clock.now());
  }

  private silent(publisher: { heardAtMs: number }, nowMs: number): boolean {
    return nowMs - publisher.heardAtMs > PUBLISHER_SILENCE_INTERVALS * this.deps.intervalMs;
  }

  private remember(rooms: readonly RoomCount[]): void {
    for (const [room, total, lastSeq] of rooms) {
      if (total === 0 && !this.totals.has(room)) this.published.delete(room);
      else this.published.set(room, { total, lastSeq });
    }
  }

  private dropStale(): void {
    const nowMs = this.deps.clock.now();
    for (const [gatewayId, report] of this.reports) {
      if (report.expiresAtMs > nowMs && this.deps.gateways.isLive({ gatewayId, epoch: report.epoch })) continue;
      this.subtract(report);
      this.reports.delete(gatewayId);
    }
  }

  private add(report: GatewayReport): void {
    for (const [room, { count, lastSeq }] of report.rooms) {
      const total = this.totals.get(room);
      if (total) {
        total.total += count;
        total.lastSeq = Math.max(total.lastSeq, lastSeq);
      } else {
        this.totals.set(room, { total: count, lastSeq });
      }
    }
  }

  private subtract(report: GatewayReport): void {
    for (const [room, { count }] of report.rooms) {
      const total = this.totals.get(room);
      if (!total) continue;
      total.total -= count;
      // The room's newest seq only grows; it is kept while any gateway still reports the room.
      if (total.total <= 0 && !this.reportedElsewhere(room, report)) this.totals.delete(room);
    }
  }

  private reportedElsewhere(room: RoomId, except: GatewayReport): boolean {
    for (const report of this.reports.values()) if (report !== except && report.rooms.has(room)) return true;
    return false;
  }

  private decoded<T>(data: Uint8Array, is: (value: unknown) => value is T, handle: (value: T) => void): void {
    let value: unknown;
    try {
      value = decodeBusMessage(data);
    } catch (error) {
      this.deps.log.warn('ignored an undecodable fleet message', { error });
      return;
    }
    if (is(value)) handle(value);
    else this.deps.log.warn('ignored a malformed fleet message');
  }
}

function isRoomCounts(value: unknown): value is RoomCount[] {
  return Array.isArray(value) && value.every((entry) => Array.isArray(entry) && typeof entry[0] === 'string'
    && typeof entry[1] === 'number' && typeof entry[2] === 'number');
}

function isViewersReport(value: unknown): value is GatewayViewersReport {
  const report = value as Partial<GatewayViewersReport> | null;
  return typeof report === 'object' && report !== null && report.t === 'viewers' && typeof report.gatewayId === 'string'
    && typeof report.epoch === 'number' && typeof report.sentAtMs === 'number' && typeof report.expiresAtMs === 'number'
    && isRoomCounts(report.rooms);
}

function isTotals(value: unknown): value is RoomViewerTotals {
  const totals = value as Partial<RoomViewerTotals> | null;
  return typeof totals === 'object' && totals !== null && totals.t === 'totals' && typeof totals.from === 'string' && isRoomCounts(totals.rooms);
}
