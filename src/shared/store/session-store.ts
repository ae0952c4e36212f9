/**
 * The online registry: uid → the devices where it is online (gateway instance, connection, device).
 * A gateway writes once per connection open and close and nothing per heartbeat. Which gateway
 * instances are alive is not stored here: it is fleet state, held in memory from the heartbeats on the
 * bus (src/shared/fleet). Readers pass that knowledge in; sessions of an instance that is over (it
 * stopped, its heartbeat expired, or the gateway restarted under the same id) are ignored and deleted
 * on the way.
 */
import type { Uid } from '../protocol/frames.js';
import type { GatewayId } from '../protocol/bus-messages.js';
import type { GatewayInstance } from '../protocol/fleet-messages.js';

export type ConnId = string;

export interface DeviceSession {
  uid: Uid;
  gatewayId: GatewayId;
  /** The start epoch of the gateway instance that holds the connection (GatewayInstance). */
  epoch: number;
  connId: ConnId;
  /** Device type from the token (`web`, `ios`, ...). */
  device: string;
  connectedAtMs: number;
}

/** Whether a session's gateway instance still runs (GatewayDirectory.isLive). */
export type InstanceLiveness = (instance: GatewayInstance) => boolean;

export interface SessionStore {
  register(session: DeviceSession): Promise<void>;
  unregister(uid: Uid, gatewayId: GatewayId, connId: ConnId): Promise<void>;
  /**
   * The devices of each uid on live gateway instances (a uid with none is absent), with one round
   * trip for all uids. Sessions `isLive` rejects are deleted, without waiting for the deletion.
   */
  lookup(uids: readonly Uid[], isLive: InstanceLiveness): Promise<Map<Uid, DeviceSession[]>>;
  close(): Promise<void>;
}
