/**
 * The decision function over traces on a fake clock: the fleet model in src/autoscaler/sim gives
 * pods that take 30 s to become ready; other traces call decide() period by period.
 */
import { describe, expect, it } from 'vitest';
import { hpaReplicas, percentile } from '../../src/autoscaler/hpa.js';
import { INITIAL_POLICY_STATE, decide, type DecisionInputs, type PodInput, type PolicySettings, type PolicyState } from '../../src/autoscaler/policy.js';
import { GatewayMetricsSource } from '../../src/autoscaler/metrics-source.js';
import { CROWD_END_MS, CROWD_RAMP_MS, CROWD_START_MS, defaultSimSettings, flashCrowdScenario } from '../../src/autoscaler/sim/scenarios.js';
import { flashCrowd, simulate, type SimScenario } from '../../src/autoscaler/sim/simulate.js';
import { silentLogger } from '../../src/shared/log.js';

const settings = defaultSimSettings();
const TARGET = settings.targets.connections;
const withTargets = (targets: Partial<PolicySettings['targets']>): PolicySettings => ({ ...settings, targets: { ...settings.targets, ...targets } });

function fleet(count: number, connectionsEach: number, extra: Partial<PodInput['metrics']> = {}): PodInput[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `gw-${i}`, ready: true,
    metrics: { connections: connectionsEach, deliveriesPerSec: null, newConnectionsPerSec: null, cpuUtilization: null, lagP99S: null, ...extra },
  }));
}

function inputs(currentReplicas: number, pods: PodInput[] | null, extra: Partial<DecisionInputs> = {}): DecisionInputs {
  return { currentReplicas, pods, rolloutInProgress: false, readyDelayMs: 30_000, events: [], ...extra };
}

describe('HPA calculation per metric', () => {
  const ready = (value: number | null) => ({ ready: true, value });
  const unready = { ready: false, value: null };

  it('scales by the usage ratio outside the 10% tolerance', () => {
    expect(hpaReplicas([ready(100), ready(100)], 50, 2, 0.1, { kind: 'mean' })!.replicas).toBe(4);
    expect(hpaReplicas([ready(54), ready(54)], 50, 2, 0.1, { kind: 'mean' })!.replicas).toBe(2);
    expect(hpaReplicas([ready(56), ready(56)], 50, 2, 0.1, { kind: 'mean' })!.replicas).toBe(3);
    expect(hpaReplicas([ready(10), ready(10), ready(10), ready(10)], 50, 4, 0.1, { kind: 'mean' })!.replicas).toBe(1);
    expect(hpaReplicas([unready, ready(null)], 50, 2, 0.1, { kind: 'mean' })).toBeNull();
  });

  it('counts missing pods as 0 when scaling up and as the target when scaling down', () => {
    expect(hpaReplicas([ready(100), ready(100), ready(100), ready(null)], 50, 4, 0.1, { kind: 'mean' })!.replicas).toBe(6);
    expect(hpaReplicas([ready(10), ready(10), ready(10), ready(null)], 50, 4, 0.1, { kind: 'mean' })!.replicas).toBe(2);
    // A missing pod that would flip the direction means: no change.
    expect(hpaReplicas([ready(60), ready(null), ready(null), ready(null)], 50, 4, 0.1, { kind: 'mean' })!.replicas).toBe(4);
  });

  it('counts not-ready pods as 0 on scale-up and ignores them otherwise', () => {
    // Two warming pods pull the ratio back to 1: no further scale-up while they start.
    expect(hpaReplicas([ready(100), ready(100), unready, unready], 50, 4, 0.1, { kind: 'mean' })!.replicas).toBe(4);
    expect(hpaReplicas([ready(150), ready(150), unready, unready], 50, 4, 0.1, { kind: 'mean' })!.replicas).toBe(6);
    expect(hpaReplicas([ready(20), ready(20), unready, unready], 50, 4, 0.1, { kind: 'mean' })!.replicas).toBe(1);
  });

  it('uses the hot pods for percentile metrics', () => {
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBe(9);
    expect(percentile([5], 0.9)).toBe(5);
    const pods = [ready(0.01), ready(0.01), ready(0.01), ready(0.2)];
    expect(hpaReplicas(pods, 0.05, 4, 0.1, { kind: 'mean' })!.replicas).toBe(5);
    expect(hpaReplicas(pods, 0.05, 4, 0.1, { kind: 'percentile', quantile: 1 })!.replicas).toBe(16);
  });
});

describe('decide', () => {
  it('takes the highest metric, up at most +100% or +4 pods per decision', () => {
    let state: PolicyState = INITIAL_POLICY_STATE;
    const hot = fleet(2, 40_000, { lagP99S: 0.5 });
    const first = decide(state, inputs(2, hot), 0, settings);
    expect(first.decision.perMetric.connections.replicas).toBe(2);
    expect(first.decision.perMetric.lag.replicas).toBe(20);
    expect(first.decision.replicas).toBe(6);
    expect(first.decision.reasons).toEqual(['metric:lag', 'limit:scale_up_rate']);
    state = first.state;
    expect(decide(state, inputs(6, fleet(6, 40_000, { lagP99S: 0.5 })), 5000, settings).decision.replicas).toBe(12);
    expect(decide(state, inputs(60, fleet(60, 40_000, { lagP99S: 0.5 })), 5000, settings).decision.replicas).toBe(100);
  });

  it('says when the cap binds: capped_at_max only while more than maxReplicas is wanted and the answer is at the cap', () => {
    const capped = decide(INITIAL_POLICY_STATE, inputs(100, fleet(100, 60_000)), 0, settings).decision;
    expect(capped).toMatchObject({ replicas: 100, wanted: 120, cappedAtMax: true, reasons: ['metric:connections', 'clamp:max', 'capped_at_max'] });
    // Still climbing towards the cap under the scale-up rate limit: not held at it yet.
    const climbing = decide(INITIAL_POLICY_STATE, inputs(10, fleet(10, 600_000)), 0, settings).decision;
    expect(climbing).toMatchObject({ replicas: 20, cappedAtMax: false });
    expect(climbing.reasons).not.toContain('capped_at_max');
    expect(decide(INITIAL_POLICY_STATE, inputs(100, fleet(100, 50_000)), 0, settings).decision.cappedAtMax).toBe(false);
  });

  it('never goes below min or above max', () => {
    expect(decide(INITIAL_POLICY_STATE, inputs(1, fleet(1, 0)), 0, settings).decision).toMatchObject({ replicas: 2, reasons: expect.arrayContaining(['clamp:min']) });
    expect(decide(INITIAL_POLICY_STATE, inputs(100, fleet(100, 500_000)), 0, settings).decision).toMatchObject({ replicas: 100, reasons: expect.arrayContaining(['clamp:max']) });
  });

  it('holds scale-down during a rollout and during a scheduled event', () => {
    const idle = fleet(10, 1000);
    expect(decide(INITIAL_POLICY_STATE, inputs(10, idle, { rolloutInProgress: true }), 0, settings).decision).toMatchObject({ replicas: 10, reasons: ['metric:connections', 'hold:rollout'] });
    const event = { name: 'finals', startMs: 1_000_000, endMs: 2_000_000, expectedViewers: 100_000 };
    const during = decide(INITIAL_POLICY_STATE, inputs(10, idle, { events: [event] }), 1_500_000, settings).decision;
    expect(during).toMatchObject({ replicas: 10, events: ['finals'] });
    expect(during.reasons).toContain('hold:scheduled_event');
    expect(decide(INITIAL_POLICY_STATE, inputs(10, idle), 0, settings).decision.replicas).toBe(9);
  });

  it('metrics outage: holds, never scales down, and applies the fallback after K failures', () => {
    const K = settings.failuresBeforeFallback;
    let state: PolicyState = INITIAL_POLICY_STATE;
    let replicas = 4;
    const seen: number[] = [];
    for (let i = 0; i < K + 2; i++) {
      // Pods listed but every scrape failed, then the pod list itself failing.
      const pods = i % 2 === 0 ? fleet(replicas, 0).map((p) => ({ ...p, metrics: null })) : null;
      const result = decide(state, inputs(replicas, pods), i * 5000, settings);
      state = result.state;
      expect(result.decision.metricsOk).toBe(false);
      expect(result.decision.reasons[0]).toBe('metrics_failed');
      replicas = result.decision.replicas;
      seen.push(replicas);
    }
    expect(seen.slice(0, K - 1)).toEqual(Array(K - 1).fill(4));
    expect(seen[K - 1]).toBe(8);
    expect(seen[K]).toBe(settings.fallbackReplicas);
    expect(state.consecutiveFailures).toBe(K + 2);

    // A fleet larger than the fallback is not cut down while blind.
    let big: PolicyState = INITIAL_POLICY_STATE;
    for (let i = 0; i < K + 3; i++) {
      const result = decide(big, inputs(40, null), i * 60_000, settings);
      big = result.state;
      expect(result.decision.replicas).toBe(40);
    }
    // Metrics back: the failure count resets.
    const back = decide(big, inputs(40, fleet(40, 50_000)), 10 * 60_000, settings);
    expect(back.decision).toMatchObject({ metricsOk: true, consecutiveFailures: 0, replicas: 40 });
  });

  it('a restarted gateway (counter reset) does not fake a surge of new connections', () => {
    let now = 0;
    const source = new GatewayMetricsSource({ defaultPort: 9090, timeoutMs: 100, clock: { now: () => now }, log: silentLogger });
    const scrape = (conns: number, opened: number) => `roomcast_gateway_connections ${conns}\nroomcast_gateway_connections_opened_total ${opened}\n`;
    const podsAt = (opened: number[]): PodInput[] => opened.map((o, i) => ({
      name: `gw-${i}`, ready: true, metrics: source.figures({ uid: `u${i}`, cpuRequestCores: null }, scrape(i === 3 && o < 1000 ? o : 48_000, o), now),
    }));
    let state = decide(INITIAL_POLICY_STATE, inputs(4, podsAt([900_000, 900_000, 900_000, 900_000])), now, settings).state;
    now += 5000;
    state = decide(state, inputs(4, podsAt([902_000, 902_000, 902_000, 902_000])), now, settings).state;
    now += 5000;
    // gw-3 restarted: its counter dropped from 902,000 to 500 (500 reconnected viewers in 5 s).
    const result = decide(state, inputs(4, podsAt([904_000, 904_000, 904_000, 500])), now, settings);
    expect(result.decision.perMetric.new_connections.usage).toBeCloseTo((400 * 3 + 100) / 4);
    expect(result.decision.replicas).toBe(4);
  });

  it('pods that are not ready neither block a scale-up nor count as capacity', () => {
    const warming: PodInput[] = [...fleet(2, 75_000), { name: 'new-0', ready: false, metrics: null }, { name: 'new-1', ready: false, metrics: null }];
    // 150k on 2 ready pods, 2 more starting: as the HPA, the warming pods count 0 → ratio 0.75 flips direction → hold at 4.
    expect(decide(INITIAL_POLICY_STATE, inputs(4, warming), 0, settings).decision.replicas).toBe(4);
    const overloaded: PodInput[] = [...fleet(2, 150_000), { name: 'new-0', ready: false, metrics: null }, { name: 'new-1', ready: false, metrics: null }];
    expect(decide(INITIAL_POLICY_STATE, inputs(4, overloaded), 0, settings).decision.replicas).toBe(6);
    // Nothing ready yet at all (a fresh Deployment, a restart): no figures, but no failure and no fallback either.
    let state: PolicyState = INITIAL_POLICY_STATE;
    for (let i = 0; i <= settings.failuresBeforeFallback; i++) {
      const result = decide(state, inputs(2, [{ name: 'a', ready: false, metrics: null }, { name: 'b', ready: false, metrics: null }]), i * 5000, settings);
      state = result.state;
      expect(result.decision).toMatchObject({ metricsOk: true, consecutiveFailures: 0, replicas: 2, reasons: ['no_metrics'] });
    }
    expect(state.connections).toEqual([]);
  });
});

describe('the trend input', () => {
  const steady = (state: PolicyState, fromMs: number, periods: number, pods: () => PodInput[]) => {
    for (let i = 0; i < periods; i++) state = decide(state, inputs(10, pods()), fromMs + i * 5000, settings).state;
    return state;
  };

  it('keeps draining pods\' viewers in the total, so a scale-down does not look like a surge', () => {
    let state = steady(INITIAL_POLICY_STATE, 0, 12, () => fleet(10, 50_000));
    // gw-9 is being deleted: 20k viewers still on it, 30k already reconnected to the other nine.
    const moving = (left: number): PodInput[] => [
      ...fleet(9, 50_000 + (50_000 - left) / 9),
      { name: 'gw-9', ready: false, draining: true, metrics: { connections: left, deliveriesPerSec: null, newConnectionsPerSec: null, cpuUtilization: null, lagP99S: null } },
    ];
    for (const [i, left] of [20_000, 5000, 0].entries()) {
      const result = decide(state, inputs(10, moving(left)), 60_000 + i * 5000, settings);
      state = result.state;
      expect(result.decision.totalConnections).toBeCloseTo(500_000, 0);
      expect(result.decision.floors.trend).toBe(10);
      expect(result.decision.perMetric.connections.usage).toBeCloseTo(50_000 + (50_000 - left) / 9, 3);
    }
  });

  it('skips a total with a ready pod missing, so its return is not a surge', () => {
    let state = steady(INITIAL_POLICY_STATE, 0, 12, () => fleet(10, 50_000));
    const gap = fleet(10, 50_000).map((p, i) => (i === 0 ? { ...p, metrics: null } : p));
    state = decide(state, inputs(10, gap), 60_000, settings).state;
    expect(state.connections.at(-1)!.atMs).toBe(55_000);
    const back = decide(state, inputs(10, fleet(10, 50_000)), 65_000, settings).decision;
    expect(back.floors.trend).toBe(10);
  });
});

describe('traces', () => {
  const readyDelayMs = 30_000;

  it('flash crowd 10k → 500k in 60 s: the trend floor orders ahead of the arriving connections', () => {
    const scenario = flashCrowdScenario({ announced: false });
    // New-connection rate off, so the trend floor alone has to see the crowd coming.
    const trendOnly = withTargets({ new_connections: 0 });
    const aheadOf = (run: ReturnType<typeof simulate>) => run.decisions
      .filter(({ tMs }) => tMs >= CROWD_START_MS + 15_000 && tMs <= CROWD_START_MS + CROWD_RAMP_MS)
      .map(({ tMs, decision }) => ({ tMs, ordered: decision.replicas * TARGET, arriving: scenario.demand(tMs + readyDelayMs) }));
    const withTrend = aheadOf(simulate(scenario, trendOnly, { trend: true, schedule: false }));
    expect(withTrend.length).toBeGreaterThanOrEqual(9);
    for (const point of withTrend) expect(point.ordered, `at ${point.tMs / 1000} s`).toBeGreaterThanOrEqual(point.arriving);
    const withoutTrend = aheadOf(simulate(scenario, trendOnly, { trend: false, schedule: false }));
    expect(withoutTrend.some((p) => p.ordered < p.arriving)).toBe(true);

    // With every metric on (the defaults) it holds as well.
    const defaults = aheadOf(simulate(scenario, settings, { trend: true, schedule: false }));
    for (const point of defaults) expect(point.ordered, `at ${point.tMs / 1000} s`).toBeGreaterThanOrEqual(point.arriving);
  });

  it('scheduled stream: pre-scaled and ready before it starts, held until the hold time after it ends', () => {
    const scenario = flashCrowdScenario({ announced: true });
    const run = simulate(scenario, settings, { trend: true, schedule: true });
    const at = (tMs: number) => run.points.find((p) => p.tMs === tMs)!;
    const needed = Math.ceil(500_000 / TARGET);
    expect(at(CROWD_START_MS - settings.scheduleLeadMs - 1000).replicas).toBe(2);
    expect(at(CROWD_START_MS - 1000).readyPods).toBeGreaterThanOrEqual(needed);
    for (const p of run.points.filter((q) => q.tMs >= CROWD_START_MS - 60_000)) {
      expect(p.capacity, `at ${p.tMs / 1000} s`).toBeGreaterThanOrEqual(p.demand);
    }
    const holdEnds = CROWD_END_MS + settings.scheduleHoldMs;
    for (const p of run.points.filter((q) => q.tMs > CROWD_START_MS && q.tMs <= holdEnds)) expect(p.replicas).toBeGreaterThanOrEqual(needed);
    expect(at(scenario.durationMs).replicas).toBeLessThan(at(holdEnds).replicas);
  });

  it('slow decline: down one pod (or 10%) per step, steps further apart than the drain, never below the need', () => {
    const scenario: SimScenario = {
      name: 'decline', durationMs: 60 * 60_000, stepMs: 1000, startupMs: readyDelayMs, podCapacity: 60_000, initialReplicas: 20, events: [], drainMs: 30_000,
      demand: flashCrowd({ from: 100_000, to: 1_000_000, startMs: -1, rampMs: 1, endMs: 0, leaveMs: 30 * 60_000 }),
    };
    const run = simulate(scenario, settings, { trend: true, schedule: true });
    const downs = run.decisions.filter((d) => d.decision.action === 'down');
    expect(downs.length).toBeGreaterThan(10);
    expect(downs[0]!.tMs).toBeGreaterThanOrEqual(settings.scaleDownWindowMs);
    for (let i = 0; i < downs.length; i++) {
      const { decision, tMs } = downs[i]!;
      expect(decision.currentReplicas - decision.replicas).toBeLessThanOrEqual(Math.max(1, Math.floor(decision.currentReplicas * 0.1)));
      expect(decision.replicas * TARGET, `at ${tMs / 1000} s`).toBeGreaterThanOrEqual(scenario.demand(tMs) / (1 + settings.tolerance));
      if (i > 0) expect(tMs - downs[i - 1]!.tMs).toBeGreaterThanOrEqual(settings.scaleDownPeriodMs);
    }
    expect(settings.scaleDownPeriodMs).toBeGreaterThan(30_000);
    expect(run.points.at(-1)!.replicas).toBe(2);
  });
});
