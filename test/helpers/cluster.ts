/**
 * Starts Roomcast topologies inside the test process over real components: N gateways and M room
 * services on a real nats-server and redis-server (each with its own connections, as separate
 * processes would have), or the embedded all-in-one mode on the in-process bus and memory stores.
 * In the distributed mode NATS and Redis have authorization on, and each process logs in as its
 * role's user (gateway, room-service), as in deploy/k8s.
 */
import { createTokenVerifier, signToken, type TokenVerifier } from '../../src/shared/auth.js';
import { loadConfig, type Config } from '../../src/shared/config.js';
import { MemoryBus } from '../../src/shared/bus/memory-bus.js';
import { connectInfrastructure, type Infrastructure } from '../../src/shared/infrastructure.js';
import { silentLogger } from '../../src/shared/log.js';
import { MetricsRegistry } from '../../src/shared/metrics.js';
import type { Role } from '../../src/shared/protocol/frames.js';
import { startGateway } from '../../src/gateway/main.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { startRoomService, type RunningRoomService } from '../../src/room-service/main.js';
import type { GatewayDirectory } from '../../src/shared/fleet/gateway-directory.js';
import { startNats, type NatsServerHandle } from './nats-server.js';
import { startRedisCluster } from './redis-cluster.js';
import { startRedis } from './redis-server.js';
import { startSentinelSet, type SentinelSetHandle } from './redis-sentinel.js';
import { startTcpProxy } from './tcp-proxy.js';

export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256';
export const TEST_API_KEY = 'test-api-key';

export interface GatewayHandle {
  gateway: Gateway;
  url: string;
  metricsUrl: string;
  /** Cuts and restores this gateway's NATS connection (distributed mode only). */
  natsLink: { cut(): void; restore(): void } | null;
}

export interface Cluster {
  gateways: GatewayHandle[];
  roomServices: RunningRoomService[];
  apiUrl: string;
  nats: NatsServerHandle | null;
  /** The redis-server's URL as its default user (distributed mode; `redis-cluster://` on a cluster), for tests that inspect what is stored. */
  redisUrl: string | null;
  /** Subscriptions on `subject` over every process: nats-server's monitoring, or the in-process bus. */
  subscriptionCount(subject: string): Promise<number>;
  /** The Sentinel set-up, with `redis: 'sentinel'`. */
  sentinel: SentinelSetHandle | null;
  /** The gateway fleet as the first room service sees it (from the heartbeats on the bus). */
  registry: GatewayDirectory;
  /** Settings for a Roomcast process of this cluster's own (a gateway, by default, or a room service started apart). */
  processEnv(role?: ServiceRole): Record<string, string>;
  /** Starts one more gateway in this process, with extra settings and, if given, its own token check. */
  addGateway(gatewayId: string, env?: Record<string, string>, verifyToken?: TokenVerifier): Promise<GatewayHandle>;
  token(uid: string, role?: Role, extra?: { rooms?: string[]; device?: string }): Promise<string>;
  /** Creates rooms through the HTTP API, as a backend would. */
  createRoom(room: string, body?: Record<string, unknown>): Promise<void>;
  api(method: string, path: string, body?: unknown, credential?: string): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

type ServiceRole = 'gateway' | 'room-service';

export interface ClusterOptions {
  mode: 'distributed' | 'embedded';
  gateways?: number;
  roomServices?: number;
  /** Extra ROOMCAST_* settings for every process. */
  env?: Record<string, string>;
  /**
   * Distributed mode: one redis-server (default), a primary, a replica and a sentinel (redis-sentinel://
   * URLs), or a 3-primary Redis Cluster (redis-cluster:// URLs, without ACL users).
   */
  redis?: 'single' | 'sentinel' | 'cluster';
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const cleanups: Array<() => Promise<void>> = [];
  const nats = options.mode === 'distributed' ? await startNats() : null;
  if (nats) cleanups.push(() => nats.stop());
  const distributed = options.mode === 'distributed';
  const sentinel = distributed && options.redis === 'sentinel' ? await startSentinelSet() : null;
  if (sentinel) cleanups.push(() => sentinel.stop());
  const redisCluster = distributed && options.redis === 'cluster' ? await startRedisCluster() : null;
  if (redisCluster) cleanups.push(() => redisCluster.stop());
  const redis = distributed ? sentinel ?? redisCluster ?? await startRedis({ acl: true }) : null;
  if (redis && !sentinel && !redisCluster) cleanups.push(() => redis.stop());

  const baseEnv: Record<string, string> = {
    ROOMCAST_JWT_SECRET: TEST_SECRET,
    ROOMCAST_API_KEYS: TEST_API_KEY,
    ROOMCAST_WS_HOST: '127.0.0.1',
    ROOMCAST_API_HOST: '127.0.0.1',
    ROOMCAST_WS_PORT: '0',
    ROOMCAST_GATEWAY_HTTP_PORT: '0',
    ROOMCAST_API_PORT: '0',
    ROOMCAST_API_METRICS_PORT: '0',
    // Every test client comes from 127.0.0.1; the per-address cap has a test of its own.
    ROOMCAST_MAX_CONNECTIONS_PER_IP: '0',
    // Embedded clusters share the test's event loop, which a big test may hold for a while: no
    // shedding on loop lag (the admission test turns it on).
    ROOMCAST_MAX_LOOP_LAG_MS: '0',
    ROOMCAST_LOG_LEVEL: 'silent',
    ...options.env,
  };
  /** The role's NATS user and Redis user (distributed mode). */
  const credentialsEnv = (service: ServiceRole): Record<string, string> => {
    if (!nats || !redis) return {};
    const { user, password } = nats.credentials(service);
    return { ROOMCAST_NATS_USER: user, ROOMCAST_NATS_PASSWORD: password, ROOMCAST_REDIS_URL: redis.urlFor(service) };
  };
  const verifyToken = await createTokenVerifier({ secret: TEST_SECRET });
  const configFor = (role: 'gateway' | 'room-service' | 'all-in-one', natsUrl: string | null, extra: Record<string, string> = {}): Config =>
    loadConfig(role, {
      // The test's own settings (options.env, in baseEnv) win over the role's credentials.
      ...credentialsEnv(role === 'all-in-one' ? 'room-service' : role), ...baseEnv, ...(natsUrl ? { ROOMCAST_NATS_URL: natsUrl } : {}), ...extra,
    });

  let shared: Infrastructure | null = null;
  cleanups.push(async () => { await shared?.close(); });
  const infraFor = async (config: Config, name: string): Promise<Infrastructure> => {
    if (options.mode === 'embedded') {
      shared ??= await connectInfrastructure(config, name, silentLogger);
      return shared;
    }
    const infra = await connectInfrastructure(config, name, silentLogger);
    cleanups.push(() => infra.close());
    return infra;
  };
  const role = options.mode === 'embedded' ? 'all-in-one' : undefined;

  const roomServices: RunningRoomService[] = [];
  for (let i = 0; i < (options.roomServices ?? 1); i++) {
    const config = configFor(role ?? 'room-service', nats?.plainUrl ?? null);
    const infra = await infraFor(config, `room-service-${i}`);
    const running = await startRoomService(config, infra, verifyToken, new MetricsRegistry(), silentLogger, 0);
    cleanups.push(() => running.stop());
    roomServices.push(running);
  }

  const gateways: GatewayHandle[] = [];
  const addGateway: Cluster['addGateway'] = async (gatewayId, env = {}, verify = verifyToken) => {
    let natsUrl: string | null = null;
    let natsLink: GatewayHandle['natsLink'] = null;
    if (nats) {
      const proxy = await startTcpProxy(nats.port);
      cleanups.push(() => proxy.close());
      natsUrl = `nats://127.0.0.1:${proxy.port}`;
      natsLink = proxy;
    }
    const config = configFor(role ?? 'gateway', natsUrl, { ROOMCAST_GATEWAY_ID: gatewayId, ...env });
    const gateway = await startGateway(config, await infraFor(config, gatewayId), verify, new MetricsRegistry(), silentLogger);
    cleanups.push(() => gateway.stop());
    const handle = { gateway, url: `ws://127.0.0.1:${gateway.wsPort}/ws`, metricsUrl: `http://127.0.0.1:${gateway.httpPort}/metrics`, natsLink };
    gateways.push(handle);
    return handle;
  };
  for (let i = 0; i < (options.gateways ?? 1); i++) await addGateway(`gw${i}`);

  const apiUrl = `http://127.0.0.1:${roomServices[0]!.apiPort}`;
  const api: Cluster['api'] = async (method, path, body, credential = TEST_API_KEY) => {
    const response = await fetch(`${apiUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${credential}`, 'Content-Type': 'application/json' },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try { parsed = JSON.parse(text); } catch { /* not JSON: keep the text for the assertion message */ }
    return { status: response.status, body: parsed };
  };

  return {
    gateways, roomServices, apiUrl, nats, api, redisUrl: redis?.urlFor('default') ?? null, sentinel, addGateway, registry: roomServices[0]!.gateways,
    processEnv: (service = 'gateway') => ({ ...credentialsEnv(service), ...baseEnv, ...(nats ? { ROOMCAST_NATS_URL: nats.plainUrl } : {}) }),
    subscriptionCount: async (subject) => {
      if (nats) return nats.subscriptionCount(subject);
      if (shared?.bus instanceof MemoryBus) return shared.bus.subscriptionCount(subject);
      throw new Error('the embedded cluster has no in-process bus');
    },
    token: (uid, tokenRole = 'viewer', extra = {}) => signToken({ uid, role: tokenRole, ttlSeconds: 3600, ...extra }, { secret: TEST_SECRET }),
    createRoom: async (room, body = {}) => {
      const response = await api('PUT', `/v1/rooms/${room}`, body);
      if (response.status !== 201 && response.status !== 200) throw new Error(`creating room ${room}: ${response.status} ${JSON.stringify(response.body)}`);
    },
    stop: async () => {
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    },
  };
}
