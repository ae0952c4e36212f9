/**
 * Dispatch: which gateway a client should connect to. Long connections never move by themselves, so
 * round-robin load balancing leaves a new gateway idle while the old ones stay hot; clients that ask
 * here first are sent to lightly loaded gateways instead.
 *
 * "Lightly loaded" is a band, not the single least loaded gateway: the registry's load reports are a
 * few seconds old, and a band spreads a burst of clients over every gateway near the minimum while
 * still keeping them all away from the hot ones.
 */
import type { GatewayDirectory } from '../shared/fleet/gateway-directory.js';
import type { GatewayInfo } from '../shared/protocol/fleet-messages.js';

/** Gateways within this many connections of the least loaded one count as lightly loaded... */
export const LIGHT_LOAD_MIN_BAND = 100;
/** ...or within this fraction of the mean load, whichever is larger. */
export const LIGHT_LOAD_BAND_FRACTION = 0.1;

/** A random gateway among the ready ones whose load is near the lowest, or null when none is ready. */
export function pickGateway(gateways: readonly GatewayInfo[], random: () => number): GatewayInfo | null {
  const ready = gateways.filter((gateway) => gateway.ready);
  if (ready.length === 0) return null;
  const loads = ready.map((gateway) => gateway.connections);
  const mean = loads.reduce((sum, load) => sum + load, 0) / loads.length;
  const ceiling = Math.min(...loads) + Math.max(LIGHT_LOAD_MIN_BAND, LIGHT_LOAD_BAND_FRACTION * mean);
  const light = ready.filter((gateway) => gateway.connections <= ceiling);
  return light[Math.floor(random() * light.length)]!;
}

export class GatewayDispatch {
  constructor(private readonly deps: { gateways: GatewayDirectory; random?: () => number }) {}

  /** A ready gateway for a new connection, or null when none is alive and ready; from memory, no store read. */
  choose(): GatewayInfo | null {
    return pickGateway(this.deps.gateways.liveGateways(), this.deps.random ?? Math.random);
  }
}
