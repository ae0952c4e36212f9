import { describe, expect, it } from 'vitest';
import { chartOf, runAll } from '../../src/autoscaler/sim/run-sim.js';
import { CROWD_START_MS, defaultSimSettings } from '../../src/autoscaler/sim/scenarios.js';

describe('autoscaler simulation', () => {
  const runs = runAll();
  const byFile = (part: string) => runs.find((r) => r.file.includes(part))!;

  it('announced crowd: with the floors capacity stays ≥ demand once the first new pods are ready; without them it lags', () => {
    const withFloors = byFile('announced-with-floors').result;
    const without = byFile('announced-without-floors').result;
    expect(withFloors.firstScaleUpReadyMs).not.toBeNull();
    expect(withFloors.firstScaleUpReadyMs!).toBeLessThan(CROWD_START_MS);
    for (const p of withFloors.points.filter((q) => q.tMs >= withFloors.firstScaleUpReadyMs!)) {
      expect(p.capacity, `at ${p.tMs / 1000} s`).toBeGreaterThanOrEqual(p.demand);
    }
    expect(withFloors.overloadViewerSeconds).toBe(0);
    const lagging = without.points.filter((p) => p.demand > p.capacity);
    expect(lagging.length).toBeGreaterThan(10);
    expect(lagging[0]!.tMs).toBeGreaterThanOrEqual(CROWD_START_MS);
    expect(without.overloadViewerSeconds).toBeGreaterThan(1_000_000);
  });

  it('surprise crowd: the trend floor never does worse, and alone it cuts the overload several times', () => {
    expect(byFile('surprise-with-trend').result.overloadViewerSeconds).toBeLessThanOrEqual(byFile('surprise-without-trend').result.overloadViewerSeconds);
    const withTrend = byFile('rate-off-with-trend').result.overloadViewerSeconds;
    const withoutTrend = byFile('rate-off-without-trend').result.overloadViewerSeconds;
    expect(withTrend * 2).toBeLessThan(withoutTrend);
  });

  it('no floor escapes the scale-down stabilization: what a scale-up orders stays for the whole window', () => {
    const windowMs = defaultSimSettings().scaleDownWindowMs;
    for (const run of runs) {
      const decisions = run.result.decisions;
      for (const up of decisions.filter((d) => d.decision.action === 'up')) {
        const within = decisions.filter((d) => d.tMs > up.tMs && d.tMs < up.tMs + windowMs);
        const lowest = Math.min(...within.map((d) => d.decision.replicas));
        expect(lowest, `${run.file}: ${up.decision.replicas} ordered at ${up.tMs / 1000} s`).toBeGreaterThanOrEqual(up.decision.replicas);
      }
    }
  });

  it('draws viewers, capacity and replicas as SVG', () => {
    const svg = chartOf(byFile('announced-with-floors'));
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<path d="M/g)).toHaveLength(3);
    for (const label of ['viewers (demand)', 'ready capacity', 'replicas ordered', 'scheduled event']) expect(svg).toContain(label);
    expect(svg).not.toMatch(/NaN|Infinity/);
  });
});
