/**
 * Rebalancing after a scale-up. Long connections never move by themselves: a new gateway stays idle
 * while the old ones stay hot. Every `intervalMs` a gateway compares its load with the registry's
 * reports of the others; when it is well above the mean while another ready gateway is well below,
 * it asks `fraction` of its excess over the mean to reconnect, with jittered delays. Clients that
 * connect through dispatch then land on the light gateways.
 */
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/log.js';
import type { GatewayMetrics } from '../shared/metrics.js';
import type { GatewayId } from '../shared/protocol/bus-messages.js';
import type { GatewayDirectory } from '../shared/fleet/gateway-directory.js';
import type { GatewayInfo } from '../shared/protocol/fleet-messages.js';
import type { Conn } from './uws-server.js';

export interface LoadSheddingSettings {
  /** The share of the excess over the mean load that is moved per round; 0 turns shedding off. */
  fraction: number;
  intervalMs: number;
  /** How often gateways report their load to the registry: how stale the others' reports can be. */
  registryHeartbeatMs: number;
}

/** Imbalance needed before anything moves: this gateway above mean × (1 + it), another below mean × (1 − it). */
export const IMBALANCE = 0.2;
/** The reconnects of one round are spread over this long. */
export const SHED_SPREAD_MS = 5000;
/**
 * After a round, the others' load reports are stale until the moved clients have arrived and been
 * reported: no new round before then, or the same excess would be moved twice.
 */
export function shedCooldownMs(registryHeartbeatMs: number): number {
  return SHED_SPREAD_MS + 3 * registryHeartbeatMs;
}

/** How many connections to move, given this gateway's load and every live gateway's report. */
export function shedCount(gatewayId: GatewayId, connections: number, gateways: readonly GatewayInfo[], fraction: number): number {
  const ready = gateways.filter((gateway) => gateway.ready && gateway.gatewayId !== gatewayId);
  if (fraction <= 0 || ready.length === 0) return 0;
  const mean = (connections + ready.reduce((sum, gateway) => sum + gateway.connections, 0)) / (ready.length + 1);
  const lightest = Math.min(...ready.map((gateway) => gateway.connections));
  if (connections <= mean * (1 + IMBALANCE) || lightest >= mean * (1 - IMBALANCE)) return 0;
  return Math.floor((connections - mean) * fraction);
}

export interface LoadSheddingDeps {
  gatewayId: GatewayId;
  /** The others' load, from their heartbeats on the bus (in memory). */
  gateways: GatewayDirectory;
  connections: () => Iterable<Conn>;
  connectionCount: () => number;
  requestReconnect: (conn: Conn, delayMs: number) => void;
  clock: Clock;
  log: Logger;
  metrics: GatewayMetrics;
  settings: LoadSheddingSettings;
  random?: () => number;
}

export class LoadShedding {
  private timer: NodeJS.Timeout | null = null;
  private lastRoundAtMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly deps: LoadSheddingDeps) {}

  start(): void {
    if (this.deps.settings.fraction > 0) this.timer = setInterval(() => void this.round(), this.deps.settings.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One rebalancing round; resolves with the number of connections asked to move. */
  async round(): Promise<number> {
    const { gateways, clock, settings, gatewayId } = this.deps;
    if (clock.now() - this.lastRoundAtMs < shedCooldownMs(settings.registryHeartbeatMs)) return 0;
    const count = shedCount(gatewayId, this.deps.connectionCount(), gateways.liveGateways(), settings.fraction);
    if (count === 0) return 0;
    this.lastRoundAtMs = clock.now();
    const random = this.deps.random ?? Math.random;
    let moved = 0;
    for (const conn of this.deps.connections()) {
      if (moved === count) break;
      if (conn.closed) continue;
      this.deps.requestReconnect(conn, Math.floor(random() * SHED_SPREAD_MS));
      moved++;
    }
    this.deps.metrics.reconnectRequested(moved);
    this.deps.log.info('shedding connections to lighter gateways', { moved, connections: this.deps.connectionCount() });
    return moved;
  }
}
