/**
 * The autoscaler's settings, in the project's style: one row per setting (variable, flag, default,
 * check), loaded once from the environment and flags (flags win), every problem reported at once,
 * frozen. `roomcast autoscaler --help` and README.md list them.
 */
import { ConfigError } from '../shared/errors.js';
import type { LogLevel } from '../shared/log.js';
import { anyString, boolean, integer, logLevel, number, optionalString, parseFlags, type Parsed, type Parser } from '../shared/config.js';
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

interface Setting<K extends keyof AutoscalerConfig> {
  key: K;
  env: string;
  flag: string;
  default: AutoscalerConfig[K];
  parse: Parser<AutoscalerConfig[K]>;
  help: string;
}

function setting<K extends keyof AutoscalerConfig>(key: K, env: string, def: AutoscalerConfig[K], parse: Parser<AutoscalerConfig[K]>, help: string): Setting<K> {
  const flag = `--${env.replace(/^ROOMCAST_/, '').toLowerCase().replaceAll('_', '-')}`;
  return { key, env, flag, default: def, parse, help };
}

const optionalInteger = (min: number, max: number): Parser<number | null> => (raw) => (raw === '' ? { value: null } : integer(min, max)(raw));
const DNS_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const k8sName: Parser<string> = (raw): Parsed<string> => (DNS_NAME.test(raw) && raw.length <= 253 ? { value: raw } : { problem: 'must be a Kubernetes object name (lower case, digits, - and .)' });
const optionalK8sName: Parser<string | null> = (raw) => (raw === '' ? { value: null } : k8sName(raw));
const PORT = integer(0, 65535);
const HOUR_MS = 3_600_000;

export const AUTOSCALER_SETTINGS = [
  setting('namespace', 'ROOMCAST_K8S_NAMESPACE', null, optionalK8sName, 'namespace of the gateway Deployment and the Lease; default: the pod\'s own namespace, else default'),
  setting('kubeconfig', 'ROOMCAST_KUBECONFIG', null, optionalString, 'kubeconfig file; default: in-cluster service account, else $KUBECONFIG or ~/.kube/config'),
  setting('gatewayDeployment', 'ROOMCAST_GATEWAY_DEPLOYMENT', DEFAULT_GATEWAY_DEPLOYMENT, k8sName, 'the gateway Deployment to scale'),
  setting('gatewayMetricsPort', 'ROOMCAST_GATEWAY_METRICS_PORT', DEFAULT_GATEWAY_METRICS_PORT, integer(1, 65535), 'gateway /metrics port (a pod annotation roomcast.io/metrics-port overrides it)'),
  setting('periodMs', 'ROOMCAST_AUTOSCALER_PERIOD_MS', DEFAULT_AUTOSCALER_PERIOD_MS, integer(500, 600_000), 'one decision per period'),
  setting('httpHost', 'ROOMCAST_AUTOSCALER_HTTP_HOST', '0.0.0.0', anyString, 'address of the autoscaler\'s /metrics and /healthz'),
  setting('httpPort', 'ROOMCAST_AUTOSCALER_HTTP_PORT', DEFAULT_AUTOSCALER_HTTP_PORT, PORT, 'port of the autoscaler\'s /metrics and /healthz; 0 picks a free one'),
  setting('scheduleFile', 'ROOMCAST_SCHEDULE_FILE', DEFAULT_SCHEDULE_FILE, anyString, 'schedule of announced events (JSON); a missing file means no events; re-read when it changes'),
  setting('dryRun', 'ROOMCAST_AUTOSCALER_DRY_RUN', false, boolean, 'decide and log, but patch nothing'),
  setting('minReplicas', 'ROOMCAST_MIN_REPLICAS', DEFAULT_MIN_REPLICAS, integer(1, 10_000), 'fewest gateways'),
  setting('maxReplicas', 'ROOMCAST_MAX_REPLICAS', DEFAULT_MAX_REPLICAS, integer(1, 10_000), 'most gateways'),
  setting('fallbackReplicas', 'ROOMCAST_FALLBACK_REPLICAS', DEFAULT_FALLBACK_REPLICAS, integer(1, 10_000), 'gateways to keep (at least) after repeated metrics failures'),
  setting('failuresBeforeFallback', 'ROOMCAST_FAILURES_BEFORE_FALLBACK', DEFAULT_FAILURES_BEFORE_FALLBACK, integer(1, 1000), 'consecutive failed periods before the fallback applies'),
  setting('targetConnections', 'ROOMCAST_TARGET_CONNECTIONS', DEFAULT_TARGET_CONNECTIONS, integer(0, 10_000_000), 'connections per gateway; also sizes the trend and schedule floors; 0 turns it off'),
  setting('targetDeliveriesPerSec', 'ROOMCAST_TARGET_DELIVERIES_PER_SEC', DEFAULT_TARGET_DELIVERIES_PER_SEC, number(0, 1e12), 'room message deliveries per second per gateway; 0 turns it off'),
  setting('targetNewConnectionsPerSec', 'ROOMCAST_TARGET_NEW_CONNECTIONS_PER_SEC', DEFAULT_TARGET_NEW_CONNECTIONS_PER_SEC, number(0, 1e9), 'new connections per second per gateway; 0 turns it off'),
  setting('targetCpuUtilization', 'ROOMCAST_TARGET_CPU_UTILIZATION', DEFAULT_TARGET_CPU_UTILIZATION, number(0, 10), 'CPU used ÷ CPU requested on the hottest gateways; 0 turns it off'),
  setting('targetLagP99S', 'ROOMCAST_TARGET_LAG_P99_S', DEFAULT_TARGET_LAG_P99_S, number(0, 60), 'event-loop lag p99 (seconds) on the hottest gateways; 0 turns it off'),
  setting('tolerance', 'ROOMCAST_TOLERANCE', DEFAULT_TOLERANCE, number(0, 0.9), 'no change while a metric is within this fraction of its target'),
  setting('hotPodQuantile', 'ROOMCAST_HOT_POD_QUANTILE', DEFAULT_HOT_POD_QUANTILE, number(0.01, 1), 'quantile over gateways for CPU and lag (1: the hottest)'),
  setting('scaleUpMaxPercent', 'ROOMCAST_SCALE_UP_MAX_PERCENT', DEFAULT_SCALE_UP_MAX_PERCENT, number(1, 10_000), 'a decision adds at most this % of the replicas ...'),
  setting('scaleUpMaxPods', 'ROOMCAST_SCALE_UP_MAX_PODS', DEFAULT_SCALE_UP_MAX_PODS, integer(1, 10_000), '... or this many pods, whichever is more'),
  setting('scaleDownWindowMs', 'ROOMCAST_SCALE_DOWN_WINDOW_MS', DEFAULT_SCALE_DOWN_WINDOW_MS, integer(0, 24 * HOUR_MS), 'scale down only to the highest recommendation of this window'),
  setting('scaleDownMaxPercent', 'ROOMCAST_SCALE_DOWN_MAX_PERCENT', DEFAULT_SCALE_DOWN_MAX_PERCENT, number(0, 100), 'a step removes at most this % of the replicas, or one pod, whichever is more'),
  setting('scaleDownPeriodMs', 'ROOMCAST_SCALE_DOWN_PERIOD_MS', null, optionalInteger(0, 24 * HOUR_MS), 'least time between scale-down steps; default drain + 30 s; must exceed the drain'),
  setting('drainMs', 'ROOMCAST_DRAIN_MS', DEFAULT_DRAIN_MS, integer(0, HOUR_MS), 'how long a gateway drains on SIGTERM (as set on the gateways)'),
  setting('trendWindowMs', 'ROOMCAST_TREND_WINDOW_MS', DEFAULT_TREND_WINDOW_MS, integer(0, HOUR_MS), 'long least-squares window of total connections; 0 with the short one off turns the trend floor off'),
  setting('trendShortWindowMs', 'ROOMCAST_TREND_SHORT_WINDOW_MS', DEFAULT_TREND_SHORT_WINDOW_MS, integer(0, HOUR_MS), 'short least-squares window, so a flash crowd shows within a few periods; 0 turns it off'),
  setting('defaultReadyDelayMs', 'ROOMCAST_DEFAULT_READY_DELAY_MS', DEFAULT_READY_DELAY_MS, integer(0, HOUR_MS), 'time a new gateway needs to become ready, until measured from pods'),
  setting('scheduleLeadMs', 'ROOMCAST_SCHEDULE_LEAD_MS', DEFAULT_SCHEDULE_LEAD_MS, integer(0, 24 * HOUR_MS), 'pre-scale this long before a scheduled event starts'),
  setting('scheduleHoldMs', 'ROOMCAST_SCHEDULE_HOLD_MS', DEFAULT_SCHEDULE_HOLD_MS, integer(0, 24 * HOUR_MS), 'hold the capacity this long after it ends'),
  setting('scrapeTimeoutMs', 'ROOMCAST_SCRAPE_TIMEOUT_MS', DEFAULT_SCRAPE_TIMEOUT_MS, integer(50, 60_000), 'timeout of one gateway /metrics scrape'),
  setting('leaseName', 'ROOMCAST_LEASE_NAME', DEFAULT_LEASE_NAME, k8sName, 'the coordination.k8s.io Lease that elects the one active autoscaler'),
  setting('leaseDurationMs', 'ROOMCAST_LEASE_DURATION_MS', DEFAULT_LEASE_DURATION_MS, integer(1000, HOUR_MS), 'a holder that has not renewed for this long loses the Lease; renewed every third of it'),
  setting('podName', 'ROOMCAST_POD_NAME', null, optionalString, 'this instance\'s identity in the Lease (downward API); default: the host name'),
  setting('logLevel', 'ROOMCAST_LOG_LEVEL', 'info', logLevel, 'debug, info, warn, error or silent'),
] as const;

export interface LoadedAutoscalerConfig {
  config: Readonly<AutoscalerConfig>;
  /** ROOMCAST_* variables that are not autoscaler settings (shared environments carry gateway ones). */
  ignoredVariables: string[];
}

/** Loads the autoscaler's settings. Throws ConfigError listing every problem. */
export function loadAutoscalerConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []): LoadedAutoscalerConfig {
  const { flags, problems } = parseFlags(argv.filter((arg) => arg !== '--dry-run'));
  if (argv.includes('--dry-run')) flags.set('--autoscaler-dry-run', 'true');
  const known = new Set<string>(AUTOSCALER_SETTINGS.map((s) => s.flag));
  for (const flag of flags.keys()) if (!known.has(flag)) problems.push(`unknown flag ${flag}`);

  const config = {} as Record<keyof AutoscalerConfig, unknown>;
  for (const s of AUTOSCALER_SETTINGS) {
    const raw = flags.get(s.flag) ?? env[s.env];
    if (raw === undefined) { config[s.key] = s.default; continue; }
    const parsed = (s.parse as Parser<unknown>)(raw.trim());
    if ('problem' in parsed) problems.push(`${s.env} (${s.flag}) ${parsed.problem}; got '${raw.slice(0, 60)}'`);
    else config[s.key] = parsed.value;
  }
  const result = config as unknown as AutoscalerConfig;
  if (result.minReplicas > result.maxReplicas) problems.push('ROOMCAST_MIN_REPLICAS must not exceed ROOMCAST_MAX_REPLICAS');
  if (result.fallbackReplicas < result.minReplicas || result.fallbackReplicas > result.maxReplicas) problems.push('ROOMCAST_FALLBACK_REPLICAS must be within ROOMCAST_MIN_REPLICAS … ROOMCAST_MAX_REPLICAS');
  if (result.scaleDownPeriodMs !== null && result.scaleDownPeriodMs <= result.drainMs) problems.push('ROOMCAST_SCALE_DOWN_PERIOD_MS must exceed ROOMCAST_DRAIN_MS, so one step\'s gateways have drained before the next');
  if (result.scrapeTimeoutMs >= result.periodMs) problems.push('ROOMCAST_SCRAPE_TIMEOUT_MS must be shorter than ROOMCAST_AUTOSCALER_PERIOD_MS');
  if (problems.length > 0) throw new ConfigError(problems);
  const ignoredVariables = Object.keys(env).filter((name) => name.startsWith('ROOMCAST_') && !AUTOSCALER_SETTINGS.some((s) => s.env === name));
  return { config: Object.freeze(result), ignoredVariables };
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
  return AUTOSCALER_SETTINGS.map((s) => `  ${s.env.padEnd(40)} ${s.flag.padEnd(34)} ${JSON.stringify(s.default)}\n      ${s.help}`).join('\n');
}
