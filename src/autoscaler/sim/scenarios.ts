/**
 * The simulated stream: 10,000 viewers, then a popular stream starts and 490,000 more arrive within
 * a minute; it ends 20 minutes later and they leave within two. Default autoscaler settings, a
 * gateway that needs 30 s to become ready and holds at most 60,000 connections (target 50,000).
 */
import { loadAutoscalerConfig, policySettings } from '../config.js';
import type { PolicySettings } from '../policy.js';
import { flashCrowd, type SimScenario } from './simulate.js';

const MINUTE_MS = 60_000;
export const CROWD_START_MS = 15 * MINUTE_MS;
export const CROWD_RAMP_MS = MINUTE_MS;
export const CROWD_END_MS = 35 * MINUTE_MS;

export function defaultSimSettings(): PolicySettings {
  return policySettings(loadAutoscalerConfig({}).config);
}

export function flashCrowdScenario(options: { announced: boolean }): SimScenario {
  return {
    name: options.announced ? 'announced flash crowd' : 'unannounced flash crowd',
    durationMs: 60 * MINUTE_MS,
    stepMs: 1000,
    demand: flashCrowd({ from: 10_000, to: 500_000, startMs: CROWD_START_MS, rampMs: CROWD_RAMP_MS, endMs: CROWD_END_MS, leaveMs: 2 * MINUTE_MS }),
    events: options.announced
      ? [{ name: 'finals', startMs: CROWD_START_MS, endMs: CROWD_END_MS, expectedViewers: 500_000 }]
      : [],
    startupMs: 30_000,
    podCapacity: 60_000,
    initialReplicas: 2,
  };
}
