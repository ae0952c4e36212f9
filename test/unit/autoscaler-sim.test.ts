import { describe, expect, it } from 'vitest';
import { chartOf, runAll } from '../../src/autoscaler/sim/run-sim.js';
import { CROWD_END_MS, CROWD_START_MS, defaultSimSettings } from '../../src/autoscaler/sim/scenarios.js';

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

  it('cold nodes (pods ready 90 s and 180 s after the order): the schedule still covers an announced crowd; a surprise costs more the slower the start', () => {
    for (const startupS of [90, 180]) {
      expect(byFile(`cold-${startupS}s-announced-with-floors`).result.overloadViewerSeconds, `${startupS} s`).toBe(0);
      expect(byFile(`cold-${startupS}s-surprise-with-trend`).result.overloadViewerSeconds)
        .toBeLessThanOrEqual(byFile(`cold-${startupS}s-surprise-without-trend`).result.overloadViewerSeconds);
    }
    const overloadAt = (prefix: string) => byFile(`${prefix}surprise-with-trend`).result.overloadViewerSeconds;
    expect(overloadAt('autoscaler-sim-')).toBeLessThan(overloadAt('cold-90s-'));
    expect(overloadAt('cold-90s-')).toBeLessThan(overloadAt('cold-180s-'));
    // Nothing ordered after the crowd began is ready before startupMs has passed.
    const cold = byFile('cold-180s-surprise-with-trend').result;
    expect(cold.firstScaleUpReadyMs! - CROWD_START_MS).toBeGreaterThanOrEqual(180_000);
  });

  it('drain: a pod ordered away keeps serving its viewers for the drain time while they move to the others; none is dropped', () => {
    let drainedWithViewers = 0;
    for (const run of runs) {
      const { points, decisions } = run.result;
      const at = (tMs: number) => points.find((p) => p.tMs === tMs)!;
      const downs = decisions.filter((d) => d.decision.action === 'down');
      expect(downs.length, run.file).toBeGreaterThan(0);
      for (const { tMs } of downs) {
        const during = points.filter((p) => p.tMs >= tMs && p.tMs < tMs + run.scenario.drainMs);
        expect(during.every((p) => p.drainingPods >= 1), `${run.file} at ${tMs / 1000} s`).toBe(true);
        // Its viewers (a pod the trend added late may have none) leave it step by step, not all at once.
        if (during[0]!.drainingConnections > 0) {
          drainedWithViewers++;
          for (let i = 1; i < during.length; i++) expect(during[i]!.drainingConnections).toBeLessThanOrEqual(during[i - 1]!.drainingConnections);
          expect(during.at(-1)!.drainingConnections).toBeLessThan(during[0]!.drainingConnections);
        }
        expect(at(tMs + run.scenario.drainMs).drainingPods).toBe(0);
      }
      // After the crowd has left, the fleet shrinks without leaving a viewer beyond the capacity.
      for (const p of points.filter((q) => q.tMs > CROWD_END_MS + 5 * 60_000)) expect(p.served, `${run.file} at ${p.tMs / 1000} s`).toBe(p.demand);
    }
    expect(drainedWithViewers).toBeGreaterThan(10);
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
