import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WriteWindow } from '../../src/room-service/write-window.js';

describe('write window', () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  it('holds writes for the window, then starts each key\'s last one once and answers every caller', async () => {
    const window = new WriteWindow<string, number>(10);
    const started: string[] = [];
    const write = (label: string, value: number) => () => { started.push(label); return Promise.resolve(value); };
    const a1 = window.run('a', write('a1', 1));
    const a2 = window.run('a', write('a2', 2));
    const b = window.run('b', write('b', 3));
    await vi.advanceTimersByTimeAsync(9);
    expect(started).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(started).toEqual(['a2', 'b']);
    expect(await Promise.all([a1, a2, b])).toEqual([2, 2, 3]);
    // The next window starts afresh.
    const a3 = window.run('a', write('a3', 4));
    await vi.advanceTimersByTimeAsync(10);
    expect(await a3).toBe(4);
    expect(started).toEqual(['a2', 'b', 'a3']);
  });

  it('fails every caller of a key whose write fails', async () => {
    const window = new WriteWindow<string, number>(5);
    const first = window.run('k', () => Promise.reject(new Error('down')));
    const second = window.run('k', () => Promise.reject(new Error('still down')));
    const settled = Promise.allSettled([first, second]);
    await vi.advanceTimersByTimeAsync(5);
    expect((await settled).map((result) => result.status === 'rejected' && (result.reason as Error).message)).toEqual(['still down', 'still down']);
  });
});
