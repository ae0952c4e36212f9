/**
 * A gateway's part of the fleet state on the bus: its heartbeat on `fleet.gateway.<gatewayId>`
 * (address, load, readiness, instance epoch) every registry interval and a goodbye when it stops; all
 * its rooms' local viewer counts in one `fleet.viewers.<gatewayId>` message per viewer interval; and
 * the fleet-wide totals from `fleet.rooms.viewers`, handed to the room fan-out. Nothing here touches
 * Redis, and nothing is per connection.
 */
import type { Bus, Subscription } from '../shared/bus/bus.js';
import type { Clock } from '../shared/clock.js';
import { decodeBusMessage, encodeBusMessage } from '../shared/codec/codec.js';
import type { Logger } from '../shared/log.js';
import { subjects } from '../shared/protocol/bus-messages.js';
import {
  heartbeatLifetimeMs, viewerReportLifetimeMs,
  type GatewayGoodbye, type GatewayHeartbeat, type GatewayInstance, type GatewayViewersReport, type RoomCount, type RoomViewerTotals,
} from '../shared/protocol/fleet-messages.js';
import type { RoomId, Seq } from '../shared/protocol/frames.js';

export interface FleetPresenceDeps {
  bus: Bus;
  clock: Clock;
  log: Logger;
  instance: GatewayInstance;
  heartbeatMs: number;
  viewerIntervalMs: number;
  /** What the heartbeat says now. */
  status: () => { url: string; connections: number; ready: boolean };
  /** Every room with local members: [room, members, newest seq seen]. */
  localCounts: () => RoomCount[];
  /** A room's fleet-wide total and newest seq (RoomFanout.applyViewerReport). */
  applyTotal: (room: RoomId, total: number, lastSeq: Seq) => void;
}

export class FleetPresence {
  private readonly timers: NodeJS.Timeout[] = [];
  private subscription: Subscription | null = null;
  /** Whether the last report named any room: an empty report is sent once, to zero the last ones. */
  private reportedRooms = true;

  constructor(private readonly deps: FleetPresenceDeps) {}

  start(): void {
    const { bus, heartbeatMs, viewerIntervalMs } = this.deps;
    this.subscription = bus.subscribe(subjects.fleetRoomViewers, (message) => this.onTotals(message.data));
    this.timers.push(
      setInterval(() => this.heartbeat(), heartbeatMs),
      setInterval(() => this.reportViewers(), viewerIntervalMs),
    );
  }

  /** Announces the instance as it is now; resolves once the server has it. */
  async heartbeat(): Promise<void> {
    const { bus, clock, instance, heartbeatMs } = this.deps;
    const sentAtMs = clock.now();
    const message: GatewayHeartbeat = {
      t: 'heartbeat', ...instance, ...this.deps.status(), sentAtMs, expiresAtMs: sentAtMs + heartbeatLifetimeMs(heartbeatMs),
    };
    bus.publish(subjects.fleetGateway(instance.gatewayId), encodeBusMessage(message));
    await bus.flush();
  }

  /** All local rooms in one message; never one per room or per connection. */
  reportViewers(): void {
    const { bus, clock, instance, viewerIntervalMs } = this.deps;
    const rooms = this.deps.localCounts();
    if (rooms.length === 0 && !this.reportedRooms) return;
    this.reportedRooms = rooms.length > 0;
    const sentAtMs = clock.now();
    const message: GatewayViewersReport = { t: 'viewers', ...instance, rooms, sentAtMs, expiresAtMs: sentAtMs + viewerReportLifetimeMs(viewerIntervalMs) };
    bus.publish(subjects.fleetViewers(instance.gatewayId), encodeBusMessage(message));
  }

  /** Stops reporting and tells the fleet this instance is over (dispatch and routing forget it at once). */
  async stop(): Promise<void> {
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    this.subscription?.unsubscribe();
    this.subscription = null;
    const goodbye: GatewayGoodbye = { t: 'goodbye', ...this.deps.instance };
    this.deps.bus.publish(subjects.fleetGateway(this.deps.instance.gatewayId), encodeBusMessage(goodbye));
    await this.deps.bus.flush();
  }

  private onTotals(data: Uint8Array): void {
    let totals: RoomViewerTotals;
    try {
      totals = decodeBusMessage(data) as RoomViewerTotals;
      if (totals?.t !== 'totals' || !Array.isArray(totals.rooms)) throw new Error('not a totals message');
    } catch (error) {
      this.deps.log.warn('ignored a malformed fleet.rooms.viewers message', { error });
      return;
    }
    for (const entry of totals.rooms) {
      if (!Array.isArray(entry)) continue;
      const [room, total, lastSeq] = entry;
      if (typeof room === 'string' && typeof total === 'number' && typeof lastSeq === 'number') this.deps.applyTotal(room, total, lastSeq);
    }
  }
}
