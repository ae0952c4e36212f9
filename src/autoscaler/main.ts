/**
 * Composition root of the autoscaler (`roomcast autoscaler`): configuration, the Kubernetes
 * connection, the Lease, the metrics source, the schedule file, the decision loop and the HTTP
 * server with /metrics and /healthz.
 */
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { systemClock, type Clock } from '../shared/clock.js';
import { createLogger, type Logger } from '../shared/log.js';
import { AutoscalerMetrics, MetricsRegistry } from '../shared/metrics.js';
import { Autoscaler } from './autoscaler.js';
import { loadAutoscalerConfig, policySettings, type AutoscalerConfig } from './config.js';
import { K8sLeaseStore, K8sScaleTarget, connectKube } from './k8s-client.js';
import { LeaderElector } from './lease.js';
import { GatewayMetricsSource } from './metrics-source.js';
import { ScheduleFile } from './schedule-file.js';

export interface StartOptions {
  log: Logger;
  clock?: Clock;
  /** Environment for the in-cluster detection (KUBERNETES_SERVICE_HOST/PORT). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Prefix of the service account files (tests). */
  inClusterPathPrefix?: string;
  /** false: no timers; the caller drives leaseRound() and runOnce() (tests). */
  loops?: boolean;
}

export interface RunningAutoscaler {
  autoscaler: Autoscaler;
  elector: LeaderElector;
  namespace: string;
  httpPort: number;
  metricsRegistry: MetricsRegistry;
  leaseRound(): Promise<boolean>;
  stop(): Promise<void>;
}

export async function startAutoscaler(config: Readonly<AutoscalerConfig>, options: StartOptions): Promise<RunningAutoscaler> {
  const { log } = options;
  const clock = options.clock ?? systemClock;
  const connection = connectKube({ kubeconfig: config.kubeconfig, env: options.env ?? process.env, ...(options.inClusterPathPrefix ? { inClusterPathPrefix: options.inClusterPathPrefix } : {}) });
  const namespace = config.namespace ?? connection.contextNamespace ?? 'default';
  const identity = config.podName ?? hostname();
  const metricsRegistry = new MetricsRegistry();
  const metrics = new AutoscalerMetrics(metricsRegistry);
  const target = new K8sScaleTarget(connection, namespace, config.gatewayDeployment);
  const elector = new LeaderElector({
    store: new K8sLeaseStore(connection, namespace, config.leaseName),
    identity, leaseDurationMs: config.leaseDurationMs, clock, log: log.child({ component: 'lease' }), onError: () => metrics.failure('lease'),
  });
  const schedule = new ScheduleFile(config.scheduleFile, log, () => metrics.failure('schedule'));
  const autoscaler = new Autoscaler({
    target,
    metricsSource: new GatewayMetricsSource({
      defaultPort: config.gatewayMetricsPort, timeoutMs: config.scrapeTimeoutMs, clock, log, onScrapeFailure: () => metrics.failure('scrape'),
    }),
    leader: elector,
    schedule: () => schedule.current(),
    settings: policySettings(config),
    dryRun: config.dryRun,
    clock,
    log,
    metrics,
  });
  const leaseRound = async () => {
    const held = await elector.tryAcquireOrRenew();
    metrics.leading(held);
    return held;
  };

  const server = await listen(config, metricsRegistry, () => healthOf(autoscaler, clock, config));
  const httpPort = (server.address() as { port: number }).port;
  // The port actually bound (a setting of 0 picks a free one), under the name every roomcast command uses.
  log.info('listening', { httpPort });
  log.info('autoscaler started', {
    server: connection.server, namespace, deployment: config.gatewayDeployment, identity, lease: config.leaseName,
    periodMs: config.periodMs, dryRun: config.dryRun,
  });

  const timers: NodeJS.Timeout[] = [];
  let stopped = false;
  if (options.loops !== false) {
    const every = (ms: number, work: () => Promise<unknown>) => {
      // A chain of timeouts, so a slow round never overlaps the next.
      const tick = () => {
        if (stopped) return;
        void work().catch((error: unknown) => log.error('autoscaler round failed', { error })).finally(() => {
          if (!stopped) timers.push(setTimeout(tick, ms));
        });
      };
      tick();
    };
    await leaseRound();
    every(Math.max(500, Math.floor(config.leaseDurationMs / 3)), leaseRound);
    every(config.periodMs, () => autoscaler.runOnce());
  }

  return {
    autoscaler, elector, namespace, httpPort, metricsRegistry, leaseRound,
    stop: async () => {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      await elector.release().catch((error: unknown) => log.warn('releasing the lease failed', { error }));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function healthOf(autoscaler: Autoscaler, clock: Clock, config: AutoscalerConfig): { ok: boolean; body: Record<string, unknown> } {
  const last = autoscaler.lastCompletedMs;
  const ageMs = last === null ? null : clock.now() - last;
  // Healthy while periods keep completing; a stuck loop (hung API call) fails the liveness probe.
  const ok = ageMs === null || ageMs < Math.max(3 * config.periodMs, 30_000);
  return { ok, body: { status: ok ? 'ok' : 'stalled', lastPeriodAgoMs: ageMs } };
}

function listen(config: AutoscalerConfig, registry: MetricsRegistry, health: () => { ok: boolean; body: Record<string, unknown> }): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') { res.writeHead(405, { Allow: 'GET' }).end(); return; }
    if (path === '/metrics') {
      registry.render().then(
        ({ contentType, body }) => res.writeHead(200, { 'Content-Type': contentType }).end(body),
        (error: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(error)),
      );
      return;
    }
    if (path === '/healthz') {
      const { ok, body } = health();
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.httpPort, config.httpHost, () => resolve(server));
  });
}

/** `roomcast autoscaler [flags]`: runs until SIGTERM / SIGINT, then gives the Lease up. */
export async function runAutoscaler(argv: readonly string[]): Promise<void> {
  const { config, ignoredVariables } = loadAutoscalerConfig(process.env, argv);
  const log = createLogger({ level: config.logLevel, bound: { service: 'roomcast-autoscaler' } });
  if (ignoredVariables.length > 0) log.warn('ignoring variables that are not autoscaler settings', { variables: ignoredVariables });
  const running = await startAutoscaler(config, { log });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    void running.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
