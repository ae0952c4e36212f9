/**
 * The online registry: uid → the devices where it is online (gateway, connection, device), and the
 * gateways that are alive. A gateway writes once per connection open and close, and keeps itself
 * alive with one heartbeat for all its connections; entries of a gateway that stops heartbeating are
 * ignored by readers and cleaned up lazily. How often it heartbeats is a setting (`registryHeartbeatMs`);
 * each heartbeat sets the gateway's expiry, so readers need not know it.
 */
import type { Uid } from '../protocol/frames.js';
import type { GatewayId } from '../protocol/bus-messages.js';

export type ConnId = string;

export interface DeviceSession {
  uid: Uid;
  gatewayId: GatewayId;
  connId: ConnId;
  /** Device type from the token (`web`, `ios`, ...). */
  device: string;
  connectedAtMs: number;
}

export interface GatewayInfo {
  gatewayId: GatewayId;
  /** Where clients reach it (ws://host:port/ws). */
  url: string;
  connections: number;
  ready: boolean;
  /** The heartbeat is void after this time. */
  expiresAtMs: number;
}

export interface SessionStore {
  register(session: DeviceSession): Promise<void>;
  unregister(uid: Uid, gatewayId: GatewayId, connId: ConnId): Promise<void>;
  /** Marks the gateway alive until `info.expiresAtMs`. */
  heartbeatGateway(info: GatewayInfo): Promise<void>;
  /** Forgets a gateway that is shutting down; its remaining sessions are then ignored by readers. */
  removeGateway(gatewayId: GatewayId): Promise<void>;
  /** The live devices of each uid (a uid with none is absent), with one round trip for all uids. */
  lookup(uids: readonly Uid[], nowMs: number): Promise<Map<Uid, DeviceSession[]>>;
  liveGateways(nowMs: number): Promise<GatewayInfo[]>;
  close(): Promise<void>;
}
