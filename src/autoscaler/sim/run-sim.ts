/**
 * `npm run sim:autoscaler`: replays the flash crowd (announced and not) with and without the trend
 * and schedule floors, on warm nodes and on cold ones (pods ready 90 s and 180 s after the order), and writes bench/results/autoscaler-sim-*.svg, plus a summary line per run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COLD_STARTUP_MS, CROWD_END_MS, CROWD_START_MS, defaultSimSettings, flashCrowdScenario } from './scenarios.js';
import { simulate, type SimResult, type SimScenario } from './simulate.js';
import { renderChart } from './svg-chart.js';

export interface SimRun {
  file: string;
  /** What differs from the default settings, for the chart's title. */
  variant: string;
  scenario: SimScenario;
  floors: { trend: boolean; schedule: boolean };
  result: SimResult;
}

/** Runs every case and returns them (the unit test checks these same runs). */
export function runAll(): SimRun[] {
  const defaults = defaultSimSettings();
  // The new-connection rate also sees a crowd arrive; with it off, the trend floor works alone.
  const rateOff = { ...defaults, targets: { ...defaults.targets, new_connections: 0 } };
  const both = { trend: true, schedule: true };
  const trendOnly = { trend: true, schedule: false };
  const none = { trend: false, schedule: false };
  const cases = [
    { file: 'announced-with-floors', announced: true, floors: both, settings: defaults, variant: '' },
    { file: 'announced-without-floors', announced: true, floors: none, settings: defaults, variant: '' },
    { file: 'surprise-with-trend', announced: false, floors: trendOnly, settings: defaults, variant: '' },
    { file: 'surprise-without-trend', announced: false, floors: none, settings: defaults, variant: '' },
    { file: 'surprise-rate-off-with-trend', announced: false, floors: trendOnly, settings: rateOff, variant: ', new-connection target off' },
    { file: 'surprise-rate-off-without-trend', announced: false, floors: none, settings: rateOff, variant: ', new-connection target off' },
    // Cold nodes: the same crowds when every new pod waits for a node.
    ...COLD_STARTUP_MS.flatMap((startupMs) => [
      { file: `cold-${startupMs / 1000}s-announced-with-floors`, announced: true, floors: both, settings: defaults, variant: '', startupMs },
      { file: `cold-${startupMs / 1000}s-surprise-with-trend`, announced: false, floors: trendOnly, settings: defaults, variant: '', startupMs },
      { file: `cold-${startupMs / 1000}s-surprise-without-trend`, announced: false, floors: none, settings: defaults, variant: '', startupMs },
    ]),
  ];
  return cases.map((c) => {
    const scenario = flashCrowdScenario({ announced: c.announced, ...('startupMs' in c ? { startupMs: c.startupMs } : {}) });
    return { file: `autoscaler-sim-${c.file}.svg`, variant: c.variant, scenario, floors: c.floors, result: simulate(scenario, c.settings, c.floors) };
  });
}

/** One point per 5 s is plenty for an hour-long chart and keeps the SVG small. */
const CHART_STEP_MS = 5000;

export function chartOf(run: SimRun): string {
  const points = run.result.points.filter((p) => p.tMs % CHART_STEP_MS === 0);
  const floors = [run.floors.trend ? 'trend' : null, run.floors.schedule ? 'schedule' : null].filter(Boolean).join(' + ') || 'none';
  return renderChart({
    title: `${run.scenario.name}: floors ${floors}${run.variant}`,
    subtitle: `overload ${(run.result.overloadViewerSeconds / 1e6).toFixed(2)}M viewer·s; gateway ready after ${run.scenario.startupMs / 1000} s, serves ${run.scenario.podCapacity / 1000}k, drains ${run.scenario.drainMs / 1000} s; peak ${Math.max(...points.map((p) => p.replicas))} replicas`,
    timesS: points.map((p) => p.tMs / 1000),
    leftLabel: 'viewers / capacity',
    rightLabel: 'replicas (ordered capacity on the left scale)',
    rightScale: 1 / run.scenario.podCapacity,
    series: [
      { label: 'viewers (demand)', color: '#d62728', values: points.map((p) => p.demand) },
      { label: 'ready capacity', color: '#1f77b4', values: points.map((p) => p.capacity) },
      { label: 'replicas ordered', color: '#2ca02c', values: points.map((p) => p.replicas), rightAxis: true, dashed: true },
    ],
    spans: run.scenario.events.length > 0 ? [{ fromS: CROWD_START_MS / 1000, toS: CROWD_END_MS / 1000, label: 'scheduled event' }] : [],
  });
}

function main(): void {
  const dir = join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  for (const run of runAll()) {
    writeFileSync(join(dir, run.file), chartOf(run));
    const peak = Math.max(...run.result.points.map((p) => p.replicas));
    process.stdout.write(`${run.file}: overload ${Math.round(run.result.overloadViewerSeconds)} viewer-seconds, peak ${peak} replicas\n`);
  }
}

if (process.argv[1]?.endsWith('run-sim.js')) main();
