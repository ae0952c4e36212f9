/**
 * The gateway registry held in memory: every gateway heartbeats on `fleet.gateway.<gatewayId>` and
 * every process that needs the fleet (room services for dispatch and routing, gateways for load
 * shedding) listens. Nothing is read from Redis per request, and a new process knows the whole
 * fleet after one heartbeat interval.
 *
 * A gateway is out when its heartbeat is one interval (and half an interval, at least a second, of slack) late, or at
 * once when it says goodbye. Lifetimes are measured on the receiver's clock (`expiresAtMs −
 * sentAtMs` of each heartbeat from when it arrived), so clock skew between hosts does not matter.
 */
import type { Bus, Subscription } from '../bus/bus.js';
import type { Clock } from '../clock.js';
import { decodeBusMessage } from '../codec/codec.js';
import type { Logger } from '../log.js';
import { subjects, type GatewayId } from '../protocol/bus-messages.js';
import { heartbeatLifetimeMs, type GatewayEvent, type GatewayInfo, type GatewayInstance } from '../protocol/fleet-messages.js';
import type { GatewayDirectory } from './gateway-directory.js';

export interface GatewayRegistryDeps {
  bus: Bus;
  clock: Clock;
  log: Logger;
  /** The gateways' heartbeat interval: until one has passed since start, the registry may not know every gateway. */
  heartbeatMs: number;
}

interface Entry {
  info: GatewayInfo;
  /** On this process's clock. */
  expiresAtMs: number;
}

export class GatewayRegistry implements GatewayDirectory {
  private readonly entries = new Map<GatewayId, Entry>();
  private subscription: Subscription | null = null;
  private startedAtMs = Number.POSITIVE_INFINITY;

  constructor(private readonly deps: GatewayRegistryDeps) {}

  start(): void {
    this.startedAtMs = this.deps.clock.now();
    this.subscription = this.deps.bus.subscribe(subjects.fleetGateways, (message) => this.onEvent(message.data));
    // While the bus is down heartbeats are missed, not absent: after a reconnect the registry listens
    // for a whole lifetime again before it takes a silent gateway for a dead one.
    this.deps.bus.onStatus((status) => {
      this.startedAtMs = status === 'reconnected' ? this.deps.clock.now() : Number.POSITIVE_INFINITY;
    });
  }

  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = null;
  }

  /** True once every live gateway has had time to heartbeat since this registry started (or resumed) listening. */
  get warm(): boolean {
    return this.deps.clock.now() - this.startedAtMs >= heartbeatLifetimeMs(this.deps.heartbeatMs);
  }

  liveGateways(): GatewayInfo[] {
    this.dropExpired();
    return [...this.entries.values()].map((entry) => entry.info);
  }

  /** O(1): called once per device session a routing lookup reads. */
  isLive(instance: GatewayInstance): boolean {
    const entry = this.entries.get(instance.gatewayId);
    // A newer run of the same gateway id: this one is over, whatever else is known.
    if (entry && entry.info.epoch !== instance.epoch) return entry.info.epoch < instance.epoch;
    if (entry && entry.expiresAtMs > this.deps.clock.now()) return true;
    // Unknown or silent: dead, unless the registry has not listened for a whole heartbeat lifetime
    // (just started, or the bus was down), when it may simply not have heard it yet. Its sessions are
    // then kept rather than deleted.
    return !this.warm;
  }

  private onEvent(data: Uint8Array): void {
    let event: GatewayEvent;
    try {
      event = decodeBusMessage(data) as GatewayEvent;
      if (!isGatewayEvent(event)) throw new Error('not a gateway heartbeat or goodbye');
    } catch (error) {
      this.deps.log.warn('ignored a malformed fleet.gateway message', { error });
      return;
    }
    const current = this.entries.get(event.gatewayId);
    if (event.t === 'goodbye') {
      if (current?.info.epoch === event.epoch) this.entries.delete(event.gatewayId);
      return;
    }
    // A late heartbeat of an instance that a newer one has replaced is stale news.
    if (current && current.info.epoch > event.epoch) return;
    const { t: _t, sentAtMs, ...info } = event;
    this.entries.set(event.gatewayId, { info, expiresAtMs: this.deps.clock.now() + Math.max(0, event.expiresAtMs - sentAtMs) });
  }

  private dropExpired(): void {
    const nowMs = this.deps.clock.now();
    for (const [gatewayId, entry] of this.entries) if (entry.expiresAtMs <= nowMs) this.entries.delete(gatewayId);
  }
}

function isGatewayEvent(value: unknown): value is GatewayEvent {
  if (typeof value !== 'object' || value === null) return false;
  const event = value as Partial<GatewayEvent> & Record<string, unknown>;
  if (typeof event.gatewayId !== 'string' || typeof event.epoch !== 'number') return false;
  if (event.t === 'goodbye') return true;
  return event.t === 'heartbeat' && typeof event.url === 'string' && typeof event.connections === 'number'
    && typeof event.ready === 'boolean' && typeof event.expiresAtMs === 'number' && typeof event.sentAtMs === 'number';
}
