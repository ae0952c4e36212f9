/** The room service's bounded queue: refusals with a retry hint, by pending count and by event-loop lag. */
import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/room-service/admission.js';
import { MetricsRegistry, RoomServiceMetrics } from '../../src/shared/metrics.js';

function setUp(settings = { maxPending: 2, maxLoopLagMs: 100 }) {
  const registry = new MetricsRegistry();
  const admission = new Admission(settings, new RoomServiceMetrics(registry));
  const sample = async (name: string) => {
    const text = (await registry.render()).body;
    return text.split('\n').filter((line) => line.startsWith(name)).join('\n');
  };
  return { admission, sample };
}

describe('admission', () => {
  it('takes on maxPending requests, refuses the next with overloaded and a retry hint, and takes one on again when one is done', async () => {
    const { admission, sample } = setUp();
    expect(admission.admit()).toBeNull();
    expect(admission.admit()).toBeNull();
    const refusal = admission.admit();
    expect(refusal?.code).toBe('overloaded');
    expect(refusal?.retryAfterMs).toBeGreaterThanOrEqual(250);
    expect(await sample('roomcast_room_pending_requests')).toContain('roomcast_room_pending_requests 2');
    expect(await sample('roomcast_room_requests_refused_total')).toContain('reason="queue_full"} 1');
    admission.done();
    expect(admission.admit()).toBeNull();
  });

  it('refuses while the event loop lags more than maxLoopLagMs, with a longer hint the longer it lags, and not after one pause', () => {
    const { admission } = setUp({ maxPending: 1000, maxLoopLagMs: 100 });
    admission.observeLag(300);
    expect(admission.admit()).toBeNull();
    for (let i = 0; i < 10; i++) admission.observeLag(400);
    const refusal = admission.admit();
    expect(refusal?.code).toBe('overloaded');
    expect(refusal!.retryAfterMs).toBeGreaterThan(1000);
    for (let i = 0; i < 30; i++) admission.observeLag(0);
    expect(admission.admit()).toBeNull();
  });

  it('counts a batch by its weight and takes it on or refuses it as a whole; an idle replica takes on even a batch over the limit', () => {
    const { admission } = setUp({ maxPending: 10, maxLoopLagMs: 100 });
    expect(admission.admit(6)).toBeNull();
    expect(admission.admit(5)?.code).toBe('overloaded');
    expect(admission.admit(4)).toBeNull();
    expect(admission.admit(1)?.code).toBe('overloaded');
    admission.done(6);
    admission.done(4);
    expect(admission.admit(25)).toBeNull();
    expect(admission.admit(1)?.code).toBe('overloaded');
  });

  it('never sheds on lag when maxLoopLagMs is 0', () => {
    const { admission } = setUp({ maxPending: 1000, maxLoopLagMs: 0 });
    for (let i = 0; i < 10; i++) admission.observeLag(5000);
    expect(admission.admit()).toBeNull();
  });
});
