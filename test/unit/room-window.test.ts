/** The batch window of a room by its viewers on the gateway (docs/protocol.md 6.10). */
import { describe, expect, it } from 'vitest';
import { roomWindowMs } from '../../src/gateway/batch-writer.js';

describe('a room\'s batch window', () => {
  const settings = { batchWindowMs: 50, windowMsPer1000Viewers: 20 };

  it('is the configured window up to 2,500 viewers on the gateway, then grows by 20 ms per 1,000', () => {
    expect(roomWindowMs(20, settings)).toBe(50);
    expect(roomWindowMs(2500, settings)).toBe(50);
    expect(roomWindowMs(5000, settings)).toBe(100);
    expect(roomWindowMs(10_000, settings)).toBe(200);
    expect(roomWindowMs(19_800, settings)).toBe(396);
  });

  it('stays the configured window for every room when the growth is 0', () => {
    expect(roomWindowMs(100_000, { batchWindowMs: 50, windowMsPer1000Viewers: 0 })).toBe(50);
  });
});
