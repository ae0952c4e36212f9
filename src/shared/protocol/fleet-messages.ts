/**
 * Fleet-wide state carried on the bus instead of Redis (DESIGN.md, "Scale-out"): every gateway
 * announces itself on `fleet.gateway.<gatewayId>` and its rooms' local viewer counts on
 * `fleet.viewers.<gatewayId>`; the room services hold both in memory and send the fleet-wide viewer
 * totals back on `fleet.rooms.viewers`. Encoded by the one codec.
 */
import type { GatewayId } from './bus-messages.js';
import type { RoomId, Seq } from './frames.js';

/**
 * One run of a gateway process. A container restart keeps the pod name, hence the gateway id; the
 * epoch (its start time, ms since the Unix epoch) tells the new run from the old one, so the old
 * run's device sessions can be told apart and dropped.
 */
export interface GatewayInstance {
  gatewayId: GatewayId;
  epoch: number;
}

/** What the registry knows of a live gateway: its last heartbeat. */
export interface GatewayInfo extends GatewayInstance {
  /** Where clients reach it (ws://host:port/ws). */
  url: string;
  connections: number;
  /** False while draining, before it accepts connections, and while its bus connection is down. */
  ready: boolean;
  /** The heartbeat is void after this time (the sender's clock; receivers apply the same lifetime to their own). */
  expiresAtMs: number;
}

/** `fleet.gateway.<gatewayId>`: sent every registry heartbeat interval. */
export interface GatewayHeartbeat extends GatewayInfo {
  t: 'heartbeat';
  /** When it was sent (the sender's clock): `expiresAtMs − sentAtMs` is its lifetime. */
  sentAtMs: number;
}

/** `fleet.gateway.<gatewayId>`: the instance stops; its sessions are over. */
export interface GatewayGoodbye extends GatewayInstance {
  t: 'goodbye';
}

export type GatewayEvent = GatewayHeartbeat | GatewayGoodbye;

/** A room and a count in it, with the newest seq its sender knows of (a gap check for quiet rooms). */
export type RoomCount = [room: RoomId, count: number, lastSeq: Seq];

/**
 * `fleet.viewers.<gatewayId>`: every room with local members, once per viewer interval. The report
 * is the whole truth of that gateway instance: a room it no longer names has no viewers there.
 */
export interface GatewayViewersReport extends GatewayInstance {
  t: 'viewers';
  rooms: RoomCount[];
  sentAtMs: number;
  expiresAtMs: number;
}

/**
 * `fleet.rooms.viewers`: fleet-wide totals of the rooms whose total (or newest seq) changed since
 * the last such message, from the one room service that publishes them (`from`, its instance id).
 */
export interface RoomViewerTotals {
  t: 'totals';
  from: string;
  rooms: RoomCount[];
}

/** Slack for a late heartbeat at least this long: an event-loop stall or a GC pause is no death. */
export const MIN_HEARTBEAT_SLACK_MS = 1000;

/**
 * The lifetime of a heartbeat sent every `heartbeatMs`: one missed heartbeat, and half an interval
 * (at least MIN_HEARTBEAT_SLACK_MS) of slack, and the gateway is out. 7.5 s at the default 5 s.
 */
export function heartbeatLifetimeMs(heartbeatMs: number): number {
  return heartbeatMs + Math.max(Math.ceil(heartbeatMs / 2), MIN_HEARTBEAT_SLACK_MS);
}

/** A viewer report sent every `intervalMs` counts for this long: one late report does not zero a room. */
export function viewerReportLifetimeMs(intervalMs: number): number {
  return Math.ceil(2.5 * intervalMs);
}
