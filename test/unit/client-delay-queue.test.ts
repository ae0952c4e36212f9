/**
 * The viewer delay queue on its own, with fake timers and the fake clock they drive: per-room order,
 * release no earlier than ts + delay, one timer per room, setDelay rescheduling, dropped rooms.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DelayQueue } from '../../src/client/delay-queue.js';
import type { RoomId, RoomMessage } from '../../src/shared/protocol/frames.js';
import { roomMessage } from '../helpers/fake-web-socket.js';

const T0 = 1_700_000_000_000;
const at = (seq: number, ts: number): RoomMessage => roomMessage(seq, { ts: T0 + ts });

interface Released { room: RoomId; seq: number; atMs: number }

function newQueue(delayMs: number): { queue: DelayQueue; released: Released[] } {
  const released: Released[] = [];
  const queue = new DelayQueue(delayMs, (room, message) => {
    // The contract: never before ts + delay by the local clock (a delay of 0 ignores ts, as without one).
    if (queue.delayMs > 0) expect(Date.now()).toBeGreaterThanOrEqual(message.ts + queue.delayMs);
    released.push({ room, seq: message.seq, atMs: Date.now() - T0 });
  });
  return { queue, released };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});

afterEach(() => {
  vi.useRealTimers();
});

describe('DelayQueue', () => {
  it('releases each message at ts + delay, with one timer per room', async () => {
    const { queue, released } = newQueue(1000);
    queue.push('a', at(1, 0));
    queue.push('a', at(2, 100));
    queue.push('a', at(3, 250));
    queue.push('b', at(7, 50));
    expect(released).toEqual([]);
    expect(vi.getTimerCount()).toBe(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(released).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(released).toEqual([{ room: 'a', seq: 1, atMs: 1000 }]);
    await vi.advanceTimersByTimeAsync(300);
    expect(released).toEqual([
      { room: 'a', seq: 1, atMs: 1000 },
      { room: 'b', seq: 7, atMs: 1050 },
      { room: 'a', seq: 2, atMs: 1100 },
      { room: 'a', seq: 3, atMs: 1250 },
    ]);
    expect(vi.getTimerCount()).toBe(0);
    expect(queue.heldCount('a')).toBe(0);
  });

  it('keeps the order of a room even when a later message carries an earlier ts', async () => {
    const { queue, released } = newQueue(500);
    queue.push('a', at(1, 300));
    queue.push('a', at(2, 100)); // stamped earlier (another replica's clock): still waits for seq 1
    queue.push('a', at(3, 400));
    await vi.advanceTimersByTimeAsync(799);
    expect(released).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(released.map((r) => [r.seq, r.atMs])).toEqual([[1, 800], [2, 800]]);
    await vi.advanceTimersByTimeAsync(100);
    expect(released.map((r) => [r.seq, r.atMs])).toEqual([[1, 800], [2, 800], [3, 900]]);
  });

  it('releases at once what is already due, and with no delay holds nothing', async () => {
    const delayed = newQueue(1000);
    vi.setSystemTime(T0 + 5000);
    delayed.queue.push('a', at(1, 0)); // a catch-up message older than the delay
    expect(delayed.released.map((r) => r.seq)).toEqual([1]);

    const direct = newQueue(0);
    direct.queue.push('a', at(2, 60_000)); // even stamped in the future
    direct.queue.push('a', at(3, 60_001));
    expect(direct.released.map((r) => r.seq)).toEqual([2, 3]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reschedules everything held when the delay changes', async () => {
    const { queue, released } = newQueue(10_000);
    queue.push('a', at(1, 0));
    queue.push('a', at(2, 1000));
    queue.push('b', at(3, 2000));
    await vi.advanceTimersByTimeAsync(3000);
    queue.setDelay(1500); // seq 1 (due at 1500) is overdue: out now; seq 2 at 2500 also; seq 3 at 3500
    expect(released.map((r) => [r.seq, r.atMs])).toEqual([[1, 3000], [2, 3000]]);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(499);
    expect(released).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(released.map((r) => [r.seq, r.atMs])).toEqual([[1, 3000], [2, 3000], [3, 3500]]);

    queue.push('a', at(4, 3500));
    queue.setDelay(20_000); // longer: seq 4 now waits until 23 500
    await vi.advanceTimersByTimeAsync(10_000);
    expect(released).toHaveLength(3);
    queue.setDelay(0); // off: everything held goes now, in order
    expect(released.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(vi.getTimerCount()).toBe(0);
    expect(() => queue.setDelay(-1)).toThrow(RangeError);
  });

  it('drops what a left room holds, and its timer', async () => {
    const { queue, released } = newQueue(1000);
    queue.push('a', at(1, 0));
    queue.push('a', at(2, 10));
    queue.push('b', at(3, 20));
    queue.dropRoom('a');
    expect(queue.heldCount('a')).toBe(0);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(released.map((r) => r.seq)).toEqual([3]);
  });

  it('stops releasing a room that a listener leaves while it is being released', async () => {
    const released: number[] = [];
    const queue: DelayQueue = new DelayQueue(100, (room, message) => {
      released.push(message.seq);
      if (message.seq === 1) queue.dropRoom(room);
    });
    queue.push('a', at(1, 0));
    queue.push('a', at(2, 0));
    await vi.advanceTimersByTimeAsync(100);
    expect(released).toEqual([1]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
