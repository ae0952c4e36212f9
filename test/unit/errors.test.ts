import { describe, expect, it } from 'vitest';
import { ERROR_TABLE, RoomcastError, closeCodeOf, httpStatusOf, isErrorCode, toRoomcastError } from '../../src/shared/errors.js';

describe('the error table', () => {
  const entries = Object.entries(ERROR_TABLE);

  it('has stable snake_case codes, each with a message and an HTTP status', () => {
    for (const [code, entry] of entries) {
      expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(entry.message.length).toBeGreaterThan(0);
      expect(entry.http).toBeGreaterThanOrEqual(400);
      expect(entry.http).toBeLessThan(600);
    }
  });

  it('gives each close code to one error only, in the ranges a server may send', () => {
    const closeCodes = entries.map(([code]) => closeCodeOf(code as keyof typeof ERROR_TABLE)).filter((c): c is number => c !== undefined);
    expect(new Set(closeCodes).size).toBe(closeCodes.length);
    for (const code of closeCodes) expect(code === 1009 || code === 1011 || code === 1012 || (code >= 4000 && code <= 4999)).toBe(true);
  });

  it('maps codes to statuses and recognizes only its own codes', () => {
    expect(httpStatusOf('unauthorized')).toBe(401);
    expect(closeCodeOf('unauthorized')).toBe(4001);
    expect(closeCodeOf('rate_limited')).toBeUndefined();
    expect(isErrorCode('bad_frame')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode(42)).toBe(false);
  });

  it('wraps unknown failures as internal, keeping the cause', () => {
    const cause = new TypeError('boom');
    const wrapped = toRoomcastError(cause);
    expect(wrapped.code).toBe('internal');
    expect(wrapped.cause).toBe(cause);
    const own = new RoomcastError('muted');
    expect(toRoomcastError(own)).toBe(own);
  });
});
