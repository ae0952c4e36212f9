import { describe, expect, it } from 'vitest';
import { GatewayMetrics, MetricsRegistry } from '../../src/shared/metrics.js';
import { ConfigError } from '../../src/shared/errors.js';
import { PromTextError, parsePromText, sampleValue } from '../../src/autoscaler/prom-text.js';
import { CounterRates } from '../../src/autoscaler/rates.js';
import { fitLine, projectRise } from '../../src/autoscaler/trend.js';
import { activeEvents, parseSchedule } from '../../src/autoscaler/schedule.js';
import { parseCpuQuantity } from '../../src/autoscaler/k8s-client.js';
import { GatewayMetricsSource } from '../../src/autoscaler/metrics-source.js';
import { ReadyDelayEstimator } from '../../src/autoscaler/ready-delay.js';
import { silentLogger } from '../../src/shared/log.js';
import type { GatewayPod } from '../../src/autoscaler/cluster-api.js';

describe('Prometheus text parser', () => {
  it('reads what prom-client writes for a gateway', async () => {
    const registry = new MetricsRegistry();
    const gateway = new GatewayMetrics(registry);
    for (let i = 0; i < 7; i++) gateway.connectionOpened();
    gateway.connectionClosed();
    gateway.batchFlushed(3, 300, 4096, 0, 10);
    gateway.dropped('backpressure', 0, 2);
    const samples = parsePromText((await registry.render()).body);
    expect(sampleValue(samples, 'roomcast_gateway_connections')).toBe(6);
    expect(sampleValue(samples, 'roomcast_gateway_connections_opened_total')).toBe(7);
    expect(sampleValue(samples, 'roomcast_gateway_deliveries_total')).toBe(300);
    expect(sampleValue(samples, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(samples.find((s) => s.name === 'roomcast_gateway_dropped_deliveries_total')?.labels).toEqual({ reason: 'backpressure', priority: '0' });
    expect(sampleValue(samples, 'nodejs_eventloop_lag_p99_seconds')).not.toBeNull();
  });

  it('unescapes label values, reads special values and timestamps, sums label sets', () => {
    const samples = parsePromText([
      '# HELP x_total a counter',
      '# TYPE x_total counter',
      'x_total{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb"} 3 1700000000000',
      'x_total{path="other"} 4',
      'inf_gauge +Inf',
      'neg -Inf',
      'nan NaN',
      'nan_lower Nan',
      'sci 1.5e3',
      '',
    ].join('\n'));
    expect(samples[0]!.labels).toEqual({ path: 'C:\\dir', quote: 'say "hi"', nl: 'a\nb' });
    expect(sampleValue(samples, 'x_total')).toBe(7);
    expect(sampleValue(samples, 'inf_gauge')).toBe(Infinity);
    expect(sampleValue(samples, 'neg')).toBe(-Infinity);
    expect(sampleValue(samples, 'nan')).toBeNaN();
    expect(sampleValue(samples, 'nan_lower')).toBeNaN();
    expect(sampleValue(samples, 'sci')).toBe(1500);
    expect(sampleValue(samples, 'absent')).toBeNull();
  });

  it('rejects malformed lines with the line number', () => {
    expect(() => parsePromText('ok 1\nbad{x="1" 2')).toThrow(PromTextError);
    expect(() => parsePromText('ok 1\nbad{x="1"} two')).toThrow(/line 2: bad value 'two'/);
    expect(() => parsePromText('{x="1"} 1')).toThrow(/line 1: expected a metric name/);
    expect(() => parsePromText('name_only')).toThrow(/missing value/);
  });
});

describe('counter rates', () => {
  it('is the increase per second, null on the first sample', () => {
    const rates = new CounterRates();
    expect(rates.observe('a', 100, 0)).toBeNull();
    expect(rates.observe('a', 150, 5000)).toBe(10);
    expect(rates.observe('a', 150, 10_000)).toBe(0);
  });

  it('counts from zero after a restart (the counter went down)', () => {
    const rates = new CounterRates();
    rates.observe('a', 10_000, 0);
    expect(rates.observe('a', 40, 4000)).toBe(10);
    expect(rates.observe('a', 80, 8000)).toBe(10);
  });

  it('forgets counters of pods that are gone', () => {
    const rates = new CounterRates();
    rates.observe('p1/x', 1, 0);
    rates.observe('p2/x', 1, 0);
    rates.retainOnly((key) => key.startsWith('p1/'));
    expect(rates.size).toBe(1);
  });
});

describe('trend', () => {
  it('fits a least-squares line', () => {
    const line = fitLine([{ atMs: 0, value: 1 }, { atMs: 1000, value: 3 }, { atMs: 2000, value: 5 }, { atMs: 3000, value: 7.5 }])!;
    expect(line.slopePerSec).toBeCloseTo(2.15, 5);
    expect(line.valueAt(1500)).toBeCloseTo(4.125, 5);
    expect(fitLine([{ atMs: 5, value: 1 }])).toBeNull();
    expect(fitLine([{ atMs: 5, value: 1 }, { atMs: 5, value: 2 }])).toBeNull();
  });

  it('projects the steepest rising window from the last value, never a fall', () => {
    const flatThenSteep = [0, 5, 10, 15, 20, 25, 30].map((s) => ({ atMs: 1e12 + s * 1000, value: s <= 15 ? 100 : 100 + (s - 15) * 50 }));
    const projection = projectRise(flatThenSteep, [10_000, 60_000], 10_000)!;
    expect(projection.slopePerSec).toBeCloseTo(50, 5);
    expect(projection.value).toBeCloseTo(850 + 500, 5);
    const falling = [0, 5, 10].map((s) => ({ atMs: s * 1000, value: 1000 - s * 10 }));
    expect(projectRise(falling, [60_000], 10_000)).toEqual({ value: 900, slopePerSec: 0 });
    expect(projectRise(falling, [0], 10_000)).toBeNull();
    expect(projectRise(falling.slice(0, 2), [60_000], 10_000)).toBeNull();
  });
});

describe('schedule file', () => {
  it('parses events', () => {
    const events = parseSchedule('{"events":[{"name":"finals","start":"2026-12-01T19:00:00Z","end":"2026-12-01T22:00:00Z","expectedViewers":400000}]}');
    expect(events).toEqual([{ name: 'finals', startMs: Date.parse('2026-12-01T19:00:00Z'), endMs: Date.parse('2026-12-01T22:00:00Z'), expectedViewers: 400000 }]);
    const window = { leadMs: 600_000, holdMs: 900_000 };
    expect(activeEvents(events, Date.parse('2026-12-01T18:49:00Z'), window)).toEqual([]);
    expect(activeEvents(events, Date.parse('2026-12-01T18:51:00Z'), window)).toHaveLength(1);
    expect(activeEvents(events, Date.parse('2026-12-01T22:14:00Z'), window)).toHaveLength(1);
    expect(activeEvents(events, Date.parse('2026-12-01T22:16:00Z'), window)).toEqual([]);
  });

  it('reports every problem at once', () => {
    let error: unknown;
    try {
      parseSchedule('{"events":[{"name":"","start":"soon","end":"2026-12-01T22:00:00Z","expectedViewers":-1},{"name":"b","start":"2026-12-02T00:00:00Z","end":"2026-12-01T00:00:00Z","expectedViewers":5}]}', 'schedule.json');
    } catch (e) { error = e; }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'schedule.json: events[0].name must be a non-empty string',
      'schedule.json: events[0].start must be an ISO 8601 time',
      'schedule.json: events[0].expectedViewers must be a whole number ≥ 0',
      'schedule.json: events[1].end must be after start',
    ]);
    expect(() => parseSchedule('{"events": 3}')).toThrow(/expected \{"events"/);
    expect(() => parseSchedule('not json')).toThrow(/not valid JSON/);
  });
});

describe('pod figures', () => {
  it('reads CPU requests', () => {
    expect(parseCpuQuantity('500m')).toBeCloseTo(0.5);
    expect(parseCpuQuantity('2')).toBe(2);
    expect(parseCpuQuantity('0.25')).toBe(0.25);
    expect(parseCpuQuantity('250000u')).toBeCloseTo(0.25);
    expect(parseCpuQuantity('lots')).toBeNull();
  });

  it('turns two scrapes into rates, CPU against the request, and survives a restart', () => {
    let now = 0;
    const source = new GatewayMetricsSource({ defaultPort: 9090, timeoutMs: 100, clock: { now: () => now }, log: silentLogger });
    const pod = { uid: 'u1', cpuRequestCores: 0.5 };
    const scrape = (conns: number, opened: number, deliveries: number, cpu: number) => [
      `roomcast_gateway_connections ${conns}`, `roomcast_gateway_connections_opened_total ${opened}`,
      `roomcast_gateway_deliveries_total ${deliveries}`, `process_cpu_seconds_total ${cpu}`, 'nodejs_eventloop_lag_p99_seconds 0.012',
    ].join('\n');
    expect(source.figures(pod, scrape(10, 100, 1000, 50), now)).toEqual({ connections: 10, deliveriesPerSec: null, newConnectionsPerSec: null, cpuUtilization: null, lagP99S: 0.012 });
    now = 10_000;
    const second = source.figures(pod, scrape(20, 150, 6000, 52), now);
    expect(second).toMatchObject({ connections: 20, deliveriesPerSec: 500, newConnectionsPerSec: 5, lagP99S: 0.012 });
    expect(second.cpuUtilization).toBeCloseTo(0.4);
    now = 20_000;
    // The process restarted: counters start again from zero.
    const restarted = source.figures(pod, scrape(3, 30, 200, 1), now);
    expect(restarted).toMatchObject({ newConnectionsPerSec: 3, deliveriesPerSec: 20 });
    expect(restarted.cpuUtilization).toBeCloseTo(0.2);
    expect(() => source.figures(pod, 'process_cpu_seconds_total 1', now)).toThrow(/no roomcast_gateway_connections/);
  });
});

describe('ready delay', () => {
  const pod = (uid: string, createdMs: number, readySinceMs: number | null): GatewayPod => ({
    name: uid, uid, ip: '10.0.0.1', ready: readySinceMs !== null, terminating: false, createdMs, readySinceMs,
    cpuRequestCores: null, metricsPort: null, deletionCost: null,
  });

  it('is measured from creation to Ready, first value per pod, 90th percentile', () => {
    const estimator = new ReadyDelayEstimator();
    expect(estimator.estimateMs()).toBeNull();
    estimator.observe([pod('a', 0, 12_000), pod('b', 0, null), pod('c', 1000, 1000 + 20_000)]);
    expect(estimator.estimateMs()).toBe(20_000);
    // A later flap moves lastTransitionTime; the first measurement stands.
    estimator.observe([pod('c', 1000, 1000 + 500_000), pod('d', 0, 11 * 60_000)]);
    expect(estimator.estimateMs()).toBe(20_000);
  });
});

describe('schedule file on disk', () => {
  it('is re-read when it changes; a broken version keeps the last good one; a missing file means no events', async () => {
    const { mkdtempSync, writeFileSync, rmSync, utimesSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { ScheduleFile } = await import('../../src/autoscaler/schedule-file.js');
    const dir = mkdtempSync(join(tmpdir(), 'roomcast-schedule-'));
    const path = join(dir, 'schedule.json');
    let errors = 0;
    const file = new ScheduleFile(path, silentLogger, () => { errors++; });
    expect(file.current()).toEqual([]);
    const event = (name: string) => ({ events: [{ name, start: '2026-12-01T19:00:00Z', end: '2026-12-01T22:00:00Z', expectedViewers: 1000 }] });
    writeFileSync(path, JSON.stringify(event('semis')));
    expect(file.current().map((e) => e.name)).toEqual(['semis']);
    writeFileSync(path, '{"events": [{"name": "finals"');
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    expect(file.current().map((e) => e.name)).toEqual(['semis']);
    expect(errors).toBe(1);
    writeFileSync(path, JSON.stringify(event('finals')));
    utimesSync(path, new Date(), new Date(Date.now() + 10_000));
    expect(file.current().map((e) => e.name)).toEqual(['finals']);
    rmSync(dir, { recursive: true, force: true });
    expect(file.current()).toEqual([]);
  });
});
