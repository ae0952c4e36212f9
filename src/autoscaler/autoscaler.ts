/**
 * One period of the autoscaler: read the gateway Deployment's scale and rollout state, list its pods,
 * scrape them, decide (policy.ts), mark the least-loaded pods for removal before a scale-down, patch
 * the scale, and report the decision as one log line and as metrics. Only the Lease holder acts.
 */
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/log.js';
import type { AutoscalerMetrics } from '../shared/metrics.js';
import { KubeApiError, type GatewayPod, type RolloutView, type ScaleTarget } from './cluster-api.js';
import type { GatewayMetricsSource } from './metrics-source.js';
import { INITIAL_POLICY_STATE, decide, type Decision, type PodInput, type PolicySettings, type PolicyState } from './policy.js';
import { ReadyDelayEstimator } from './ready-delay.js';
import type { ScheduledEvent } from './schedule.js';

/**
 * The pod-deletion-cost given to the pods a scale-down should remove: below the default 0 of the
 * others, so the ReplicaSet controller deletes these first.
 */
export const VICTIM_DELETION_COST = '-100';

export interface AutoscalerDeps {
  target: ScaleTarget;
  metricsSource: Pick<GatewayMetricsSource, 'collect'>;
  /** null: act without a Lease (a single instance by other means). */
  leader: { isLeader(nowMs: number): boolean } | null;
  schedule: () => readonly ScheduledEvent[];
  settings: PolicySettings;
  dryRun: boolean;
  clock: Clock;
  log: Logger;
  metrics: AutoscalerMetrics;
}

/** A rollout is in progress until the controller has seen the spec and every replica is updated and ready. */
export function rolloutInProgress(r: RolloutView): boolean {
  return r.observedGeneration < r.generation
    || r.updatedReplicas < r.specReplicas
    || r.replicas > r.updatedReplicas
    || r.readyReplicas < r.updatedReplicas;
}

export class Autoscaler {
  private state: PolicyState = INITIAL_POLICY_STATE;
  private readonly readyDelay = new ReadyDelayEstimator();
  private lastSuccessMs: number | null = null;
  private capped = false;

  constructor(private readonly deps: AutoscalerDeps) {}

  /** When the last period completed (for /healthz). */
  get lastCompletedMs(): number | null {
    return this.lastSuccessMs;
  }

  /** Runs one period. Returns the decision, or null when this instance is not the leader or the scale could not be read. */
  async runOnce(): Promise<Decision | null> {
    const { target, clock, log, metrics } = this.deps;
    const now = clock.now();
    const leading = this.deps.leader?.isLeader(now) ?? true;
    metrics.leading(leading);
    if (!leading) {
      this.lastSuccessMs = now;
      log.debug('standing by: the lease is held elsewhere');
      return null;
    }

    let scale;
    try {
      scale = await target.readScale();
    } catch (error) {
      metrics.failure('scale');
      log.error('reading the gateway scale failed; no decision this period', { error });
      return null;
    }
    let inRollout = true;
    try {
      inRollout = rolloutInProgress(await target.readRollout());
    } catch (error) {
      metrics.failure('rollout');
      log.warn('reading the deployment failed; treating it as a rollout (no scale-down)', { error });
    }
    let pods: GatewayPod[] = [];
    let inputs: PodInput[] | null = null;
    try {
      const listed = await target.listPods(scale.selector);
      pods = listed.filter((p) => !p.terminating);
      this.readyDelay.observe(pods);
      inputs = await this.deps.metricsSource.collect(listed);
    } catch (error) {
      metrics.failure('pods');
      log.error('listing gateway pods failed', { error, selector: scale.selector });
    }

    const result = decide(this.state, {
      currentReplicas: scale.specReplicas,
      pods: inputs,
      rolloutInProgress: inRollout,
      readyDelayMs: this.readyDelay.estimateMs(),
      events: this.deps.schedule(),
    }, now, this.deps.settings);
    this.state = result.state;
    const decision = result.decision;

    const victims = decision.action === 'down' ? this.chooseVictims(pods, inputs ?? [], scale.specReplicas - decision.replicas) : [];
    let applied = false;
    if (!this.deps.dryRun) {
      await this.markForRemoval(pods, victims);
      if (decision.replicas !== scale.specReplicas) applied = await this.patch(decision.replicas, scale.resourceVersion);
    }
    metrics.decided(decision);
    log.info('decision', {
      current: decision.currentReplicas,
      desired: decision.replicas,
      action: decision.action,
      applied,
      dryRun: this.deps.dryRun,
      reasons: decision.reasons,
      capped: decision.cappedAtMax,
      metrics: Object.fromEntries(Object.entries(decision.perMetric).filter(([, m]) => m.usage !== null)),
      floors: decision.floors,
      stabilized: decision.stabilized,
      connections: decision.totalConnections,
      projected: decision.projectedConnections === null ? null : Math.round(decision.projectedConnections),
      pods: pods.length,
      ready: pods.filter((p) => p.ready).length,
      missing: inputs?.filter((p) => p.ready && p.metrics === null).length ?? null,
      draining: inputs?.filter((p) => p.draining).length ?? 0,
      rollout: inRollout,
      readyDelayMs: decision.readyDelayMs,
      events: decision.events,
      failures: decision.consecutiveFailures,
      victims,
    });
    this.reportCap(decision);
    this.lastSuccessMs = now;
    return decision;
  }

  /**
   * Reaching maxReplicas while more is wanted leaves viewers on overloaded gateways: say so once when
   * it starts (the decision lines carry the reason every period) and once when it ends.
   */
  private reportCap(decision: Decision): void {
    if (decision.cappedAtMax === this.capped) return;
    this.capped = decision.cappedAtMax;
    if (this.capped) this.deps.log.warn('held at maxReplicas', { reason: 'capped_at_max', maxReplicas: this.deps.settings.maxReplicas, wanted: decision.wanted });
    else this.deps.log.info('no longer held at maxReplicas', { replicas: decision.replicas });
  }

  /**
   * The pods a scale-down by `removing` should take: the ReplicaSet deletes not-ready pods first on
   * its own, so only the rest need choosing, the ready pods with the fewest connections (a pod
   * without figures counts as the busiest, so it is kept rather than guessed at).
   */
  chooseVictims(pods: readonly GatewayPod[], inputs: readonly PodInput[], removing: number): string[] {
    const notReady = pods.filter((p) => !p.ready).length;
    const count = Math.max(0, removing - notReady);
    const connectionsOf = new Map(inputs.map((i) => [i.name, i.metrics?.connections ?? Infinity]));
    return pods
      .filter((p) => p.ready)
      .sort((a, b) => (connectionsOf.get(a.name) ?? Infinity) - (connectionsOf.get(b.name) ?? Infinity) || a.name.localeCompare(b.name))
      .slice(0, count)
      .map((p) => p.name);
  }

  /**
   * Marks the victims and clears marks this autoscaler left on other pods (a scale-down that did
   * not happen); in a steady state this makes no API call.
   */
  private async markForRemoval(pods: readonly GatewayPod[], victims: readonly string[]): Promise<void> {
    const { target, log, metrics } = this.deps;
    const chosen = new Set(victims);
    for (const pod of pods) {
      const want = chosen.has(pod.name) ? VICTIM_DELETION_COST : pod.deletionCost === VICTIM_DELETION_COST ? null : pod.deletionCost;
      if (want === pod.deletionCost) continue;
      try {
        await target.setDeletionCost(pod.name, want);
      } catch (error) {
        metrics.failure('annotate');
        log.warn('setting pod-deletion-cost failed; the ReplicaSet may pick another pod', { pod: pod.name, error });
      }
    }
  }

  /** Patches the scale if it is unchanged since it was read; a conflict waits for the next period's fresh look. */
  private async patch(replicas: number, resourceVersion: string): Promise<boolean> {
    const { target, log, metrics } = this.deps;
    try {
      await target.patchReplicas(replicas, resourceVersion);
      return true;
    } catch (error) {
      metrics.failure('patch');
      if (error instanceof KubeApiError && error.status === 409) log.warn('the scale changed since it was read; deciding again next period', { replicas });
      else log.error('patching the gateway scale failed', { replicas, error });
      return false;
    }
  }
}
