/** Heartbeats and the idle close, on a fake clock: a ping after heartbeatMs of silence, 4008 after the idle timeout. */
import { describe, expect, it } from 'vitest';
import { IdleConnections } from '../../src/gateway/idle-connections.js';
import type { RoomcastError } from '../../src/shared/errors.js';
import type { Conn } from '../../src/gateway/uws-server.js';

function fakeConn(id: string, lastHeardMs: number): Conn & { pings: number; lastHeardMs: number } {
  return {
    id, lastHeardMs, pings: 0, closed: false, format: 'msgpack', identity: { uid: id, role: 'viewer', device: 'web' },
    ping() { this.pings++; },
    send: () => 'sent', subscribe: () => undefined, unsubscribe: () => undefined, bufferedBytes: () => 0,
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
  it('pings a connection once per silence of heartbeatMs, and not one that was heard from', () => {
    const quiet = fakeConn('quiet', 0);
    const talker = fakeConn('talker', 0);
    const { at } = setUp([quiet, talker]);
    at(29_999);
    expect(quiet.pings).toBe(0);
    talker.lastHeardMs = 29_000;
    at(30_000);
    expect(quiet.pings).toBe(1);
    expect(talker.pings).toBe(0);
    at(45_000);
    expect(quiet.pings).toBe(1);
    // The pong came back: a new silence, a new ping when it is heartbeatMs old.
    quiet.lastHeardMs = 46_000;
    at(75_000);
    expect(quiet.pings).toBe(1);
    at(76_000);
    expect(quiet.pings).toBe(2);
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

  it('sweeps often enough that a ping is at most a quarter of heartbeatMs late', () => {
    const { idle } = setUp([]);
    expect(idle.sweepMs).toBe(7_500);
  });
});
