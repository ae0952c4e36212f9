/**
 * The bench's efficiency report (bench/lib/report.mjs) and the order its systems run in
 * (bench/scenarios/systems.mjs): the limit peers replay Roomcast's frames, so they run after it.
 */
import { describe, expect, it } from 'vitest';
import { efficiency, type StepFigures } from '../../bench/lib/report.mjs';
import { runOrder } from '../../bench/scenarios/systems.mjs';

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
});

describe('runOrder (bench systems)', () => {
  it('runs the limit peers right after Roomcast, the plain one first', () => {
    expect(runOrder(['ws', 'limit-sends', 'roomcast', 'limit', 'socketio'])).toEqual(['ws', 'roomcast', 'limit', 'limit-sends', 'socketio']);
    expect(runOrder(['limit', 'ws'])).toEqual(['limit', 'ws']);
  });
});
