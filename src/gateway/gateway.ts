/**
 * The gateway process: WebSocket connections (UwsServer), their sessions, the room fan-out, the
 * online registry and the viewer counts, wired together over injected bus and stores.
 */
import type { TokenVerifier } from '../shared/auth.js';
import type { Bus } from '../shared/bus/bus.js';
import type { Clock } from '../shared/clock.js';
import { closeCodeOf, UnauthorizedError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { GatewayMetrics, type MetricsRegistry } from '../shared/metrics.js';
import type { GatewayId } from '../shared/protocol/bus-messages.js';
import type { RoomStore } from '../shared/store/room-store.js';
import type { SessionStore } from '../shared/store/session-store.js';
import { RoomClient } from './room-client.js';
import { RoomFanout, type FanoutSettings } from './room-fanout.js';
import { Sessions, type SessionSettings } from './session.js';
import { UwsServer, type Conn } from './uws-server.js';

export interface GatewaySettings {
  host: string;
  wsPort: number;
  httpPort: number;
  /** The URL clients use to reach this gateway; derived from host and port when null. */
  publicUrl: string | null;
  maxFrameBytes: number;
  maxBackpressureBytes: number;
  idleTimeoutS: number;
  requestTimeoutMs: number;
  viewerIntervalMs: number;
  fanout: FanoutSettings;
  session: SessionSettings;
}

export interface GatewayDeps {
  gatewayId: GatewayId;
  bus: Bus;
  roomStore: RoomStore;
  sessionStore: SessionStore;
  verifyToken: TokenVerifier;
  clock: Clock;
  log: Logger;
  metricsRegistry: MetricsRegistry;
  settings: GatewaySettings;
}

/** How often the gateway tells the registry it is alive; the registry forgets it after three misses. */
export const REGISTRY_HEARTBEAT_MS = 5000;
const REGISTRY_TTL_MS = 3 * REGISTRY_HEARTBEAT_MS;

export class Gateway {
  private server!: UwsServer;
  private readonly metrics: GatewayMetrics;
  private readonly fanout: RoomFanout;
  private readonly sessions: Sessions;
  private readonly timers: NodeJS.Timeout[] = [];
  private busConnected = true;
  private accepting = true;
  private reportingViewers = false;

  private constructor(private readonly deps: GatewayDeps) {
    const { bus, clock, log, settings } = deps;
    this.metrics = new GatewayMetrics(deps.metricsRegistry);
    const roomClient = new RoomClient(bus, settings.requestTimeoutMs);
    this.fanout = new RoomFanout({
      bus, roomClient, clock, log, metrics: this.metrics, settings: settings.fanout,
      publisher: { publish: (topic, data) => this.server.publish(topic, data) },
    });
    this.sessions = new Sessions({ fanout: this.fanout, roomClient, clock, log, metrics: this.metrics, settings: settings.session });
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

  /** Stops accepting, closes every connection with `code` (1012: reconnect elsewhere), and leaves the registry. */
  async stop(code = closeCodeOf('draining')!): Promise<void> {
    this.accepting = false;
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    this.fanout.stop();
    this.server.close(code, 'gateway stopping');
    await this.deps.sessionStore.removeGateway(this.id).catch((error: unknown) => this.storeFailed('removeGateway', error));
  }

  private async listen(): Promise<void> {
    const { settings, bus, log, verifyToken, metricsRegistry } = this.deps;
    bus.onStatus((status) => {
      this.busConnected = status === 'reconnected';
      log.warn(status === 'reconnected' ? 'bus reconnected' : 'bus disconnected');
    });
    this.server = await UwsServer.start({
      host: settings.host,
      wsPort: settings.wsPort,
      httpPort: settings.httpPort,
      maxPayloadBytes: settings.maxFrameBytes,
      maxBackpressureBytes: settings.maxBackpressureBytes,
      idleTimeoutS: settings.idleTimeoutS,
      connections: {
        accepting: () => this.accepting,
        authenticate: (token) => (token ? verifyToken(token) : Promise.reject(new UnauthorizedError('a token is required'))),
        opened: (conn) => this.opened(conn),
        message: (conn, data, isBinary) => this.sessions.message(conn, data, isBinary),
        closed: (conn) => this.closed(conn),
        drained: () => undefined,
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
    }, `${this.deps.gatewayId}-`);
    this.fanout.start();
    this.timers.push(
      setInterval(() => void this.reportViewers(), settings.viewerIntervalMs),
      setInterval(() => void this.heartbeat(), REGISTRY_HEARTBEAT_MS),
    );
    await this.heartbeat();
    log.info('gateway listening', { url: this.url, metrics: `http://${settings.host}:${this.httpPort}/metrics` });
  }

  private opened(conn: Conn): void {
    this.sessions.opened(conn);
    const { uid, device } = conn.identity;
    this.deps.sessionStore
      .register({ uid, device, gatewayId: this.id, connId: conn.id, connectedAtMs: this.deps.clock.now() })
      .catch((error: unknown) => this.storeFailed('register', error));
  }

  private closed(conn: Conn): void {
    this.sessions.closed(conn);
    this.deps.sessionStore.unregister(conn.identity.uid, this.id, conn.id).catch((error: unknown) => this.storeFailed('unregister', error));
  }

  private async heartbeat(): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.sessionStore.heartbeatGateway({
      gatewayId: this.id, url: this.url, connections: this.server.connectionCount,
      ready: this.accepting && this.busConnected, expiresAtMs: now + REGISTRY_TTL_MS,
    }).catch((error: unknown) => this.storeFailed('heartbeat', error));
  }

  /** One store round trip per interval for all local rooms; never one per connection. */
  private async reportViewers(): Promise<void> {
    if (this.reportingViewers) return;
    const counts = this.fanout.localCounts();
    if (counts.length === 0) return;
    this.reportingViewers = true;
    try {
      const { roomStore, clock, settings } = this.deps;
      const reports = await roomStore.reportViewers(this.id, counts, 3 * settings.viewerIntervalMs, clock.now());
      counts.forEach(([room], i) => {
        const report = reports[i];
        if (report) this.fanout.applyViewerReport(room, report.total, report.lastSeq);
      });
    } catch (error) {
      this.storeFailed('reportViewers', error);
    } finally {
      this.reportingViewers = false;
    }
  }

  private storeFailed(op: string, error: unknown): void {
    this.metrics.storeError();
    this.deps.log.warn('store operation failed', { op, error });
  }
}
