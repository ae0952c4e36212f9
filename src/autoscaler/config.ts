/**
 * The autoscaler's settings, one row each (key, variable, default, check, help), read by the shared
 * loader (../shared/settings.ts): environment and flags (flags win), every problem reported at once,
 * deep-frozen. `roomcast autoscaler --help` lists them, and README.md's settings table is generated
 * from the rows (`npm run docs:settings`).
 */
import { ConfigError } from '../shared/errors.js';
import type { LogLevel } from '../shared/log.js';
import { anyString, boolean, integer, logLevel, number, optionalString } from '../shared/config.js';
import { deepFreeze, readSettings, settingRow, usageOf, type DeepReadonly, type Parsed, type Parser } from '../shared/settings.js';
import type { PolicySettings } from './policy.js';

export const DEFAULT_GATEWAY_DEPLOYMENT = 'roomcast-gateway';
export const DEFAULT_GATEWAY_METRICS_PORT = 9090;
export const DEFAULT_AUTOSCALER_PERIOD_MS = 5000;
export const DEFAULT_AUTOSCALER_HTTP_PORT = 9091;
export const DEFAULT_SCHEDULE_FILE = '/etc/roomcast/schedule.json';
export const DEFAULT_MIN_REPLICAS = 2;
export const DEFAULT_MAX_REPLICAS = 100;
export const DEFAULT_FALLBACK_REPLICAS = 10;
export const DEFAULT_FAILURES_BEFORE_FALLBACK = 3;
export const DEFAULT_TARGET_CONNECTIONS = 50_000;
export const DEFAULT_TARGET_DELIVERIES_PER_SEC = 1_000_000;
export const DEFAULT_TARGET_NEW_CONNECTIONS_PER_SEC = 1000;
export const DEFAULT_TARGET_CPU_UTILIZATION = 0.7;
export const DEFAULT_TARGET_LAG_P99_S = 0.05;
export const DEFAULT_TOLERANCE = 0.1;
export const DEFAULT_HOT_POD_QUANTILE = 0.9;
export const DEFAULT_SCALE_UP_MAX_PERCENT = 100;
export const DEFAULT_SCALE_UP_MAX_PODS = 4;
export const DEFAULT_SCALE_DOWN_WINDOW_MS = 5 * 60_000;
export const DEFAULT_SCALE_DOWN_MAX_PERCENT = 10;
/** A scale-down step waits this much longer than a gateway's drain. */
export const SCALE_DOWN_PERIOD_MARGIN_MS = 30_000;
export const DEFAULT_DRAIN_MS = 30_000;
export const DEFAULT_TREND_WINDOW_MS = 120_000;
export const DEFAULT_TREND_SHORT_WINDOW_MS = 20_000;
export const DEFAULT_READY_DELAY_MS = 30_000;
export const DEFAULT_SCHEDULE_LEAD_MS = 10 * 60_000;
export const DEFAULT_SCHEDULE_HOLD_MS = 15 * 60_000;
export const DEFAULT_SCRAPE_TIMEOUT_MS = 2000;
export const DEFAULT_LEASE_NAME = 'roomcast-autoscaler';
export const DEFAULT_LEASE_DURATION_MS = 15_000;

export interface AutoscalerConfig {
  /** null: the in-cluster namespace file, else `default`. */
  namespace: string | null;
  /** A kubeconfig file; null: in-cluster when KUBERNETES_SERVICE_HOST is set, else the default kubeconfig. */
  kubeconfig: string | null;
  gatewayDeployment: string;
  gatewayMetricsPort: number;
  periodMs: number;
  httpHost: string;
  httpPort: number;
  scheduleFile: string;
  dryRun: boolean;
  minReplicas: number;
  maxReplicas: number;
  fallbackReplicas: number;
  failuresBeforeFallback: number;
  targetConnections: number;
  targetDeliveriesPerSec: number;
  targetNewConnectionsPerSec: number;
  targetCpuUtilization: number;
  targetLagP99S: number;
  tolerance: number;
  hotPodQuantile: number;
  scaleUpMaxPercent: number;
  scaleUpMaxPods: number;
  scaleDownWindowMs: number;
  scaleDownMaxPercent: number;
  /** null: drainMs + 30 s. */
  scaleDownPeriodMs: number | null;
  drainMs: number;
  trendWindowMs: number;
  trendShortWindowMs: number;
  defaultReadyDelayMs: number;
  scheduleLeadMs: number;
  scheduleHoldMs: number;
  scrapeTimeoutMs: number;
  leaseName: string;
  leaseDurationMs: number;
  /** The lease holder identity; null: the host name. */
  podName: string | null;
  logLevel: LogLevel;
}

const setting = settingRow<AutoscalerConfig>();

const optionalInteger = (min: number, max: number): Parser<number | null> => (raw) => (raw === '' ? { value: null } : integer(min, max)(raw));
const DNS_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const k8sName: Parser<string> = (raw): Parsed<string> => (DNS_NAME.test(raw) && raw.length <= 253 ? { value: raw } : { problem: 'must be a Kubernetes object name (lower case, digits, - and .)' });
const optionalK8sName: Parser<string | null> = (raw) => (raw === '' ? { value: null } : k8sName(raw));
const PORT = integer(0, 65535);
const HOUR_MS = 3_600_000;

export const AUTOSCALER_SETTINGS = [
  setting('namespace', 'ROOMCAST_K8S_NAMESPACE', null, optionalK8sName, 'namespace of the gateway Deployment and the Lease', { shownDefault: 'the pod\'s namespace, else `default`' }),
  setting('kubeconfig', 'ROOMCAST_KUBECONFIG', null, optionalString, 'kubeconfig file; default: the in-cluster service account when `KUBERNETES_SERVICE_HOST` is set, else `$KUBECONFIG` or `~/.kube/config`'),
  setting('gatewayDeployment', 'ROOMCAST_GATEWAY_DEPLOYMENT', DEFAULT_GATEWAY_DEPLOYMENT, k8sName, 'the Deployment to scale'),
  setting('gatewayMetricsPort', 'ROOMCAST_GATEWAY_METRICS_PORT', DEFAULT_GATEWAY_METRICS_PORT, integer(1, 65535), 'gateway `/metrics` port; the pod annotation `roomcast.io/metrics-port` overrides it'),
  setting('periodMs', 'ROOMCAST_AUTOSCALER_PERIOD_MS', DEFAULT_AUTOSCALER_PERIOD_MS, integer(500, 600_000), 'one decision per period'),
  setting('httpHost', 'ROOMCAST_AUTOSCALER_HTTP_HOST', '0.0.0.0', anyString, 'address of `/metrics` and `/healthz`'),
  setting('httpPort', 'ROOMCAST_AUTOSCALER_HTTP_PORT', DEFAULT_AUTOSCALER_HTTP_PORT, PORT, 'port of `/metrics` and `/healthz`; 0 picks a free one'),
  setting('scheduleFile', 'ROOMCAST_SCHEDULE_FILE', DEFAULT_SCHEDULE_FILE, anyString, 'announced events (below); a missing file means none; re-read when it changes'),
  setting('dryRun', 'ROOMCAST_AUTOSCALER_DRY_RUN', false, boolean, 'decide and log, patch nothing', { switchFlag: '--dry-run' }),
  setting('minReplicas', 'ROOMCAST_MIN_REPLICAS', DEFAULT_MIN_REPLICAS, integer(1, 10_000), 'fewest gateways'),
  setting('maxReplicas', 'ROOMCAST_MAX_REPLICAS', DEFAULT_MAX_REPLICAS, integer(1, 10_000), 'most gateways'),
  setting('fallbackReplicas', 'ROOMCAST_FALLBACK_REPLICAS', DEFAULT_FALLBACK_REPLICAS, integer(1, 10_000), 'gateways kept (at least) after repeated metrics failures'),
  setting('failuresBeforeFallback', 'ROOMCAST_FAILURES_BEFORE_FALLBACK', DEFAULT_FAILURES_BEFORE_FALLBACK, integer(1, 1000), 'failed periods in a row before the fallback applies'),
  setting('targetConnections', 'ROOMCAST_TARGET_CONNECTIONS', DEFAULT_TARGET_CONNECTIONS, integer(0, 10_000_000), 'connections per gateway; also sizes the trend and schedule floors'),
  setting('targetDeliveriesPerSec', 'ROOMCAST_TARGET_DELIVERIES_PER_SEC', DEFAULT_TARGET_DELIVERIES_PER_SEC, number(0, 1e12), 'room message deliveries per second per gateway'),
  setting('targetNewConnectionsPerSec', 'ROOMCAST_TARGET_NEW_CONNECTIONS_PER_SEC', DEFAULT_TARGET_NEW_CONNECTIONS_PER_SEC, number(0, 1e9), 'new connections per second per gateway (handshakes, token checks)'),
  setting('targetCpuUtilization', 'ROOMCAST_TARGET_CPU_UTILIZATION', DEFAULT_TARGET_CPU_UTILIZATION, number(0, 10), 'CPU used ÷ CPU requested, on the hottest gateways'),
  setting('targetLagP99S', 'ROOMCAST_TARGET_LAG_P99_S', DEFAULT_TARGET_LAG_P99_S, number(0, 60), 'event-loop lag p99 in seconds, on the hottest gateways'),
  setting('tolerance', 'ROOMCAST_TOLERANCE', DEFAULT_TOLERANCE, number(0, 0.9), 'no change while a metric is within 10% of its target'),
  setting('hotPodQuantile', 'ROOMCAST_HOT_POD_QUANTILE', DEFAULT_HOT_POD_QUANTILE, number(0.01, 1), 'the quantile over gateways for CPU and lag (1: the hottest one)'),
  setting('scaleUpMaxPercent', 'ROOMCAST_SCALE_UP_MAX_PERCENT', DEFAULT_SCALE_UP_MAX_PERCENT, number(1, 10_000), 'one decision adds at most this % of the replicas …'),
  setting('scaleUpMaxPods', 'ROOMCAST_SCALE_UP_MAX_PODS', DEFAULT_SCALE_UP_MAX_PODS, integer(1, 10_000), '… or this many pods, whichever is more'),
  setting('scaleDownWindowMs', 'ROOMCAST_SCALE_DOWN_WINDOW_MS', DEFAULT_SCALE_DOWN_WINDOW_MS, integer(0, 24 * HOUR_MS), 'scale down only to the highest recommendation of this window'),
  setting('scaleDownMaxPercent', 'ROOMCAST_SCALE_DOWN_MAX_PERCENT', DEFAULT_SCALE_DOWN_MAX_PERCENT, number(0, 100), 'one step removes at most this % of the replicas, or one pod, whichever is more'),
  setting('scaleDownPeriodMs', 'ROOMCAST_SCALE_DOWN_PERIOD_MS', null, optionalInteger(0, 24 * HOUR_MS), 'least time between two scale-down steps; must exceed the drain', { shownDefault: 'drain + 30 s' }),
  setting('drainMs', 'ROOMCAST_DRAIN_MS', DEFAULT_DRAIN_MS, integer(0, HOUR_MS), 'the gateways\' drain time (set the same value as on the gateways)'),
  setting('trendWindowMs', 'ROOMCAST_TREND_WINDOW_MS', DEFAULT_TREND_WINDOW_MS, integer(0, HOUR_MS), 'long least-squares window of total connections'),
  setting('trendShortWindowMs', 'ROOMCAST_TREND_SHORT_WINDOW_MS', DEFAULT_TREND_SHORT_WINDOW_MS, integer(0, HOUR_MS), 'short least-squares window (sees a flash crowd within a few periods); both 0 turn the trend floor off'),
  setting('defaultReadyDelayMs', 'ROOMCAST_DEFAULT_READY_DELAY_MS', DEFAULT_READY_DELAY_MS, integer(0, HOUR_MS), 'time a new gateway needs to become ready, until measured'),
  setting('scheduleLeadMs', 'ROOMCAST_SCHEDULE_LEAD_MS', DEFAULT_SCHEDULE_LEAD_MS, integer(0, 24 * HOUR_MS), 'pre-scale this long before a scheduled event starts'),
  setting('scheduleHoldMs', 'ROOMCAST_SCHEDULE_HOLD_MS', DEFAULT_SCHEDULE_HOLD_MS, integer(0, 24 * HOUR_MS), 'hold the capacity this long after it ends'),
  setting('scrapeTimeoutMs', 'ROOMCAST_SCRAPE_TIMEOUT_MS', DEFAULT_SCRAPE_TIMEOUT_MS, integer(50, 60_000), 'timeout of one gateway scrape (shorter than the period)'),
  setting('leaseName', 'ROOMCAST_LEASE_NAME', DEFAULT_LEASE_NAME, k8sName, 'the coordination.k8s.io Lease'),
  setting('leaseDurationMs', 'ROOMCAST_LEASE_DURATION_MS', DEFAULT_LEASE_DURATION_MS, integer(1000, HOUR_MS), 'a holder silent this long loses the Lease; renewed every third of it'),
  setting('podName', 'ROOMCAST_POD_NAME', null, optionalString, 'this instance\'s identity in the Lease (downward API `metadata.name`)', { shownDefault: 'the host name' }),
  setting('logLevel', 'ROOMCAST_LOG_LEVEL', 'info', logLevel, 'debug, info, warn, error or silent'),
] as const;

export interface LoadedAutoscalerConfig {
  config: DeepReadonly<AutoscalerConfig>;
  /** ROOMCAST_* variables that are not autoscaler settings (shared environments carry gateway ones). */
  ignoredVariables: string[];
}

/** Loads the autoscaler's settings. Throws ConfigError listing every problem. */
export function loadAutoscalerConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []): LoadedAutoscalerConfig {
  const { values, problems, unknownVariables } = readSettings<AutoscalerConfig>(AUTOSCALER_SETTINGS, env, argv);
  problems.push(...crossChecks(values));
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: deepFreeze(values), ignoredVariables: unknownVariables };
}

function crossChecks(config: AutoscalerConfig): string[] {
  const problems: string[] = [];
  if (config.minReplicas > config.maxReplicas) problems.push('ROOMCAST_MIN_REPLICAS must not exceed ROOMCAST_MAX_REPLICAS');
  if (config.fallbackReplicas < config.minReplicas || config.fallbackReplicas > config.maxReplicas) problems.push('ROOMCAST_FALLBACK_REPLICAS must be within ROOMCAST_MIN_REPLICAS … ROOMCAST_MAX_REPLICAS');
  if (config.scaleDownPeriodMs !== null && config.scaleDownPeriodMs <= config.drainMs) problems.push('ROOMCAST_SCALE_DOWN_PERIOD_MS must exceed ROOMCAST_DRAIN_MS, so one step\'s gateways have drained before the next');
  if (config.scrapeTimeoutMs >= config.periodMs) problems.push('ROOMCAST_SCRAPE_TIMEOUT_MS must be shorter than ROOMCAST_AUTOSCALER_PERIOD_MS');
  return problems;
}

/** The decision function's settings from the configuration. */
export function policySettings(config: AutoscalerConfig): PolicySettings {
  return Object.freeze({
    minReplicas: config.minReplicas,
    maxReplicas: config.maxReplicas,
    fallbackReplicas: config.fallbackReplicas,
    failuresBeforeFallback: config.failuresBeforeFallback,
    periodMs: config.periodMs,
    targets: Object.freeze({
      connections: config.targetConnections,
      deliveries: config.targetDeliveriesPerSec,
      new_connections: config.targetNewConnectionsPerSec,
      cpu: config.targetCpuUtilization,
      lag: config.targetLagP99S,
    }),
    tolerance: config.tolerance,
    hotPodQuantile: config.hotPodQuantile,
    scaleUpMaxPercent: config.scaleUpMaxPercent,
    scaleUpMaxPods: config.scaleUpMaxPods,
    scaleDownWindowMs: config.scaleDownWindowMs,
    scaleDownMaxPercent: config.scaleDownMaxPercent,
    scaleDownPeriodMs: config.scaleDownPeriodMs ?? config.drainMs + SCALE_DOWN_PERIOD_MARGIN_MS,
    trendWindowMs: config.trendWindowMs,
    trendShortWindowMs: config.trendShortWindowMs,
    defaultReadyDelayMs: config.defaultReadyDelayMs,
    scheduleLeadMs: config.scheduleLeadMs,
    scheduleHoldMs: config.scheduleHoldMs,
  });
}

/** The settings table for --help. */
export function autoscalerUsage(): string {
  return usageOf(AUTOSCALER_SETTINGS, { env: 40, flag: 34 });
}
