import { describe, expect, it } from 'vitest';
import { codeOf } from '../helpers/frame-code.js';
import { parseClientFrame, priorityOf } from '../../src/shared/protocol/frames.js';

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
    for (const kind of ['gift', 'system', 'streamer', 'moderator', 'retract'] as const) expect(priorityOf(kind)).toBe(1);
  });
});
