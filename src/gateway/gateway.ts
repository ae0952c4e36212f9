/**
 * The gateway process: WebSocket connections (UwsServer), their sessions, the room fan-out, the
 * online registry and its part of the fleet state (heartbeat, viewer counts), wired together over the
 * injected bus and session store.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { TokenVerifier } from '../shared/auth.js';
import type { Bus } from '../shared/bus/bus.js';
import type { Clock } from '../shared/clock.js';
import { closeCodeOf, fail } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { GatewayMetrics, type MetricsRegistry } from '../shared/metrics.js';
import type { GatewayId } from '../shared/protocol/bus-messages.js';
import type { GatewayInstance } from '../shared/protocol/fleet-messages.js';
import { GatewayRegistry } from '../shared/fleet/gateway-registry.js';
import type { SessionStore } from '../shared/store/session-store.js';
import { ChatClient } from './chat-client.js';
import { FleetPresence } from './fleet-presence.js';
import { Logins } from './logins.js';
import { LoadShedding, type LoadSheddingSettings } from './load-shedding.js';
import { RoomAccess } from './room-access.js';
import { RoomClient } from './room-client.js';
import { RoomFanout, type FanoutSettings } from './room-fanout.js';
import { Sessions, type SessionSettings, type SessionState } from './session.js';
import { SlowConsumers, uwsBackpressureLimit } from './slow-consumers.js';
import { UserDelivery } from './user-delivery.js';
import type { StaticPages } from './static-pages.js';
import { PAGES_CSP } from './static-pages.js';
import { IdleConnections } from './idle-connections.js';
import { UWS_MAX_IDLE_TIMEOUT_S, UwsServer, type Conn } from './uws-server.js';

export interface GatewaySettings {
  host: string;
  wsPort: number;
  httpPort: number;
  /** The URL clients use to reach this gateway; derived from host and port when null. */
  publicUrl: string | null;
  maxFrameBytes: number;
  maxBackpressureBytes: number;
  idleTimeoutS: number;
  /** Connections one client address may hold; 0: no limit. */
  maxConnectionsPerIp: number;
  /** Origins whose pages may connect; empty: any. */
  allowedOrigins: readonly string[];
  requestTimeoutMs: number;
  /** Room sends are coalesced into one request per this window while they keep coming. */
  sendBatchWindowMs: number;
  viewerIntervalMs: number;
  /** How often this gateway announces itself (alive, ready or not, its load) on the bus. */
  registryHeartbeatMs: number;
  /** How long a slow connection may stay behind before it is closed. */
  slowConsumerGraceMs: number;
  shedding: LoadSheddingSettings;
  fanout: FanoutSettings;
  session: SessionSettings;
}

export interface GatewayDeps {
  gatewayId: GatewayId;
  bus: Bus;
  sessionStore: SessionStore;
  verifyToken: TokenVerifier;
  clock: Clock;
  log: Logger;
  metricsRegistry: MetricsRegistry;
  settings: GatewaySettings;
  /** The viewer page and console, served on the WebSocket port. */
  pages: StaticPages;
  /** Signs a viewer token for a uid: the pages' dev sign-in (all-in-one only); null when off. */
  devToken: ((uid: string) => Promise<string>) | null;
}

/** A drain sends its `reconnect` frames in this many waves, over the first DRAIN_SPREAD of the drain time. */
export const DRAIN_WAVES = 10;
const DRAIN_SPREAD = 0.8;
const DRAIN_POLL_MS = 100;
/**
 * uWS reads messages up to this multiple of the protocol's frame limit, so that a frame over the limit
 * gets `frame_too_large` and 1009; beyond it uWS drops the connection unread (and unanswerable).
 */
const READ_LIMIT_FACTOR = 4;
const MIN_READ_LIMIT_BYTES = 64 * 1024;
/** uWS's own inactivity limit stays this far behind the gateway's idle close, as a backstop. */
const BACKSTOP_IDLE_MARGIN_S = 30;
/** Sends (or chat frames of one op) per request to the room service: its replies stay small and one batch never waits on many. */
const MAX_REQUESTS_PER_BATCH = 128;

export class Gateway {
  private server!: UwsServer<SessionState>;
  private readonly metrics: GatewayMetrics;
  private readonly fanout: RoomFanout;
  private readonly sessions: Sessions;
  /** Private and group chat: routed frames in, chat frames out. */
  private readonly users: UserDelivery;
  private readonly chat: ChatClient;
  /** The join rules of the rooms this gateway carries. */
  private readonly access: RoomAccess;
  /** Registry writes and chat logins of new connections, batched per tick. */
  private readonly logins: Logins;
  private readonly slowConsumers: SlowConsumers;
  private readonly shedding: LoadShedding;
  private readonly idle: IdleConnections;
  private readonly presence: FleetPresence;
  /** The other gateways' loads, for load shedding (listened to only when shedding is on). */
  private readonly registry: GatewayRegistry;
  /** This run of the gateway: device sessions name it, so a restart under the same id drops the old run's. */
  readonly instance: GatewayInstance;
  private busConnected = true;
  /** False until the fleet has heard of this instance: a session registered before that would look orphaned. */
  private accepting = false;
  private stopped = false;

  private constructor(private readonly deps: GatewayDeps) {
    const { bus, clock, log, settings } = deps;
    this.instance = { gatewayId: deps.gatewayId, epoch: clock.now() };
    this.metrics = new GatewayMetrics(deps.metricsRegistry);
    const batching = { windowMs: settings.sendBatchWindowMs, maxItems: MAX_REQUESTS_PER_BATCH };
    const roomClient = new RoomClient(bus, settings.requestTimeoutMs, this.metrics, batching);
    this.access = new RoomAccess({ roomClient, clock });
    const access = this.access;
    this.fanout = new RoomFanout({
      bus, roomClient, access, clock, log, metrics: this.metrics, settings: settings.fanout,
      publisher: { publish: (topic, data) => this.server.publish(topic, data) },
    });
    this.users = new UserDelivery({
      gatewayId: deps.gatewayId, bus, log, metrics: this.metrics, inRoom: (conn, room) => this.fanout.isMember(conn, room),
    });
    this.chat = new ChatClient({ gatewayId: deps.gatewayId, bus, log, metrics: this.metrics, requestTimeoutMs: settings.requestTimeoutMs, batching });
    this.logins = new Logins({
      gatewayId: deps.gatewayId, epoch: this.instance.epoch, sessionStore: deps.sessionStore, chat: this.chat, clock,
      storeFailed: (op, error) => this.storeFailed(op, error),
    });
    this.sessions = new Sessions({ fanout: this.fanout, roomClient, access, chat: this.chat, clock, log, metrics: this.metrics, settings: settings.session });
    this.slowConsumers = new SlowConsumers({
      connections: () => this.server.connections(), fanout: this.fanout, clock, log, metrics: this.metrics,
      settings: { limitBytes: settings.maxBackpressureBytes, graceMs: settings.slowConsumerGraceMs },
    });
    this.idle = new IdleConnections({
      connections: () => this.server.connections(), clock,
      settings: { heartbeatMs: settings.session.heartbeatMs, idleTimeoutMs: settings.idleTimeoutS * 1000 },
      close: (conn, error) => {
        this.metrics.errorSent(error.code);
        this.sessions.reject(conn, error);
      },
    });
    this.registry = new GatewayRegistry({ bus, clock, log, heartbeatMs: settings.registryHeartbeatMs });
    this.presence = new FleetPresence({
      bus, clock, log, instance: this.instance, heartbeatMs: settings.registryHeartbeatMs, viewerIntervalMs: settings.viewerIntervalMs,
      status: () => ({ url: this.url, connections: this.server.connectionCount, ready: this.accepting && this.busConnected }),
      localCounts: () => this.fanout.localCounts(),
      applyTotal: (room, total, lastSeq) => this.fanout.applyViewerReport(room, total, lastSeq),
    });
    this.shedding = new LoadShedding({
      gatewayId: deps.gatewayId, gateways: this.registry, clock, log, metrics: this.metrics, settings: settings.shedding,
      connections: () => this.server.connections(), connectionCount: () => this.server.connectionCount,
      requestReconnect: (conn, delayMs) => this.sessions.requestReconnect(conn, delayMs),
    });
  }

  static async start(deps: GatewayDeps): Promise<Gateway> {
    const gateway = new Gateway(deps);
    await gateway.listen();
    return gateway;
  }

  get id(): GatewayId { return this.deps.gatewayId; }
  get wsPort(): number { return this.server.wsPort; }
  get httpPort(): number { return this.server.httpPort; }
  get connectionCount(): number { return this.server.connectionCount; }
  get url(): string {
    const { publicUrl, host } = this.deps.settings;
    return publicUrl ?? `ws://${host === '0.0.0.0' ? '127.0.0.1' : host}:${this.wsPort}/ws`;
  }

  /**
   * Moves the connections to other gateways, then stops. At once: /readyz fails, new connections are
   * refused, and the registry hears this gateway is not ready (so dispatch sends no one here). Then
   * `reconnect` frames go out in DRAIN_WAVES waves with jittered delays over most of `drainMs`, so the
   * clients arrive at the other gateways spread out; what is left at the end is closed with 1012.
   */
  async drain(drainMs: number, random: () => number = Math.random): Promise<void> {
    if (!this.accepting) return;
    this.accepting = false;
    this.shedding.stop();
    this.metrics.drainStarted();
    const { clock, log } = this.deps;
    const deadline = clock.now() + drainMs;
    log.info('draining', { connections: this.server.connectionCount, drainMs });
    await this.heartbeat();
    const connections = [...this.server.connections()];
    const waveMs = (drainMs * DRAIN_SPREAD) / DRAIN_WAVES;
    for (let wave = 0; wave < DRAIN_WAVES && connections.length > 0; wave++) {
      const share = Math.ceil(connections.length / (DRAIN_WAVES - wave));
      const movers = connections.splice(0, share).filter((conn) => !conn.closed);
      for (const conn of movers) this.sessions.requestReconnect(conn, Math.floor(random() * waveMs));
      this.metrics.reconnectRequested(movers.length);
      await sleep(waveMs);
    }
    while (this.server.connectionCount > 0 && clock.now() < deadline) await sleep(DRAIN_POLL_MS);
    log.info('drained', { remaining: this.server.connectionCount });
    await this.stop();
  }

  /** Stops accepting, closes every connection with `code` (1012: reconnect elsewhere), and leaves the registry. */
  async stop(code = closeCodeOf('draining')!): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.accepting = false;
    this.slowConsumers.stop();
    this.shedding.stop();
    this.idle.stop();
    this.fanout.stop();
    this.users.stop();
    this.registry.stop();
    this.server.close(code, 'gateway stopping');
    await this.presence.stop().catch((error: unknown) => this.busFailed('goodbye', error));
  }

  private async listen(): Promise<void> {
    const { settings, bus, log, verifyToken, metricsRegistry } = this.deps;
    bus.onStatus((status) => {
      this.access.busStatus(status);
      this.busConnected = status === 'reconnected';
      this.metrics.busStatus(this.busConnected);
      log.warn(status === 'reconnected' ? 'bus reconnected' : 'bus disconnected');
    });
    this.server = await UwsServer.start({
      host: settings.host,
      wsPort: settings.wsPort,
      httpPort: settings.httpPort,
      maxReadBytes: Math.max(READ_LIMIT_FACTOR * settings.maxFrameBytes, MIN_READ_LIMIT_BYTES),
      maxBackpressureBytes: uwsBackpressureLimit(settings.maxBackpressureBytes),
      backstopIdleTimeoutS: Math.min(UWS_MAX_IDLE_TIMEOUT_S, settings.idleTimeoutS + BACKSTOP_IDLE_MARGIN_S),
      maxConnectionsPerIp: settings.maxConnectionsPerIp,
      allowedOrigins: settings.allowedOrigins,
      connections: {
        accepting: () => this.accepting,
        authenticate: (token) => {
          if (!token) throw fail.unauthorized('a token is required');
          return verifyToken(token);
        },
        opened: (conn) => this.opened(conn),
        message: (conn, state, data, isBinary) => this.sessions.message(conn, state, data, isBinary),
        closed: (conn) => this.closed(conn),
        ended: (code) => this.metrics.connectionClosedWith(code),
        rejected: (conn, error) => {
          this.metrics.errorSent(error.code);
          this.sessions.reject(conn, error);
        },
      },
      http: {
        metrics: () => metricsRegistry.render(),
        healthy: () => true,
        ready: () => this.accepting && this.busConnected,
      },
      pages: {
        lookup: (path) => this.deps.pages.lookup(path),
        built: this.deps.pages.built,
        missingText: this.deps.pages.missingText,
        csp: PAGES_CSP,
        devToken: this.deps.devToken,
      },
    }, `${this.deps.gatewayId}-`);
    if (!this.deps.pages.built) log.warn('the pages are not built; / and /console answer 404', { hint: 'npm run build' });
    this.fanout.start();
    this.users.start();
    this.slowConsumers.start();
    this.shedding.start();
    this.idle.start();
    if (settings.shedding.fraction > 0) this.registry.start();
    this.presence.start();
    // The fleet hears of this instance before any of its sessions is registered.
    await this.heartbeat();
    this.accepting = true;
    await this.heartbeat();
    log.info('gateway listening', { url: this.url, metrics: `http://${settings.host}:${this.httpPort}/metrics` });
  }

  private opened(conn: Conn): SessionState {
    const state = this.sessions.opened(conn);
    this.users.add(conn);
    this.logins.opened(conn);
    return state;
  }

  private closed(conn: Conn): void {
    this.slowConsumers.forget(conn);
    this.sessions.closed(conn);
    this.users.remove(conn);
    this.logins.closed(conn);
  }

  private async heartbeat(): Promise<void> {
    await this.presence.heartbeat().catch((error: unknown) => this.busFailed('heartbeat', error));
  }

  private busFailed(op: string, error: unknown): void {
    this.metrics.busError();
    this.deps.log.warn('bus operation failed', { op, error });
  }

  private storeFailed(op: string, error: unknown): void {
    this.metrics.storeError();
    this.deps.log.warn('store operation failed', { op, error });
  }
}
