/**
 * A model of the gateway fleet under a crowd, driven by the real decide(): pods take `startupMs` to
 * become ready and serve up to `podCapacity` connections well. Gateways have no admission limit, so
 * every viewer connects to a ready pod (the emptiest first) and connections never move on their
 * own; viewers beyond the ready capacity are on overloaded gateways (lag, dropped chat). A pod
 * ordered away drains as a gateway does on SIGTERM: for `drainMs` it keeps serving the viewers it
 * still holds, takes no new ones, and moves them to the others evenly over that time (they reconnect
 * through dispatch to the emptiest ready pods); the autoscaler still scrapes it, marked draining.
 * Time advances in fixed steps on a fake clock; nothing here does I/O.
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
  /** From the order to Ready: 30 s on a warm node, 90–180 s when a node must be added first. */
  startupMs: number;
  podCapacity: number;
  initialReplicas: number;
  /** How long a pod ordered away drains (the gateways' ROOMCAST_DRAIN_MS). */
  drainMs: number;
}

export interface SimPoint {
  tMs: number;
  demand: number;
  /** Viewers on gateways within their capacity (draining ones included). */
  served: number;
  /** Ready pods × podCapacity (pods still draining excluded: they take no new viewers). */
  capacity: number;
  /** The replica count ordered (spec.replicas). */
  replicas: number;
  readyPods: number;
  /** Pods ordered away that still hold viewers while they drain. */
  drainingPods: number;
  /** Viewers still on draining pods. */
  drainingConnections: number;
}

export interface SimResult {
  points: SimPoint[];
  decisions: Array<{ tMs: number; decision: Decision }>;
  /** Viewer-seconds beyond the ready capacity (on overloaded gateways). */
  overloadViewerSeconds: number;
  /** First time new pods (ordered by the autoscaler) became ready. */
  firstScaleUpReadyMs: number | null;
}

interface SimPod {
  name: string;
  readyAtMs: number;
  connections: number;
  /** Set when ordered away: the pod is gone at this time. */
  drainEndMs: number | null;
}

export function simulate(scenario: SimScenario, settings: PolicySettings, floors: { trend: boolean; schedule: boolean }): SimResult {
  const policy: PolicySettings = floors.trend ? settings : { ...settings, trendWindowMs: 0, trendShortWindowMs: 0 };
  let state = INITIAL_POLICY_STATE;
  let nextPod = 0;
  const newPod = (readyAtMs: number): SimPod => ({ name: `gw-${nextPod++}`, readyAtMs, connections: 0, drainEndMs: null });
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
    pods = pods.filter((p) => p.drainEndMs === null || p.drainEndMs > t || p.connections > 0);
    const draining = pods.filter((p) => p.drainEndMs !== null);
    const ready = pods.filter((p) => p.drainEndMs === null && p.readyAtMs <= t);
    if (firstScaleUpReadyMs === null && ready.some((p) => p.readyAtMs > 0)) firstScaleUpReadyMs = t;
    if (ready.some((p) => p.readyAtMs > 0)) measuredReadyDelayMs = scenario.startupMs;
    const demand = scenario.demand(t);
    // Leavers leave every pod alike.
    let held = pods.reduce((sum, p) => sum + p.connections, 0);
    if (demand < held && held > 0) {
      const keep = demand / held;
      for (const p of pods) p.connections = Math.floor(p.connections * keep);
    }
    // Draining pods send their viewers away evenly over what is left of the drain.
    for (const p of draining) {
      const leftSteps = Math.max(1, Math.ceil((p.drainEndMs! - t) / scenario.stepMs));
      p.connections -= Math.ceil(p.connections / leftSteps);
    }
    pods = pods.filter((p) => p.drainEndMs === null || p.drainEndMs > t || p.connections > 0);
    held = pods.reduce((sum, p) => sum + p.connections, 0);
    // Newcomers and the viewers moved off draining pods connect to the emptiest ready pods.
    let arriving = ready.length > 0 ? demand - held : 0;
    openedSinceDecision += Math.max(0, arriving);
    level(ready, arriving);
    const capacity = ready.length * scenario.podCapacity;
    const onDraining = draining.reduce((sum, p) => sum + p.connections, 0);
    const served = Math.min(demand - onDraining, capacity) + draining.reduce((sum, p) => sum + Math.min(p.connections, scenario.podCapacity), 0);
    overload += ((demand - served) * scenario.stepMs) / 1000;

    if (t > 0 && t - lastDecisionMs >= settings.periodMs) {
      const periodS = (t - lastDecisionMs) / 1000;
      const readyCount = Math.max(1, ready.length);
      const inputs: PodInput[] = pods.map((p) => {
        const isDraining = p.drainEndMs !== null;
        const scraped = isDraining || p.readyAtMs <= t;
        return {
          name: p.name,
          ready: !isDraining && p.readyAtMs <= t,
          ...(isDraining ? { draining: true } : {}),
          metrics: scraped
            ? { connections: p.connections, deliveriesPerSec: null, newConnectionsPerSec: isDraining ? 0 : openedSinceDecision / periodS / readyCount, cpuUtilization: null, lagP99S: null }
            : null,
        };
      });
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
        // The ReplicaSet deletes pods that are not ready first, then the pod-deletion-cost marks
        // the least-loaded ready ones; those drain.
        const active = pods.filter((p) => p.drainEndMs === null);
        const victims = [...active].sort((a, b) => Number(a.readyAtMs <= t) - Number(b.readyAtMs <= t) || a.connections - b.connections).slice(0, replicas - wanted);
        for (const p of victims) p.drainEndMs = p.readyAtMs <= t ? t + scenario.drainMs : t;
        pods = pods.filter((p) => p.drainEndMs === null || p.drainEndMs > t || p.connections > 0);
      }
      replicas = wanted;
      openedSinceDecision = 0;
      lastDecisionMs = t;
    }
    const stillDraining = pods.filter((p) => p.drainEndMs !== null);
    points.push({
      tMs: t, demand, served, capacity, replicas, readyPods: ready.length,
      drainingPods: stillDraining.length, drainingConnections: stillDraining.reduce((sum, p) => sum + p.connections, 0),
    });
  }
  return { points, decisions, overloadViewerSeconds: overload, firstScaleUpReadyMs };
}

/** Spreads `arriving` connections over `ready` pods: the emptiest are levelled up to the next one's load, and so on. */
function level(ready: readonly SimPod[], arriving: number): void {
  const byLoad = [...ready].sort((a, b) => a.connections - b.connections);
  while (arriving > 0 && byLoad.length > 0) {
    const next = byLoad.findIndex((p) => p.connections > byLoad[0]!.connections);
    const group = next < 0 ? byLoad : byLoad.slice(0, next);
    const ceiling = next < 0 ? Infinity : byLoad[next]!.connections;
    const each = Math.min(Math.ceil(arriving / group.length), ceiling - group[0]!.connections);
    for (const p of group) {
      const add = Math.min(each, arriving);
      p.connections += add;
      arriving -= add;
    }
  }
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
