/** Heartbeats and the idle close, on a fake clock: a ping after heartbeatMs of silence, 4008 after the idle timeout. */
import { describe, expect, it } from 'vitest';
import { IdleConnections, pingDueMs } from '../../src/gateway/idle-connections.js';
import type { RoomcastError } from '../../src/shared/errors.js';
import type { Conn } from '../../src/gateway/uws-server.js';

function fakeConn(id: string, lastHeardMs: number): Conn & { pings: number; lastHeardMs: number } {
  return {
    id, lastHeardMs, pings: 0, closed: false, format: 'msgpack', identity: { uid: id, role: 'viewer', device: 'web' },
    ping() { this.pings++; },
    send: () => 'sent', subscribe: () => undefined, unsubscribe: () => undefined, bufferedBytes: () => 0, cork: (write) => write(),
    publishToOthers: () => false,
    end() { (this as { closed: boolean }).closed = true; },
  };
}

function setUp(conns: Conn[]) {
  let now = 0;
  const closed: Array<{ conn: Conn; error: RoomcastError }> = [];
  const idle = new IdleConnections({
    connections: () => conns, clock: { now: () => now },
    settings: { heartbeatMs: 30_000, idleTimeoutMs: 60_000 },
    close: (conn, error) => { closed.push({ conn, error }); conn.end(4008, error.code); },
  });
  return { idle, closed, at: (ms: number) => { now = ms; idle.sweep(); } };
}

describe('idle connections', () => {
  it('pings a connection once per silence, at its own point between heartbeatMs and 1.5 × heartbeatMs, and not one that was heard from', () => {
    const quiet = fakeConn('quiet', 0);
    const talker = fakeConn('talker', 0);
    const due = pingDueMs(quiet, 30_000);
    expect(due).toBeGreaterThanOrEqual(30_000);
    expect(due).toBeLessThan(45_000);
    const { at } = setUp([quiet, talker]);
    talker.lastHeardMs = due - 1;
    at(due - 1);
    expect(quiet.pings).toBe(0);
    at(due);
    expect(quiet.pings).toBe(1);
    expect(talker.pings).toBe(0);
    at(due + 10_000);
    expect(quiet.pings).toBe(1);
    // The pong came back: a new silence, a new ping when it is as old again.
    quiet.lastHeardMs = 50_000;
    at(50_000 + due - 1);
    expect(quiet.pings).toBe(1);
    at(50_000 + due);
    expect(quiet.pings).toBe(2);
  });

  it('spreads the pings of a crowd that went quiet together over half a heartbeat after the first', () => {
    const crowd = Array.from({ length: 10_000 }, (_, i) => fakeConn(`gw-1-${i.toString(36)}`, 0));
    const { at } = setUp(crowd);
    let pinged = 0;
    let largestPass = 0;
    for (let now = 0; now <= 45_000; now += 1000) {
      at(now);
      const total = crowd.reduce((sum, conn) => sum + conn.pings, 0);
      largestPass = Math.max(largestPass, total - pinged);
      pinged = total;
      if (now < 30_000) expect(total).toBe(0);
    }
    expect(pinged).toBe(10_000);
    // 15 passes share the crowd: none carries more than an eighth of it.
    expect(largestPass).toBeLessThanOrEqual(1250);
  });

  it('closes a connection silent for the idle timeout with idle_timeout (4008), and only that one', () => {
    const gone = fakeConn('gone', 0);
    const alive = fakeConn('alive', 0);
    const { at, closed } = setUp([gone, alive]);
    alive.lastHeardMs = 31_000;
    at(59_999);
    expect(closed).toEqual([]);
    at(60_000);
    expect(closed.map(({ conn }) => conn.id)).toEqual(['gone']);
    expect(closed[0]!.error.code).toBe('idle_timeout');
    expect(alive.closed).toBe(false);
  });

  it('sweeps every second, or every quarter of heartbeatMs when that is shorter', () => {
    const { idle } = setUp([]);
    expect(idle.sweepMs).toBe(1000);
  });
});
