/**
 * The bench's efficiency report (bench/lib/report.mjs) and the order its systems run in
 * (bench/scenarios/systems.mjs): the limit peers replay Roomcast's frames, so they run after it.
 */
import { describe, expect, it } from 'vitest';
import { efficiency, efficiencyOverRounds, roomcastStepsOfRound, spread, writePathUs, type EfficiencyRow, type StepFigures } from '../../bench/lib/report.mjs';
import { runOrder } from '../../bench/scenarios/systems.mjs';
import { parsePerfStat } from '../../bench/lib/syscall-count.mjs';

function step(rateMsgPerS: number, serverCpuNsPerDelivery: number, loadCoreSaturated = false): StepFigures {
  return { rateMsgPerS, serverCpuNsPerDelivery, deliveredPerS: rateMsgPerS * 1000, framesPerS: 20_000, withinBounds: true, loadCoreSaturated };
}

describe('efficiency (bench report)', () => {
  it('divides Roomcast\'s ns/delivery by the limit peer\'s, and by the limit peer + sends\' where it ran', () => {
    const rows = efficiency({
      targets: [
        { target: 'roomcast', steps: [step(1000, 300), step(3000, 130)] },
        { target: 'limit', steps: [step(1000, 200), step(3000, 100)] },
        { target: 'limit-sends', steps: [step(1000, 250), step(3000, 104, true)] },
      ],
    });
    expect(rows).toMatchObject([
      { rateMsgPerS: 1000, roomcastNsPerDelivery: 300, limitNsPerDelivery: 200, ratio: 1.5, limitSendsNsPerDelivery: 250, ratioToLimitSends: 1.2, saturated: false },
      { rateMsgPerS: 3000, ratio: 1.3, limitSendsNsPerDelivery: 104, ratioToLimitSends: 1.25, saturated: true },
    ]);
  });

  it('leaves the second ratio out when only the limit peer ran, and the rates it did not run', () => {
    const rows = efficiency({
      targets: [
        { target: 'roomcast', steps: [step(1000, 300), step(3000, 130)] },
        { target: 'limit', steps: [step(1000, 200)] },
      ],
    });
    expect(rows).toHaveLength(1);
    expect(rows?.[0]).not.toHaveProperty('ratioToLimitSends');
    expect(efficiency({ targets: [{ target: 'roomcast', steps: [step(1000, 300)] }] })).toBeNull();
  });

  it('carries each system\'s socket writes per delivery where they were counted, and null where not', () => {
    const counted = (figures: StepFigures, writesPerDelivery: number): StepFigures =>
      ({ ...figures, serverSyscalls: { writesPerS: 0, readsPerS: 0, pollsPerS: 0, writesPerDelivery } });
    const rows = efficiency({
      targets: [
        { target: 'roomcast', steps: [counted(step(1000, 300), 0.06)] },
        { target: 'limit', steps: [counted(step(1000, 200), 0.05)] },
        { target: 'limit-sends', steps: [step(1000, 250)] },
      ],
    });
    expect(rows?.[0]).toMatchObject({ roomcastWritesPerDelivery: 0.06, limitWritesPerDelivery: 0.05, limitSendsWritesPerDelivery: null });
  });

  it('carries the kernel\'s share of each system\'s ns/delivery, and null where a step has none', () => {
    const rows = efficiency({
      targets: [
        { target: 'roomcast', steps: [{ ...step(1000, 300), serverKernelNsPerDelivery: 240 }] },
        { target: 'limit', steps: [{ ...step(1000, 200), serverKernelNsPerDelivery: 180 }] },
        { target: 'limit-sends', steps: [step(1000, 250)] },
      ],
    });
    expect(rows?.[0]).toMatchObject({ roomcastKernelNsPerDelivery: 240, limitKernelNsPerDelivery: 180, limitSendsKernelNsPerDelivery: null });
  });
});

describe('parsePerfStat (bench syscall counts)', () => {
  it('sums the tracepoints into writes, reads and polls, skipping what perf could not count', () => {
    const output = [
      '20951,,syscalls:sys_enter_sendto,5001234,100.00,,',
      '3,,syscalls:sys_enter_write,5001234,100.00,,',
      '0,,syscalls:sys_enter_writev,5001234,100.00,,',
      '1289,,syscalls:sys_enter_recvfrom,5001234,100.00,,',
      '<not counted>,,syscalls:sys_enter_read,0,0.00,,',
      '1766,,syscalls:sys_enter_epoll_pwait,5001234,100.00,,',
      '',
    ].join('\n');
    expect(parsePerfStat(output)).toEqual({ writes: 20954, reads: 1289, polls: 1766 });
    expect(parsePerfStat('perf: not found\n')).toBeNull();
  });
});

describe('efficiency over rounds (bench report, --rounds)', () => {
  // Roomcast's and the limit peer's ns/delivery as the ratio says; the limit peer + sends' as its ratio says.
  function row(rateMsgPerS: number, ratio: number, ratioToLimitSends?: number, saturated = false): EfficiencyRow {
    const sends = ratioToLimitSends === undefined ? {} : { ratioToLimitSends, limitSendsNsPerDelivery: (100 * ratio) / ratioToLimitSends };
    return { rateMsgPerS, roomcastNsPerDelivery: 100 * ratio, limitNsPerDelivery: 100, ratio, roomcastWritesPerDelivery: null, limitWritesPerDelivery: null, roomcastKernelNsPerDelivery: null, limitKernelNsPerDelivery: null, saturated, ...sends };
  }

  it('takes the median of an odd count, the mean of the middle two of an even one, and leaves nulls out', () => {
    expect(spread([1.5, 1.1, 1.3])).toEqual({ median: 1.3, min: 1.1, max: 1.5 });
    expect(spread([1.4, null, 1.2, 1.1, 1.6])).toEqual({ median: expect.closeTo(1.3, 9), min: 1.1, max: 1.6 });
    expect(spread([null, undefined])).toBeNull();
  });

  it('lines up each rate over the rounds, with a null where a round stopped before it', () => {
    const rows = efficiencyOverRounds([
      { efficiency: [row(1000, 1.5, 1.2), row(3000, 1.2, 1.1, true)] },
      { efficiency: [row(1000, 1.3, 1.0)] },
      { efficiency: [row(1000, 1.9, 1.4), row(3000, 1.4, 1.3)] },
    ]);
    expect(rows).toEqual([
      { rateMsgPerS: 1000, ratios: [1.5, 1.3, 1.9], ratio: { median: 1.5, min: 1.3, max: 1.9 }, ratiosToLimitSends: [1.2, 1.0, 1.4], ratioToLimitSends: { median: 1.2, min: 1.0, max: 1.4 },
        limitSendsOverLimit: { median: expect.closeTo(1.3, 9), min: expect.closeTo(1.25, 9), max: expect.closeTo(1.357, 3) }, saturatedRounds: 0 },
      { rateMsgPerS: 3000, ratios: [1.2, null, 1.4], ratio: { median: expect.closeTo(1.3, 9), min: 1.2, max: 1.4 }, ratiosToLimitSends: [1.1, null, 1.3], ratioToLimitSends: { median: expect.closeTo(1.2, 9), min: 1.1, max: 1.3 },
        limitSendsOverLimit: { median: expect.closeTo(1.0839, 3), min: expect.closeTo(1.0769, 3), max: expect.closeTo(1.0909, 3) }, saturatedRounds: 1 },
    ]);
  });

  it('has no second ratio when no round ran the limit peer + sends, and no rows without efficiency', () => {
    const rows = efficiencyOverRounds([{ efficiency: [row(500, 1.4)] }, { efficiency: [row(500, 1.6)] }]);
    expect(rows?.[0]).not.toHaveProperty('ratioToLimitSends');
    expect(rows?.[0]?.ratio).toEqual({ median: expect.closeTo(1.5, 9), min: 1.4, max: 1.6 });
    expect(efficiencyOverRounds([{ efficiency: null }, { efficiency: null }])).toBeNull();
  });
});

describe('Roomcast\'s steps in a round (bench report, --rounds)', () => {
  it('sums the room service, NATS and Redis as the write path, and has none without all three', () => {
    expect(writePathUs({ gateway: 257, 'room-service': 29, 'nats-server': 7, 'redis-server': 29, total: 322 })).toBe(65);
    expect(writePathUs({ gateway: 300, total: 300 })).toBeNull();
    expect(writePathUs(null)).toBeNull();
  });

  it('keeps each step\'s rate, p99, bounds and write path, of Roomcast only', () => {
    const steps = roomcastStepsOfRound({
      targets: [
        { target: 'ws', steps: [{ rateMsgPerS: 1000, latency: { p99Ms: 4 }, withinBounds: true }] },
        { target: 'roomcast', steps: [
          { rateMsgPerS: 1000, latency: { p99Ms: 21 }, withinBounds: true, cpuUsPerMessage: { gateway: 372, 'room-service': 77, 'nats-server': 22, 'redis-server': 42, total: 513 } },
          { rateMsgPerS: 2000, latency: { p99Ms: 101 }, withinBounds: false },
        ] },
      ],
    });
    expect(steps).toEqual([
      { rateMsgPerS: 1000, p99Ms: 21, withinBounds: true, writePathUs: 141 },
      { rateMsgPerS: 2000, p99Ms: 101, withinBounds: false, writePathUs: null },
    ]);
  });
});

describe('runOrder (bench systems)', () => {
  it('runs the limit peers right after Roomcast, the plain one first', () => {
    expect(runOrder(['ws', 'limit-sends', 'roomcast', 'limit', 'socketio'])).toEqual(['ws', 'roomcast', 'limit', 'limit-sends', 'socketio']);
    expect(runOrder(['limit', 'ws'])).toEqual(['limit', 'ws']);
  });
});
