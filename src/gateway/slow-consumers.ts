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
 * The check runs on a timer, never per message, and asks uWS for at most CHECKS_PER_TICK buffered
 * amounts per tick, however many connections there are (each ask costs, and a sweep of every
 * connection was a fifth of the gateway at 10,000): first the connections found with a backlog
 * before, then the next ones of a sweep that goes on where the last tick stopped. Up to 10,000
 * connections each is looked at within 2 s (4 ticks); more take proportionally longer. uWS itself
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
  /** Buffered amounts asked of uWS per tick (default CHECKS_PER_TICK). */
  checksPerTick?: number;
}

/** How often the policy runs. */
export const SLOW_CONSUMER_CHECK_MS = 500;
/** The most buffered amounts one tick asks uWS for. */
export const CHECKS_PER_TICK = 2500;
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
  /** Connections with a backlog: looked at first on every tick (in turns, when more than a tick's budget). */
  private readonly backlogged = new Set<Conn>();
  /** Where the sweep of all connections goes on next tick; null: start a new pass. */
  private cursor: Iterator<Conn> | null = null;
  private readonly turn: Conn[] = [];
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

  /** One tick of the policy: the backlogged connections, then the sweep, within the tick's budget. */
  check(): void {
    const now = this.deps.clock.now();
    let budget = this.deps.settings.checksPerTick ?? CHECKS_PER_TICK;
    // The backlogged ones taking their turn move to the end, so that beyond the budget each gets one.
    const turn = this.turn;
    for (const conn of this.backlogged) {
      if (turn.length === budget) break;
      turn.push(conn);
    }
    for (const conn of turn) {
      this.backlogged.delete(conn);
      this.backlogged.add(conn);
      this.inspect(conn, now);
    }
    budget -= turn.length;
    turn.length = 0;
    // Skipping a backlogged connection asks uWS nothing; the steps stay bounded all the same.
    for (let steps = budget + this.backlogged.size; budget > 0 && steps > 0; steps--) {
      this.cursor ??= this.deps.connections()[Symbol.iterator]();
      const next = this.cursor.next();
      if (next.done) {
        // A pass ends with its tick; the next starts over, so no connection is looked at twice in a tick.
        this.cursor = null;
        break;
      }
      if (this.backlogged.has(next.value)) continue;
      budget--;
      this.inspect(next.value, now);
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
