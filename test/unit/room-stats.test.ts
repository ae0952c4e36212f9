import { describe, expect, it } from 'vitest';
import { RATE_WINDOW_S, RoomCounters } from '../../src/gateway/room-stats.js';
import { describeInterval, slowModeNotice } from '../../src/room-service/notices.js';

const T0 = 1_700_000_000_000;

describe('RoomCounters.msgsPerSec', () => {
  it('averages the messages of the last whole seconds, by their server timestamps', () => {
    const counters = new RoomCounters();
    expect(counters.msgsPerSec(T0)).toBe(0);
    // 10 messages in each of five seconds, and 7 in the current one.
    for (let second = 0; second < RATE_WINDOW_S; second++) for (let i = 0; i < 10; i++) counters.observed(T0 + second * 1000 + i * 50);
    for (let i = 0; i < 7; i++) counters.observed(T0 + RATE_WINDOW_S * 1000 + i);
    expect(counters.msgsPerSec(T0 + RATE_WINDOW_S * 1000 + 500)).toBe(10);
    // A second later the oldest second has left the window and the current one entered it.
    expect(counters.msgsPerSec(T0 + (RATE_WINDOW_S + 1) * 1000 + 1)).toBe((4 * 10 + 7) / RATE_WINDOW_S);
    // Long quiet: nothing in the window, even though old slots still hold counts.
    expect(counters.msgsPerSec(T0 + 60_000)).toBe(0);
  });

  it('never lets a late, older message disturb a newer second in the same slot', () => {
    const counters = new RoomCounters();
    const now = T0 + 100_000;
    counters.observed(now - 1000);
    counters.observed(now - 1000 - (RATE_WINDOW_S + 1) * 1000);
    expect(counters.msgsPerSec(now)).toBe(1 / RATE_WINDOW_S);
  });
});

describe('notices', () => {
  it('describes slow-mode intervals for people', () => {
    expect(describeInterval(10_000)).toBe('10 seconds');
    expect(describeInterval(1000)).toBe('1 second');
    expect(describeInterval(120_000)).toBe('2 minutes');
    expect(describeInterval(1500)).toBe('1500 ms');
    expect(slowModeNotice('lobby', 0)).toEqual({ t: 'notice', code: 'slow_mode', room: 'lobby', intervalMs: 0, text: 'Slow mode is off' });
  });
});
