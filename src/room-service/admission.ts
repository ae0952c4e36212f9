/**
 * The room service's bounded queue. A replica that cannot keep up answers `overloaded` with a retry
 * hint at once, instead of letting requests wait out the gateway's timeout while they pile up:
 * - at most `maxPending` requests in progress (they wait on Redis: a slow or stopped store fills it);
 *   a batch of sends counts each send, and is taken on or refused as a whole (its one reply must
 *   not wait for what was taken on to say what was not);
 * - none taken on while the event loop runs more than `maxLoopLagMs` late (the process is short of
 *   CPU: what waits in the socket buffer would be answered too late to matter).
 * The refusal costs a few microseconds and no decode, so a saturated replica sheds rather than sinks.
 */
import { fail, type RoomcastError } from '../shared/errors.js';
import type { AdmissionGate } from '../shared/bus/rpc.js';
import type { RoomServiceMetrics } from '../shared/metrics.js';

export interface AdmissionSettings {
  maxPending: number;
  maxLoopLagMs: number;
}

/** How often the event loop's lateness is sampled. */
const LAG_SAMPLE_MS = 20;
/** Weight of the newest sample: a single long GC pause does not shed, a sustained lag does. */
const LAG_SMOOTHING = 0.3;
const MIN_RETRY_AFTER_MS = 250;
const MAX_RETRY_AFTER_MS = 5000;

export class Admission implements AdmissionGate {
  private pending = 0;
  private lagMs = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly settings: AdmissionSettings, private readonly metrics: RoomServiceMetrics) {}

  start(): void {
    let expected = performance.now() + LAG_SAMPLE_MS;
    this.timer ??= setInterval(() => {
      const now = performance.now();
      this.observeLag(Math.max(0, now - expected));
      expected = now + LAG_SAMPLE_MS;
    }, LAG_SAMPLE_MS).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Feeds one sample of the event loop's lateness, in ms (the timer does; tests may too). */
  observeLag(sampleMs: number): void {
    this.lagMs = this.lagMs * (1 - LAG_SMOOTHING) + sampleMs * LAG_SMOOTHING;
  }

  admit(weight = 1): RoomcastError | null {
    const { maxPending, maxLoopLagMs } = this.settings;
    // An idle replica takes on a batch larger than the queue: it could never be taken on otherwise.
    if (this.pending > 0 && this.pending + weight > maxPending) return this.refuse('queue_full');
    if (maxLoopLagMs > 0 && this.lagMs > maxLoopLagMs) return this.refuse('loop_lag');
    this.pending += weight;
    this.metrics.pendingRequests(this.pending);
    return null;
  }

  done(weight = 1): void {
    this.pending -= weight;
    this.metrics.pendingRequests(this.pending);
  }

  private refuse(reason: 'queue_full' | 'loop_lag'): RoomcastError {
    this.metrics.requestRefused(reason);
    // Long enough for the backlog to clear: the longer the loop lags, the longer clients wait.
    const retryAfterMs = Math.round(Math.min(MAX_RETRY_AFTER_MS, Math.max(MIN_RETRY_AFTER_MS, 4 * this.lagMs)));
    return fail.overloaded(retryAfterMs);
  }
}
