import { describe, expect, it } from 'vitest';
import { codeOf } from '../helpers/frame-code.js';
import { parseClientFrame, priorityOf, SENDABLE_KINDS } from '../../src/shared/protocol/frames.js';

describe('parseClientFrame', () => {
  it('accepts each well-formed frame and keeps only known fields', () => {
    expect(parseClientFrame({ t: 'join', room: 'a', lastSeq: 3, extra: 'x' })).toEqual({ t: 'join', room: 'a', lastSeq: 3 });
    expect(parseClientFrame({ t: 'switch', from: 'a', to: 'b' })).toEqual({ t: 'switch', from: 'a', to: 'b' });
    expect(parseClientFrame({ t: 'send', room: 'a', id: '1', text: 'hi', kind: 'streamer' })).toEqual({ t: 'send', room: 'a', id: '1', text: 'hi', kind: 'streamer' });
    expect(parseClientFrame({ t: 'history', room: 'a', beforeSeq: 10, limit: 5 })).toEqual({ t: 'history', room: 'a', beforeSeq: 10, limit: 5 });
    expect(parseClientFrame({ t: 'ping' })).toEqual({ t: 'ping' });
    expect(parseClientFrame({ t: 'join', room: 'a', lastSeq: null })).toEqual({ t: 'join', room: 'a' });
  });

  it('refuses wrong shapes with stable codes', () => {
    expect(codeOf(null)).toBe('bad_frame');
    expect(codeOf(new Uint8Array([1]))).toBe('bad_frame');
    expect(codeOf({ t: 'join', room: 'a', lastSeq: 1.5 })).toBe('bad_frame');
    expect(codeOf({ t: 'join', room: 'a*' })).toBe('bad_room');
    expect(codeOf({ t: 'hello' })).toBe('unknown_type');
    for (const ts of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '1']) expect(codeOf({ t: 'ping', ts })).toBe('bad_frame');
    expect(codeOf({ t: 'send', room: 'a', id: '', text: 'x' })).toBe('bad_frame');
    expect(codeOf({ t: 'history', room: 'a', limit: 1.5 })).toBe('bad_frame');
  });

  it('gives chat low priority and everything else high', () => {
    expect(priorityOf('chat')).toBe(0);
    for (const kind of ['gift', 'system', 'streamer', 'moderator', 'retract', 'pin', 'unpin'] as const) expect(priorityOf(kind)).toBe(1);
  });

  it('lets no role send pin, unpin or retract messages with send', () => {
    for (const kinds of Object.values(SENDABLE_KINDS)) {
      for (const kind of ['pin', 'unpin', 'retract'] as const) expect(kinds).not.toContain(kind);
    }
  });
});

describe('moderate and room_stats frames', () => {
  it('accepts each action with the fields of the right types, and keeps only known fields', () => {
    expect(parseClientFrame({ t: 'moderate', room: 'a', id: 'r1', action: 'mute', uid: 'bob', durationMs: 60_000, extra: 1 }))
      .toEqual({ t: 'moderate', room: 'a', id: 'r1', action: 'mute', uid: 'bob', durationMs: 60_000 });
    expect(parseClientFrame({ t: 'moderate', room: 'a', id: 'r2', action: 'pin', seq: 12 })).toEqual({ t: 'moderate', room: 'a', id: 'r2', action: 'pin', seq: 12 });
    expect(parseClientFrame({ t: 'moderate', room: 'a', id: 'r3', action: 'slow_mode', intervalMs: 0 }))
      .toEqual({ t: 'moderate', room: 'a', id: 'r3', action: 'slow_mode', intervalMs: 0 });
    for (const action of ['unmute', 'ban', 'unban', 'delete', 'unpin', 'list']) {
      expect(codeOf({ t: 'moderate', room: 'a', id: 'r', action })).toBe('accepted');
    }
    expect(parseClientFrame({ t: 'room_stats', room: 'a' })).toEqual({ t: 'room_stats', room: 'a' });
  });

  it('refuses wrong shapes; which fields an action needs is left to the room service', () => {
    expect(codeOf({ t: 'moderate', room: 'a', id: 'r', action: 'shout' })).toBe('bad_frame');
    expect(codeOf({ t: 'moderate', room: 'a', id: 'r' })).toBe('bad_frame');
    expect(codeOf({ t: 'moderate', room: 'a', action: 'list' })).toBe('bad_frame');
    expect(codeOf({ t: 'moderate', room: 'a', id: 'x'.repeat(65), action: 'list' })).toBe('bad_frame');
    expect(codeOf({ t: 'moderate', room: 'a.b', id: 'r', action: 'list' })).toBe('bad_room');
    expect(codeOf({ t: 'moderate', room: 'a', id: 'r', action: 'mute', uid: 7 })).toBe('bad_frame');
    expect(codeOf({ t: 'moderate', room: 'a', id: 'r', action: 'pin', seq: 1.5 })).toBe('bad_frame');
    expect(codeOf({ t: 'moderate', room: 'a', id: 'r', action: 'ban', durationMs: '1h' })).toBe('bad_frame');
    expect(codeOf({ t: 'moderate', room: 'a', id: 'r', action: 'slow_mode', intervalMs: Infinity })).toBe('bad_frame');
    expect(codeOf({ t: 'moderate', room: 'a', id: 'r', action: 'mute' })).toBe('accepted');
    expect(codeOf({ t: 'room_stats' })).toBe('bad_frame');
    expect(codeOf({ t: 'room_stats', room: '' })).toBe('bad_room');
  });
});
