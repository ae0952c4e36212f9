/**
 * The simulated stream: 10,000 viewers, then a popular stream starts and 490,000 more arrive within
 * a minute; it ends 20 minutes later and they leave within two. Default autoscaler settings, a
 * gateway that holds at most 60,000 connections (target 50,000) and drains for 30 s when ordered
 * away. It becomes ready 30 s after it is ordered when a node has room for it; on an event night the
 * cluster autoscaler must often add a node first, and the pod is ready only after 90 s or 180 s.
 */
import { loadAutoscalerConfig, policySettings } from '../config.js';
import type { PolicySettings } from '../policy.js';
import { flashCrowd, type SimScenario } from './simulate.js';

const MINUTE_MS = 60_000;
export const CROWD_START_MS = 15 * MINUTE_MS;
export const CROWD_RAMP_MS = MINUTE_MS;
export const CROWD_END_MS = 35 * MINUTE_MS;
/** A pod on a node that is already there. */
export const WARM_STARTUP_MS = 30_000;
/** Pods that wait for a new node: a fast and a slow cloud. */
export const COLD_STARTUP_MS = [90_000, 180_000] as const;

export function defaultSimSettings(): PolicySettings {
  return policySettings(loadAutoscalerConfig({}).config);
}

export function flashCrowdScenario(options: { announced: boolean; startupMs?: number }): SimScenario {
  const startupMs = options.startupMs ?? WARM_STARTUP_MS;
  const crowd = options.announced ? 'announced flash crowd' : 'unannounced flash crowd';
  return {
    name: startupMs === WARM_STARTUP_MS ? crowd : `${crowd}, cold nodes`,
    durationMs: 60 * MINUTE_MS,
    stepMs: 1000,
    demand: flashCrowd({ from: 10_000, to: 500_000, startMs: CROWD_START_MS, rampMs: CROWD_RAMP_MS, endMs: CROWD_END_MS, leaveMs: 2 * MINUTE_MS }),
    events: options.announced
      ? [{ name: 'finals', startMs: CROWD_START_MS, endMs: CROWD_END_MS, expectedViewers: 500_000 }]
      : [],
    startupMs,
    podCapacity: 60_000,
    initialReplicas: 2,
    drainMs: loadAutoscalerConfig({}).config.drainMs,
  };
}
