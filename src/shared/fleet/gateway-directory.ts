/**
 * What the room services and gateways need to know about the gateway fleet, answered from memory:
 * which gateways are alive (dispatch, load shedding) and whether a device session belongs to a
 * gateway instance that is still running (routing, offline pushes). GatewayRegistry keeps it current
 * from the heartbeats on the bus (NATS, or the in-process bus of the all-in-one).
 */
import type { GatewayInfo, GatewayInstance } from '../protocol/fleet-messages.js';

export interface GatewayDirectory {
  /** The gateways whose last heartbeat is still valid, ready or not. */
  liveGateways(): GatewayInfo[];
  /**
   * False when the session's gateway instance is known to be over: a newer instance of the same id
   * heartbeats, it said goodbye, or its heartbeat expired. Its sessions are then ignored and deleted.
   */
  isLive(instance: GatewayInstance): boolean;
}

/** A directory with a fixed set of gateways: tests, and tools that know the fleet. */
export class FixedGatewayDirectory implements GatewayDirectory {
  constructor(private readonly gateways: readonly GatewayInfo[]) {}

  liveGateways(): GatewayInfo[] {
    return [...this.gateways];
  }

  isLive(instance: GatewayInstance): boolean {
    return this.gateways.some((g) => g.gatewayId === instance.gatewayId && g.epoch === instance.epoch);
  }
}
