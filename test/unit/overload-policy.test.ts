/**
 * The overload policy's decisions: which chat the room budget keeps (the same on every gateway), and
 * what happens to a connection that falls behind.
 */
import { describe, expect, it } from 'vitest';
import { ChatSampler, RATE_WINDOW } from '../../src/gateway/chat-sampler.js';
import { SlowConsumers, CHECKS_PER_TICK, CLOSE_AT_LIMITS } from '../../src/gateway/slow-consumers.js';
import { MetricsRegistry, GatewayMetrics } from '../../src/shared/metrics.js';
import { silentLogger } from '../../src/shared/log.js';
import { PRIORITY_HIGH, PRIORITY_LOW, type Priority } from '../../src/shared/protocol/frames.js';
import type { Conn } from '../../src/gateway/uws-server.js';

interface StreamMessage { seq: number; ts: number; prio: Priority }

/** A room stream at `ratePerSec`, every tenth message a gift. */
function stream(count: number, ratePerSec: number, startTs = 1_000_000): StreamMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    seq: i + 1, ts: startTs + Math.floor((i * 1000) / ratePerSec), prio: i % 10 === 9 ? PRIORITY_HIGH : PRIORITY_LOW,
  }));
}

function keptSeqs(sampler: ChatSampler, messages: StreamMessage[]): number[] {
  const kept: number[] = [];
  for (const message of messages) {
    sampler.observe(message);
    if (sampler.keep(message)) kept.push(message.seq);
  }
  return kept;
}

describe('the room downlink budget', () => {
  it('keeps everything while the room is under its budget', () => {
    const messages = stream(500, 40);
    expect(keptSeqs(new ChatSampler(50), messages)).toEqual(messages.map((m) => m.seq));
  });

  it('above the budget keeps every high-priority message and about budget/rate of the chat', () => {
    const messages = stream(4000, 1000);
    const kept = new Set(keptSeqs(new ChatSampler(100), messages));
    for (const message of messages) if (message.prio === PRIORITY_HIGH) expect(kept.has(message.seq)).toBe(true);
    const measured = messages.slice(RATE_WINDOW);
    const keptChat = measured.filter((m) => m.prio === PRIORITY_LOW && kept.has(m.seq)).length;
    const chat = measured.filter((m) => m.prio === PRIORITY_LOW).length;
    expect(keptChat / chat).toBeGreaterThan(0.08);
    expect(keptChat / chat).toBeLessThan(0.12);
  });

  it('makes the same choices on a gateway that opened the room later, once it has a rate window', () => {
    const messages = stream(3000, 800);
    const early = keptSeqs(new ChatSampler(100), messages);
    // A gateway that opens the room at seq 1000 starts from history: the 200 messages before it.
    const late = new ChatSampler(100);
    for (const message of messages.slice(800, 1000)) late.observe(message);
    const lateKept = keptSeqs(late, messages.slice(1000));
    expect(lateKept).toEqual(early.filter((seq) => seq > 1000));
  });

  it('keeps chat while it cannot know the rate, and a budget of 0 keeps everything', () => {
    const messages = stream(RATE_WINDOW, 10_000);
    expect(keptSeqs(new ChatSampler(10), messages)).toHaveLength(RATE_WINDOW);
    expect(keptSeqs(new ChatSampler(0), stream(1000, 10_000))).toHaveLength(1000);
  });
});

class FakeConn {
  bufferedAmount = 0;
  closedWith: number | null = null;
  /** How often the policy asked for the buffered amount. */
  asked = 0;
  constructor(readonly id: string) {}
  get closed(): boolean { return this.closedWith !== null; }
  bufferedBytes(): number { this.asked++; return this.bufferedAmount; }
  end(code: number): void { this.closedWith = code; }
}

describe('slow consumers', () => {
  const LIMIT = 64 * 1024;
  const setup = (checksPerTick?: number, count = 2) => {
    let now = 0;
    const conns = Array.from({ length: count }, (_, i) => new FakeConn(i < 26 ? String.fromCharCode(97 + i) : `c${i}`));
    const degradedChanges: Array<[string, boolean]> = [];
    const registry = new MetricsRegistry();
    const policy = new SlowConsumers({
      connections: () => conns.filter((c) => !c.closed) as unknown as Conn[],
      fanout: { setDegraded: (conn, degraded) => degradedChanges.push([conn.id, degraded]) },
      clock: { now: () => now }, log: silentLogger, metrics: new GatewayMetrics(registry),
      settings: { limitBytes: LIMIT, graceMs: 5000, ...(checksPerTick === undefined ? {} : { checksPerTick }) },
    });
    /** A tick that looks at every connection (they are fewer than a tick's budget). */
    const sweep = () => policy.check();
    return { conns, degradedChanges, policy, sweep, registry, advance: (ms: number) => { now += ms; } };
  };

  it('degrades a connection past the limit, and restores it once it has caught up', async () => {
    const { conns, degradedChanges, sweep, registry } = setup();
    conns[0]!.bufferedAmount = LIMIT;
    sweep();
    expect(degradedChanges).toEqual([['a', true]]);
    conns[0]!.bufferedAmount = LIMIT / 2;
    sweep();
    expect(degradedChanges).toEqual([['a', true]]);
    conns[0]!.bufferedAmount = 100;
    sweep();
    expect(degradedChanges).toEqual([['a', true], ['a', false]]);
    expect(conns.map((c) => c.closedWith)).toEqual([null, null]);
    const metrics = await registry.registry.getSingleMetricAsString('roomcast_gateway_slow_consumers_total');
    expect(metrics).toContain('action="degraded"} 1');
    expect(metrics).toContain('action="restored"} 1');
  });

  it('closes with 4009 a connection that stays behind past the grace time, and leaves the others alone', () => {
    const { conns, sweep, advance } = setup();
    conns[0]!.bufferedAmount = LIMIT;
    sweep();
    advance(4999);
    sweep();
    expect(conns[0]!.closedWith).toBeNull();
    advance(1);
    sweep();
    expect(conns[0]!.closedWith).toBe(4009);
    expect(conns[1]!.closedWith).toBeNull();
  });

  it('looks at a backlogged connection on every tick, and at the others in turn', () => {
    const { conns, degradedChanges, policy } = setup(1);
    conns[1]!.bufferedAmount = LIMIT / 2;
    policy.check();
    expect(degradedChanges).toEqual([]);
    policy.check();
    // The second tick's sweep found b's backlog; from then on b is looked at every tick.
    conns[1]!.bufferedAmount = LIMIT;
    policy.check();
    expect(degradedChanges).toEqual([['b', true]]);
  });

  it(`asks uWS for at most ${CHECKS_PER_TICK} buffered amounts a tick, however many connections, and reaches each in turn`, () => {
    const count = 4 * CHECKS_PER_TICK + 10;
    const { conns, policy, degradedChanges } = setup(undefined, count);
    // Backlogged connections take their share of the budget first.
    for (const conn of conns.slice(0, 20)) conn.bufferedAmount = LIMIT / 2;
    const asked = () => conns.reduce((sum, conn) => sum + conn.asked, 0);
    for (let tick = 1; tick <= 5; tick++) {
      const before = asked();
      policy.check();
      expect(asked() - before).toBeLessThanOrEqual(CHECKS_PER_TICK);
    }
    // Five ticks of the budget cover every connection once, the backlogged ones on every tick since found.
    expect(conns.every((conn) => conn.asked >= 1)).toBe(true);
    expect(conns.slice(0, 20).every((conn) => conn.asked === 5)).toBe(true);
    expect(degradedChanges).toEqual([]);
    // A new pass: the last connection falls behind and is found within the pass's five ticks.
    conns[count - 1]!.bufferedAmount = LIMIT;
    for (let tick = 1; tick <= 5 && degradedChanges.length === 0; tick++) policy.check();
    expect(degradedChanges).toEqual([[conns[count - 1]!.id, true]]);
  });

  it(`closes at once a connection ${CLOSE_AT_LIMITS}× past the limit`, () => {
    const { conns, sweep } = setup();
    conns[1]!.bufferedAmount = CLOSE_AT_LIMITS * LIMIT;
    sweep();
    expect(conns[1]!.closedWith).toBe(4009);
  });
});
