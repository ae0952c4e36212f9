/**
 * Heartbeats and the idle timeout (docs/protocol.md 6.11). A connection from which nothing has come
 * for between `heartbeatMs` and one and a half times it gets a WebSocket ping (every client library
 * answers it); one from which nothing has come for `idleTimeoutMs` gets `error idle_timeout` and
 * close 4008, so its client knows why. Each connection has its own point in that range: a crowd that
 * connected (or answered its pings) together is pinged over many passes, not in one burst of a socket
 * write per connection that holds every room's writes behind it. One pass over the connections every
 * `sweepMs` reads a number per connection: no timer per connection, no call into uWS for a connection
 * that is not due.
 */
import type { Clock } from '../shared/clock.js';
import { fail } from '../shared/errors.js';
import type { Conn } from './uws-server.js';

export interface IdleSettings {
  heartbeatMs: number;
  idleTimeoutMs: number;
}

export interface IdleDeps {
  connections: () => Iterable<Conn>;
  clock: Clock;
  settings: IdleSettings;
  /** Sends the error frame and closes with its close code. */
  close: (conn: Conn, error: ReturnType<typeof fail.idle_timeout>) => void;
}

/** Passes per heartbeat: a ping goes out at most heartbeatMs / SWEEPS_PER_HEARTBEAT late, */
const SWEEPS_PER_HEARTBEAT = 4;
/** and at most a second late, so that the spread pings go out in small groups. */
const MAX_SWEEP_MS = 1000;
/**
 * Pings are spread over PING_SPREAD of a heartbeat after the first heartbeat of silence. A client that
 * keeps its own heartbeat (the SDK, docs/protocol.md 6.11) is heard from before that and never pinged:
 * keepalive costs a socket write per connection per silence, so it is not paid twice.
 */
const PING_SPREAD = 0.5;

/** How long a connection may be silent before it is pinged: its own point in [heartbeatMs, 1.5 × heartbeatMs). */
export function pingDueMs(conn: Pick<Conn, 'id'>, heartbeatMs: number): number {
  return Math.floor(heartbeatMs * (1 + PING_SPREAD * phaseOf(conn.id)));
}

/** A number in [0, 1) fixed by the connection id (FNV-1a): consecutive ids land far apart. */
function phaseOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  return (hash >>> 0) / 2 ** 32;
}

export class IdleConnections {
  private timer: NodeJS.Timeout | null = null;
  /** Connections pinged since they were last heard from: pinged once per silence, not every pass. */
  private readonly pinged = new WeakMap<Conn, number>();

  constructor(private readonly deps: IdleDeps) {}

  /** The pass interval; the idle close comes at most this late. */
  get sweepMs(): number {
    return Math.max(250, Math.min(MAX_SWEEP_MS, Math.floor(this.deps.settings.heartbeatMs / SWEEPS_PER_HEARTBEAT)));
  }

  start(): void {
    this.timer ??= setInterval(() => this.sweep(), this.sweepMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  sweep(): void {
    const { heartbeatMs, idleTimeoutMs } = this.deps.settings;
    const now = this.deps.clock.now();
    for (const conn of this.deps.connections()) {
      const silentMs = now - conn.lastHeardMs;
      if (silentMs < heartbeatMs || conn.closed) continue;
      if (silentMs >= idleTimeoutMs) {
        this.deps.close(conn, fail.idle_timeout(Math.round(silentMs / 1000)));
      } else if (this.pinged.get(conn) !== conn.lastHeardMs && silentMs >= pingDueMs(conn, heartbeatMs)) {
        this.pinged.set(conn, conn.lastHeardMs);
        conn.ping();
      }
    }
  }
}
