/**
 * The per-connection backpressure policy. A slow consumer never slows a room down; it loses what
 * matters least first:
 *
 * 1. buffered ≥ `limitBytes`: the connection is degraded: it gets its rooms' high-priority messages
 *    only (RoomFanout moves it to the high-priority topics; the chat it misses is counted).
 * 2. buffered < `limitBytes / 4` again: it is restored to the full stream.
 * 3. still behind after `graceMs`, or buffered ≥ 4 × `limitBytes` at any time: closed with 4009
 *    (`slow_consumer`); the client reconnects and recovers from history with lastSeq.
 *
 * The check runs on a timer, never per message, and asks uWS for few buffered amounts (with many
 * connections each ask costs): every tick it looks at the connections found with a backlog before
 * and at one slice of all the others, so every connection is looked at within SWEEP_SLICES ticks. uWS itself
 * is set to close (not silently skip) a connection at a still higher limit, so no message is ever
 * dropped without being counted.
 */
import type { Clock } from '../shared/clock.js';
import { closeCodeOf } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { GatewayMetrics } from '../shared/metrics.js';
import type { Conn } from './uws-server.js';

export interface SlowConsumerSettings {
  /** Buffered bytes at which a connection is degraded. */
  limitBytes: number;
  /** How long a degraded connection may stay behind before it is closed. */
  graceMs: number;
}

/** How often the policy runs. */
export const SLOW_CONSUMER_CHECK_MS = 500;
/** Every connection is looked at once per this many ticks (2 s). */
export const SWEEP_SLICES = 4;
/** Buffered bytes, as multiples of the limit, at which a connection is closed at once. */
export const CLOSE_AT_LIMITS = 4;
/**
 * uWS's own limit: past it uWS closes the connection rather than skip messages. Far above ours, so
 * that our policy acts first even when one batch frame is larger than our limit.
 */
export function uwsBackpressureLimit(limitBytes: number): number {
  return Math.min(2 ** 31 - 1, Math.max(8 * limitBytes, UWS_MIN_LIMIT_BYTES));
}
const UWS_MIN_LIMIT_BYTES = 64 * 1024 * 1024;
const RESTORE_BELOW_FRACTION = 0.25;

export interface Degradable {
  setDegraded(conn: Conn, degraded: boolean): void;
}

export interface SlowConsumerDeps {
  connections: () => Iterable<Conn>;
  fanout: Degradable;
  clock: Clock;
  log: Logger;
  metrics: GatewayMetrics;
  settings: SlowConsumerSettings;
}

export class SlowConsumers {
  /** Degraded connections and since when. */
  private readonly degradedSince = new Map<Conn, number>();
  /** Connections with a backlog: looked at on every tick. */
  private readonly backlogged = new Set<Conn>();
  private tick = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: SlowConsumerDeps) {}

  start(): void {
    this.timer = setInterval(() => this.check(), SLOW_CONSUMER_CHECK_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  forget(conn: Conn): void {
    this.degradedSince.delete(conn);
    this.backlogged.delete(conn);
  }

  /** One tick of the policy: the backlogged connections and this tick's slice of the others. */
  check(): void {
    const slice = this.tick++ % SWEEP_SLICES;
    const now = this.deps.clock.now();
    let index = 0;
    for (const conn of this.deps.connections()) {
      if (index++ % SWEEP_SLICES === slice || this.backlogged.has(conn)) this.inspect(conn, now);
    }
  }

  private inspect(conn: Conn, now: number): void {
    const { limitBytes, graceMs } = this.deps.settings;
    const buffered = conn.bufferedBytes();
    const since = this.degradedSince.get(conn);
    if (buffered >= RESTORE_BELOW_FRACTION * limitBytes) this.backlogged.add(conn);
    else if (since === undefined) this.backlogged.delete(conn);
    if (buffered >= CLOSE_AT_LIMITS * limitBytes || (since !== undefined && now - since >= graceMs && buffered >= RESTORE_BELOW_FRACTION * limitBytes)) {
      this.close(conn, buffered);
    } else if (since === undefined && buffered >= limitBytes) {
      this.degradedSince.set(conn, now);
      this.deps.fanout.setDegraded(conn, true);
      this.deps.metrics.slowConsumer('degraded');
    } else if (since !== undefined && buffered < RESTORE_BELOW_FRACTION * limitBytes) {
      this.degradedSince.delete(conn);
      this.deps.fanout.setDegraded(conn, false);
      this.deps.metrics.slowConsumer('restored');
    }
  }

  private close(conn: Conn, buffered: number): void {
    this.forget(conn);
    this.deps.metrics.slowConsumer('closed');
    this.deps.metrics.errorSent('slow_consumer');
    this.deps.log.info('closing a slow consumer', { conn: conn.id, bufferedBytes: buffered });
    conn.end(closeCodeOf('slow_consumer')!, 'slow_consumer');
  }
}
