/**
 * The scaling decision, as a pure function of the previous state, this period's inputs and the time:
 * no I/O, so it can be replayed over traces with a fake clock (tests, the simulation).
 *
 * Per metric the HPA's calculation (hpa.ts) gives a replica count; the highest wins. On the way up
 * two floors add headroom: the trend of total connections projected over the time a new gateway
 * needs to become ready, and the schedule of announced events. Up is fast (no stabilization, at most
 * +100% or +N pods per decision); down is slow (the highest recommendation over a window, at most
 * one pod or 10% per step, steps further apart than a gateway's drain) and never during a rollout,
 * a scheduled event or a metrics failure.
 */
import { hpaReplicas, type Aggregate } from './hpa.js';
import { activeEvents, type ScheduledEvent } from './schedule.js';
import { projectRise, type TimedValue } from './trend.js';

export const METRIC_NAMES = ['connections', 'deliveries', 'new_connections', 'cpu', 'lag'] as const;
export type MetricName = typeof METRIC_NAMES[number];

/** One gateway pod's figures this period; rates are null until a pod has two scrapes. */
export interface PodMetrics {
  connections: number;
  deliveriesPerSec: number | null;
  newConnectionsPerSec: number | null;
  /** CPU used ÷ CPU requested (null without a request). */
  cpuUtilization: number | null;
  lagP99S: number | null;
}

export interface PodInput {
  name: string;
  ready: boolean;
  /**
   * Being deleted and draining: not part of the fleet, but its connections are still viewers who
   * will reconnect elsewhere, so they stay in the total the trend follows.
   */
  draining?: boolean;
  /** null: this pod's scrape failed. */
  metrics: PodMetrics | null;
}

export interface DecisionInputs {
  /** spec.replicas of the scale subresource. */
  currentReplicas: number;
  /** The Deployment's pods (not being deleted), or null when they could not be listed. */
  pods: readonly PodInput[] | null;
  rolloutInProgress: boolean;
  /** Measured time from pod creation to Ready; null until measured. */
  readyDelayMs: number | null;
  events: readonly ScheduledEvent[];
}

export interface PolicySettings {
  minReplicas: number;
  maxReplicas: number;
  fallbackReplicas: number;
  /** Consecutive failed periods before fallbackReplicas applies. */
  failuresBeforeFallback: number;
  periodMs: number;
  /** Per-pod targets; 0 turns a metric off. */
  targets: Readonly<Record<MetricName, number>>;
  tolerance: number;
  /** Quantile over pods for the "hottest pods" metrics (cpu, lag). */
  hotPodQuantile: number;
  scaleUpMaxPercent: number;
  scaleUpMaxPods: number;
  scaleDownWindowMs: number;
  scaleDownMaxPercent: number;
  /** Least time between two scale-down steps (longer than a gateway's drain). */
  scaleDownPeriodMs: number;
  trendWindowMs: number;
  trendShortWindowMs: number;
  defaultReadyDelayMs: number;
  scheduleLeadMs: number;
  scheduleHoldMs: number;
}

export interface PolicyState {
  /** Total connections per successful period, for the trend (the last trendWindowMs). */
  readonly connections: readonly TimedValue[];
  /** Recommendations (metrics and floors) of the last scaleDownWindowMs. */
  readonly recommendations: readonly TimedValue[];
  readonly consecutiveFailures: number;
  readonly lastScaleDownMs: number | null;
}

export const INITIAL_POLICY_STATE: PolicyState = Object.freeze({ connections: [], recommendations: [], consecutiveFailures: 0, lastScaleDownMs: null });

export interface MetricDecision {
  /** The aggregate usage (mean or hot-pod quantile) the answer came from. */
  usage: number | null;
  replicas: number | null;
}

export interface Decision {
  currentReplicas: number;
  replicas: number;
  action: 'up' | 'down' | 'hold';
  metricsOk: boolean;
  consecutiveFailures: number;
  perMetric: Record<MetricName, MetricDecision>;
  totalConnections: number | null;
  projectedConnections: number | null;
  floors: { trend: number | null; schedule: number | null };
  /** The recommendation the scale-down used (the window's highest), when one was considered. */
  stabilized: number | null;
  readyDelayMs: number;
  events: string[];
  /** Short stable codes saying why, in order (see README). */
  reasons: string[];
  /** The answer of the metrics and floors before the rate limits, stabilization and clamps. */
  wanted: number;
  /** More replicas were wanted than maxReplicas allows: the fleet is held at the cap. */
  cappedAtMax: boolean;
}

/** Load that new pods take a share of is averaged; CPU and lag look at the hottest pods. */
const HOT_POD_METRICS: ReadonlySet<MetricName> = new Set(['cpu', 'lag']);

function podValue(metric: MetricName, m: PodMetrics): number | null {
  switch (metric) {
    case 'connections': return m.connections;
    case 'deliveries': return m.deliveriesPerSec;
    case 'new_connections': return m.newConnectionsPerSec;
    case 'cpu': return m.cpuUtilization;
    case 'lag': return m.lagP99S;
  }
}

/** Decides the replica count for this period. Returns the decision and the state for the next one. */
export function decide(state: PolicyState, inputs: DecisionInputs, nowMs: number, settings: PolicySettings): { decision: Decision; state: PolicyState } {
  const current = inputs.currentReplicas;
  const reasons: string[] = [];
  const pods = inputs.pods?.filter((p) => !p.draining) ?? null;
  const withMetrics = pods?.filter((p) => p.metrics !== null) ?? [];
  // A failure: the pods could not be listed, or ready pods exist and none could be scraped. Pods
  // that are all still starting are no failure (nothing to measure yet, and no fallback for it).
  const metricsOk = pods !== null && (withMetrics.length > 0 || !pods.some((p) => p.ready));
  const readyDelayMs = inputs.readyDelayMs ?? settings.defaultReadyDelayMs;

  const perMetric = Object.fromEntries(METRIC_NAMES.map((name) => [name, { usage: null, replicas: null }])) as Record<MetricName, MetricDecision>;
  let connections = state.connections;
  let recommendations = state.recommendations;
  let consecutiveFailures = state.consecutiveFailures;
  let totalConnections: number | null = null;
  let raw = current;

  if (metricsOk) {
    consecutiveFailures = 0;
    let best: { name: MetricName; replicas: number } | null = null;
    for (const name of METRIC_NAMES) {
      const target = settings.targets[name];
      if (!(target > 0)) continue;
      const how: Aggregate = HOT_POD_METRICS.has(name) ? { kind: 'percentile', quantile: settings.hotPodQuantile } : { kind: 'mean' };
      const result = hpaReplicas(pods.map((p) => ({ ready: p.ready, value: p.metrics ? podValue(name, p.metrics) : null })), target, current, settings.tolerance, how);
      if (!result) continue;
      perMetric[name] = { usage: result.usage, replicas: result.replicas };
      if (!best || result.replicas > best.replicas) best = { name, replicas: result.replicas };
    }
    if (best) { raw = best.replicas; reasons.push(`metric:${best.name}`); }
    totalConnections = inputs.pods!.reduce((sum, p) => sum + (p.metrics?.connections ?? 0), 0);
    const keepFrom = nowMs - Math.max(settings.trendWindowMs, settings.trendShortWindowMs);
    connections = connections.filter((p) => p.atMs >= keepFrom && p.atMs < nowMs);
    // A total with a ready pod missing is too low, and the next complete one would look like a surge.
    if (withMetrics.length > 0 && pods.every((p) => !p.ready || p.metrics !== null)) connections = [...connections, { atMs: nowMs, value: totalConnections }];
  } else {
    consecutiveFailures++;
    reasons.push('metrics_failed');
    if (consecutiveFailures >= settings.failuresBeforeFallback) {
      raw = Math.max(current, settings.fallbackReplicas);
      reasons.push('fallback');
    }
  }

  // Floors that only ever raise the answer.
  const targetConnections = settings.targets.connections;
  let trendFloor: number | null = null;
  let projectedConnections: number | null = null;
  if (metricsOk && targetConnections > 0) {
    // The next chance to act is a period away, and what is ordered then needs readyDelayMs to serve.
    const projection = projectRise(connections, [settings.trendShortWindowMs, settings.trendWindowMs], readyDelayMs + settings.periodMs);
    if (projection) {
      projectedConnections = projection.value;
      trendFloor = Math.ceil(projection.value / targetConnections);
    }
  }
  const events = activeEvents(inputs.events, nowMs, { leadMs: settings.scheduleLeadMs, holdMs: settings.scheduleHoldMs });
  const scheduleFloor = events.length > 0 && targetConnections > 0
    ? Math.ceil(events.reduce((sum, e) => sum + e.expectedViewers, 0) / targetConnections)
    : null;

  let wanted = raw;
  if (trendFloor !== null && trendFloor > wanted) { wanted = trendFloor; reasons.push('floor:trend'); }
  if (scheduleFloor !== null && scheduleFloor > wanted) { wanted = scheduleFloor; reasons.push('floor:schedule'); }
  // The window remembers the answer with its floors: a floor that ordered pods a period ago must
  // not be taken back the next one (the trend dips as soon as a ramp flattens).
  if (metricsOk) recommendations = [...recommendations.filter((r) => r.atMs > nowMs - settings.scaleDownWindowMs), { atMs: nowMs, value: wanted }];

  let replicas = current;
  let stabilized: number | null = null;
  let lastScaleDownMs = state.lastScaleDownMs;
  if (wanted > current) {
    const limit = current + Math.max(Math.ceil((current * settings.scaleUpMaxPercent) / 100), settings.scaleUpMaxPods);
    replicas = Math.min(wanted, limit);
    if (replicas < wanted) reasons.push('limit:scale_up_rate');
  } else if (wanted < current) {
    stabilized = Math.max(wanted, ...recommendations.map((r) => r.value), trendFloor ?? 0, scheduleFloor ?? 0);
    if (stabilized < current) {
      const blocked = !metricsOk ? 'hold:metrics_failed'
        : inputs.rolloutInProgress ? 'hold:rollout'
          : events.length > 0 ? 'hold:scheduled_event'
            : lastScaleDownMs !== null && nowMs - lastScaleDownMs < settings.scaleDownPeriodMs ? 'hold:scale_down_period'
              : null;
      if (blocked) {
        reasons.push(blocked);
      } else {
        const step = Math.max(1, Math.floor((current * settings.scaleDownMaxPercent) / 100));
        replicas = Math.max(stabilized, current - step);
        reasons.push('stabilized');
        if (replicas > stabilized) reasons.push('limit:scale_down_rate');
      }
    } else {
      reasons.push('hold:stabilization_window');
    }
  }

  if (replicas < settings.minReplicas) { replicas = settings.minReplicas; reasons.push('clamp:min'); }
  // Held at the cap while more is wanted: operators must hear of it (a log reason and a gauge).
  const cappedAtMax = wanted > settings.maxReplicas && replicas >= settings.maxReplicas;
  if (replicas > settings.maxReplicas) { replicas = settings.maxReplicas; reasons.push('clamp:max'); }
  if (cappedAtMax) reasons.push('capped_at_max');
  if (replicas < current) lastScaleDownMs = nowMs;
  if (reasons.length === 0) reasons.push('no_metrics');

  const decision: Decision = {
    currentReplicas: current,
    replicas,
    action: replicas > current ? 'up' : replicas < current ? 'down' : 'hold',
    metricsOk,
    consecutiveFailures,
    perMetric,
    totalConnections,
    projectedConnections,
    floors: { trend: trendFloor, schedule: scheduleFloor },
    stabilized,
    readyDelayMs,
    events: events.map((e) => e.name),
    reasons,
    wanted,
    cappedAtMax,
  };
  return { decision, state: { connections, recommendations, consecutiveFailures, lastScaleDownMs } };
}
