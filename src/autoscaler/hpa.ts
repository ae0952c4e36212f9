/**
 * The Kubernetes HPA's replica calculation for one metric (pkg/controller/podautoscaler/
 * replica_calculator.go): a usage ratio against the per-pod target, a tolerance band in which
 * nothing changes, and its rules for pods without metrics (on scale-up they count as 0, on
 * scale-down as exactly the target) and not-ready pods (0 on scale-up, ignored otherwise; a
 * not-ready pod never pushes the answer the other way).
 */

export interface PodValue {
  ready: boolean;
  /** null: this pod's metric is missing (scrape failed, or no previous sample for a rate). */
  value: number | null;
}

/**
 * How per-pod values become one usage figure: `mean` for load that new pods share (connections,
 * their rates), a high percentile for "the hottest pods" (CPU, lag), since existing connections do
 * not move to new pods and an average would hide one saturated gateway.
 */
export type Aggregate = { kind: 'mean' } | { kind: 'percentile'; quantile: number };

export interface HpaResult {
  replicas: number;
  /** The aggregate of the ready pods' values (before missing or not-ready pods were filled in). */
  usage: number;
  usageRatio: number;
}

/** Nearest-rank percentile of `values` (not empty), quantile in (0, 1]. */
export function percentile(values: readonly number[], quantile: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(quantile * sorted.length) - 1));
  return sorted[index]!;
}

function aggregate(values: readonly number[], how: Aggregate): number {
  if (how.kind === 'mean') return values.reduce((sum, v) => sum + v, 0) / values.length;
  return percentile(values, how.quantile);
}

/**
 * The replicas one metric asks for, or null when no ready pod reported it (nothing to go on).
 * `target` is the wanted value per pod (> 0); `tolerance` the relative band (0.1) in which the
 * answer stays `currentReplicas`.
 */
export function hpaReplicas(pods: readonly PodValue[], target: number, currentReplicas: number, tolerance: number, how: Aggregate): HpaResult | null {
  const readyValues: number[] = [];
  let missing = 0;
  let unready = 0;
  for (const pod of pods) {
    if (!pod.ready) unready++;
    else if (pod.value === null || !Number.isFinite(pod.value)) missing++;
    else readyValues.push(pod.value);
  }
  if (readyValues.length === 0) return null;

  const usage = aggregate(readyValues, how);
  const usageRatio = usage / target;
  const scaleUpWithUnready = unready > 0 && usageRatio > 1;
  if (!scaleUpWithUnready && missing === 0) {
    if (Math.abs(1 - usageRatio) <= tolerance) return { replicas: currentReplicas, usage, usageRatio };
    return { replicas: Math.ceil(usageRatio * readyValues.length), usage, usageRatio };
  }

  const filled = [...readyValues];
  for (let i = 0; i < missing; i++) filled.push(usageRatio < 1 ? target : 0);
  if (scaleUpWithUnready) for (let i = 0; i < unready; i++) filled.push(0);
  const newRatio = aggregate(filled, how) / target;
  if (Math.abs(1 - newRatio) <= tolerance || (usageRatio < 1 && newRatio > 1) || (usageRatio > 1 && newRatio < 1)) {
    return { replicas: currentReplicas, usage, usageRatio };
  }
  const replicas = Math.ceil(newRatio * filled.length);
  if ((newRatio < 1 && replicas > currentReplicas) || (newRatio > 1 && replicas < currentReplicas)) {
    return { replicas: currentReplicas, usage, usageRatio };
  }
  return { replicas, usage, usageRatio };
}
