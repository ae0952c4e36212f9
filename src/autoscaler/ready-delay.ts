/**
 * How long a new gateway takes to become ready, measured from the pods themselves: the Ready
 * condition's lastTransitionTime minus the pod's creationTimestamp (scheduling, image pull, start,
 * readiness probe). The first value seen per pod is kept, so a later readiness flap does not count.
 */
import type { GatewayPod } from './cluster-api.js';

/** Delays beyond this are not start-ups (a pod that was unready for a long time later). */
const MAX_PLAUSIBLE_DELAY_MS = 10 * 60_000;
const SAMPLES_KEPT = 20;
const QUANTILE = 0.9;

export class ReadyDelayEstimator {
  private readonly samples = new Map<string, { createdMs: number; delayMs: number }>();

  observe(pods: readonly GatewayPod[]): void {
    for (const pod of pods) {
      if (this.samples.has(pod.uid) || !pod.ready || pod.readySinceMs === null || pod.createdMs <= 0) continue;
      const delayMs = pod.readySinceMs - pod.createdMs;
      if (delayMs <= 0 || delayMs > MAX_PLAUSIBLE_DELAY_MS) continue;
      this.samples.set(pod.uid, { createdMs: pod.createdMs, delayMs });
    }
    if (this.samples.size > SAMPLES_KEPT) {
      const newest = [...this.samples.entries()].sort((a, b) => b[1].createdMs - a[1].createdMs).slice(0, SAMPLES_KEPT);
      this.samples.clear();
      for (const [uid, sample] of newest) this.samples.set(uid, sample);
    }
  }

  /** The 90th percentile of the newest pods' delays, or null before any was measured. */
  estimateMs(): number | null {
    if (this.samples.size === 0) return null;
    const delays = [...this.samples.values()].map((s) => s.delayMs).sort((a, b) => a - b);
    return delays[Math.min(delays.length - 1, Math.ceil(QUANTILE * delays.length) - 1)]!;
  }
}
