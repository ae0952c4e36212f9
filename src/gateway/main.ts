/** Composition root of the gateway: turns configuration into a running Gateway. */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { isUid, signToken, type TokenVerifier } from '../shared/auth.js';
import { fail } from '../shared/errors.js';
import { systemClock } from '../shared/clock.js';
import type { Config } from '../shared/config.js';
import type { Infrastructure } from '../shared/infrastructure.js';
import type { Logger } from '../shared/log.js';
import type { MetricsRegistry } from '../shared/metrics.js';
import { Gateway, type GatewaySettings } from './gateway.js';
import { loadStaticPages } from './static-pages.js';

/** How long a dev sign-in token lasts. */
export const DEV_TOKEN_TTL_S = 24 * 3600;

/** Flushed messages a gateway keeps per room, to serve joins and short rejoins from memory. */
export const MIN_RING_SIZE = 200;

export function gatewaySettings(config: Config): GatewaySettings {
  return {
    host: config.wsHost,
    wsPort: config.wsPort,
    httpPort: config.gatewayHttpPort,
    publicUrl: config.publicUrl,
    maxFrameBytes: config.maxFrameBytes,
    maxBackpressureBytes: config.maxBackpressureBytes,
    idleTimeoutS: config.idleTimeoutS,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    allowedOrigins: config.allowedOrigins,
    requestTimeoutMs: config.requestTimeoutMs,
    sendBatchWindowMs: config.sendBatchWindowMs,
    viewerIntervalMs: config.viewerIntervalMs,
    registryHeartbeatMs: config.registryHeartbeatMs,
    slowConsumerGraceMs: config.slowConsumerGraceMs,
    shedding: { fraction: config.shedFraction, intervalMs: config.rebalanceIntervalMs, registryHeartbeatMs: config.registryHeartbeatMs },
    fanout: {
      batchWindowMs: config.batchWindowMs,
      windowMsPer1000Viewers: config.batchWindowPer1000ViewersMs,
      batchMaxMessages: config.batchMaxMessages,
      recentMessages: config.recentMessages,
      reorderWindowMs: config.reorderWindowMs,
      historyPageMax: config.historyPageMax,
      ringSize: Math.max(MIN_RING_SIZE, config.recentMessages),
      roomBudgetPerSec: config.roomBudgetPerSec,
    },
    session: {
      limits: {
        maxFrameBytes: config.maxFrameBytes,
        maxTextLength: config.maxTextLength,
        maxRooms: config.maxRoomsPerConnection,
        historyPageMax: config.historyPageMax,
      },
      heartbeatMs: (config.idleTimeoutS * 1000) / 2,
      badFrameLimit: config.badFrameLimit,
      frameRatePerSec: config.frameRatePerSec,
      frameBurst: config.frameBurst,
    },
  };
}

/** Gateway ids are NATS subject tokens: host name and a random suffix, in a safe alphabet. */
export function defaultGatewayId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40) || 'gateway';
  return `${host}-${randomBytes(3).toString('hex')}`;
}

export function startGateway(config: Config, infra: Infrastructure, verifyToken: TokenVerifier, metricsRegistry: MetricsRegistry, log: Logger): Promise<Gateway> {
  const gatewayId = config.gatewayId ?? defaultGatewayId();
  return Gateway.start({
    gatewayId,
    bus: infra.bus,
    sessionStore: infra.sessionStore,
    verifyToken,
    clock: systemClock,
    log: log.child({ component: 'gateway', gateway: gatewayId }),
    metricsRegistry,
    settings: gatewaySettings(config),
    pages: loadStaticPages(config.pagesDir),
    devToken: devTokenSigner(config),
  });
}

/** The dev sign-in: viewer tokens for any uid, signed with the all-in-one's secret; null when off. */
export function devTokenSigner(config: Config): ((uid: string) => Promise<string>) | null {
  const secret = config.jwtSecret;
  if (!config.devSignIn || !secret) return null;
  return async (uid) => {
    if (!isUid(uid)) throw fail.bad_request('a uid is 1 to 128 characters of A-Z a-z 0-9 _ . : @ -');
    return signToken({ uid, role: 'viewer', ttlSeconds: DEV_TOKEN_TTL_S }, { secret });
  };
}
