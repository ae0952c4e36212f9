/**
 * When the delivery repair runs: only while its room service handles private messages and for one
 * full pass over the outbox after the last of them is past the grace; never in an idle fleet.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/shared/log.js';
import { DeliveryRepair, SendActivity } from '../../src/room-service/delivery-repair.js';

const GRACE_MS = 5_000;
const INTERVAL_MS = 1_000;
const ROUNDS_PER_PASS = 4;

describe('delivery repair rounds', () => {
  beforeEach(() => { vi.useFakeTimers({ now: 1_700_000_000_000 }); });
  afterEach(() => { vi.useRealTimers(); });

  it('make no round when idle, and a full pass after the last send once it is due', async () => {
    const activity = new SendActivity();
    const repairDeliveries = vi.fn(async () => 0);
    const repair = new DeliveryRepair({
      chat: { repairDeliveries }, activity, clock: { now: () => Date.now() }, log: silentLogger,
      roundsPerPass: ROUNDS_PER_PASS, graceMs: GRACE_MS, intervalMs: INTERVAL_MS,
    });
    repair.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(repairDeliveries).not.toHaveBeenCalled();

    activity.note(Date.now());
    // Rounds while the send is within its grace, then a full pass.
    await vi.advanceTimersByTimeAsync(GRACE_MS + INTERVAL_MS);
    const duringGrace = repairDeliveries.mock.calls.length;
    expect(duringGrace).toBe((GRACE_MS + INTERVAL_MS) / INTERVAL_MS);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(repairDeliveries.mock.calls.length).toBe(duringGrace + ROUNDS_PER_PASS - 1);
    expect(repairDeliveries).toHaveBeenCalledWith(GRACE_MS, expect.any(Number));
    await repair.stop();
  });
});
