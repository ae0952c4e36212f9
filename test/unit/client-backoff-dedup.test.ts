import { describe, expect, it } from 'vitest';
import { fullJitterDelayMs } from '../../src/client/backoff.js';
import { deliverNew } from '../../src/client/dedup.js';
import type { RoomMessage } from '../../src/shared/protocol/frames.js';

describe('fullJitterDelayMs', () => {
  const settings = { baseMs: 250, maxMs: 10_000 };

  it('draws from 0 up to base * 2^attempt', () => {
    expect(fullJitterDelayMs(0, settings, () => 0)).toBe(0);
    expect(fullJitterDelayMs(0, settings, () => 0.5)).toBe(125);
    expect(fullJitterDelayMs(1, settings, () => 0.5)).toBe(250);
    expect(fullJitterDelayMs(3, settings, () => 0.999)).toBe(1998);
  });

  it('caps the ceiling at maxMs, however many attempts failed', () => {
    expect(fullJitterDelayMs(6, settings, () => 0.5)).toBe(5000);
    expect(fullJitterDelayMs(1000, settings, () => 0.5)).toBe(5000);
    expect(fullJitterDelayMs(Number.MAX_SAFE_INTEGER, settings, () => 0.999_999)).toBeLessThan(10_000);
  });

  it('treats nonsense attempts as the first', () => {
    expect(fullJitterDelayMs(-3, settings, () => 0.5)).toBe(125);
  });
});

describe('deliverNew', () => {
  const message = (seq: number): RoomMessage => ({ seq, uid: 'u', kind: 'chat', prio: 0, text: `m${seq}`, ts: 1 });

  function run(seqs: number[], lastSeq: number): { delivered: number[]; highest: number } {
    const delivered: number[] = [];
    const highest = deliverNew('r', seqs.map(message), lastSeq, (room, m) => {
      expect(room).toBe('r');
      delivered.push(m.seq);
    });
    return { delivered, highest };
  }

  it('delivers what is above the mark, in order, and moves the mark', () => {
    expect(run([4, 5, 6], 3)).toEqual({ delivered: [4, 5, 6], highest: 6 });
  });

  it('drops what was delivered already (an overlapping rejoin, a repeated batch)', () => {
    expect(run([2, 3, 4, 5], 3)).toEqual({ delivered: [4, 5], highest: 5 });
    expect(run([1, 2, 3], 3)).toEqual({ delivered: [], highest: 3 });
  });

  it('accepts holes in the seqs (sampled chat, reported gaps) and drops anything out of order', () => {
    expect(run([5, 9, 7, 12], 3)).toEqual({ delivered: [5, 9, 12], highest: 12 });
  });

  it('keeps the mark for an empty batch', () => {
    expect(run([], 8)).toEqual({ delivered: [], highest: 8 });
  });
});
