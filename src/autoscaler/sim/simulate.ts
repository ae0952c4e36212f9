/**
 * A model of the gateway fleet under a crowd, driven by the real decide(): pods take `startupMs` to
 * become ready and serve up to `podCapacity` connections well. Gateways have no admission limit, so
 * every viewer connects to a ready pod (the emptiest first) and connections never move on their
 * own; viewers beyond the ready capacity are on overloaded gateways (lag, dropped chat). Time
 * advances in fixed steps on a fake clock; nothing here does I/O.
 */
import { INITIAL_POLICY_STATE, decide, type Decision, type PodInput, type PolicySettings } from '../policy.js';
import type { ScheduledEvent } from '../schedule.js';

export interface SimScenario {
  name: string;
  durationMs: number;
  stepMs: number;
  /** Viewers who want to be connected at `tMs` (ms since the start). */
  demand(tMs: number): number;
  /** Events in scenario time (ms since the start). */
  events: readonly ScheduledEvent[];
  startupMs: number;
  podCapacity: number;
  initialReplicas: number;
}

export interface SimPoint {
  tMs: number;
  demand: number;
  /** Viewers on gateways within their capacity: min(demand, capacity). */
  served: number;
  /** Ready pods × podCapacity. */
  capacity: number;
  /** The replica count ordered (spec.replicas). */
  replicas: number;
  readyPods: number;
}

export interface SimResult {
  points: SimPoint[];
  decisions: Array<{ tMs: number; decision: Decision }>;
  /** Viewer-seconds beyond the ready capacity (on overloaded gateways). */
  overloadViewerSeconds: number;
  /** First time new pods (ordered by the autoscaler) became ready. */
  firstScaleUpReadyMs: number | null;
}

interface SimPod { name: string; readyAtMs: number; connections: number }

export function simulate(scenario: SimScenario, settings: PolicySettings, floors: { trend: boolean; schedule: boolean }): SimResult {
  const policy: PolicySettings = floors.trend ? settings : { ...settings, trendWindowMs: 0, trendShortWindowMs: 0 };
  let state = INITIAL_POLICY_STATE;
  let nextPod = 0;
  const newPod = (readyAtMs: number): SimPod => ({ name: `gw-${nextPod++}`, readyAtMs, connections: 0 });
  let pods: SimPod[] = Array.from({ length: scenario.initialReplicas }, () => newPod(0));
  let replicas = scenario.initialReplicas;
  let openedSinceDecision = 0;
  let lastDecisionMs = 0;
  let measuredReadyDelayMs: number | null = null;
  let firstScaleUpReadyMs: number | null = null;
  let overload = 0;
  const points: SimPoint[] = [];
  const decisions: SimResult['decisions'] = [];

  for (let t = 0; t <= scenario.durationMs; t += scenario.stepMs) {
    const ready = pods.filter((p) => p.readyAtMs <= t);
    if (firstScaleUpReadyMs === null && ready.some((p) => p.readyAtMs > 0)) firstScaleUpReadyMs = t;
    if (ready.some((p) => p.readyAtMs > 0)) measuredReadyDelayMs = scenario.startupMs;
    const demand = scenario.demand(t);
    const capacity = ready.length * scenario.podCapacity;
    const served = Math.min(demand, capacity);
    // Leavers leave every pod alike; arrivals go to the emptiest ready pods.
    let held = pods.reduce((sum, p) => sum + p.connections, 0);
    if (demand < held && held > 0) {
      const keep = demand / held;
      for (const p of pods) p.connections = Math.floor(p.connections * keep);
      held = pods.reduce((sum, p) => sum + p.connections, 0);
    }
    let arriving = ready.length > 0 ? demand - held : 0;
    openedSinceDecision += Math.max(0, arriving);
    const byLoad = [...ready].sort((a, b) => a.connections - b.connections);
    while (arriving > 0 && byLoad.length > 0) {
      // Level the emptiest pods up to the next one's load, then move on.
      const level = byLoad.findIndex((p) => p.connections > byLoad[0]!.connections);
      const group = level < 0 ? byLoad : byLoad.slice(0, level);
      const ceiling = level < 0 ? Infinity : byLoad[level]!.connections;
      const each = Math.min(Math.ceil(arriving / group.length), ceiling - group[0]!.connections);
      for (const p of group) {
        const add = Math.min(each, arriving);
        p.connections += add;
        arriving -= add;
      }
    }
    overload += ((demand - served) * scenario.stepMs) / 1000;

    if (t > 0 && t - lastDecisionMs >= settings.periodMs) {
      const periodS = (t - lastDecisionMs) / 1000;
      const readyCount = Math.max(1, ready.length);
      const inputs: PodInput[] = pods.map((p) => ({
        name: p.name,
        ready: p.readyAtMs <= t,
        metrics: p.readyAtMs <= t
          ? { connections: p.connections, deliveriesPerSec: null, newConnectionsPerSec: openedSinceDecision / periodS / readyCount, cpuUtilization: null, lagP99S: null }
          : null,
      }));
      const result = decide(state, {
        currentReplicas: replicas,
        pods: inputs,
        rolloutInProgress: false,
        readyDelayMs: measuredReadyDelayMs,
        events: floors.schedule ? scenario.events : [],
      }, t, policy);
      state = result.state;
      decisions.push({ tMs: t, decision: result.decision });
      const wanted = result.decision.replicas;
      if (wanted > replicas) {
        for (let i = replicas; i < wanted; i++) pods.push(newPod(t + scenario.startupMs));
      } else if (wanted < replicas) {
        // The pod-deletion-cost annotation makes the least-loaded pods go; their viewers reconnect.
        const victims = new Set([...pods].sort((a, b) => a.connections - b.connections).slice(0, replicas - wanted));
        pods = pods.filter((p) => !victims.has(p));
      }
      replicas = wanted;
      openedSinceDecision = 0;
      lastDecisionMs = t;
    }
    points.push({ tMs: t, demand, served, capacity, replicas, readyPods: ready.length });
  }
  return { points, decisions, overloadViewerSeconds: overload, firstScaleUpReadyMs };
}

/** Viewers climbing linearly from `from` to `to` over `rampMs` starting at `startMs`, holding, then leaving over `leaveMs` from `endMs`. */
export function flashCrowd(p: { from: number; to: number; startMs: number; rampMs: number; endMs: number; leaveMs: number }): (tMs: number) => number {
  return (t) => {
    if (t < p.startMs) return p.from;
    if (t < p.startMs + p.rampMs) return Math.round(p.from + ((p.to - p.from) * (t - p.startMs)) / p.rampMs);
    if (t < p.endMs) return p.to;
    if (t < p.endMs + p.leaveMs) return Math.round(p.to - ((p.to - p.from) * (t - p.endMs)) / p.leaveMs);
    return p.from;
  };
}
