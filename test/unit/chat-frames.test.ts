import { describe, expect, it } from 'vitest';
import { codeOf } from '../helpers/frame-code.js';
import { CLIENT_FRAME_TYPES, parseClientFrame } from '../../src/shared/protocol/frames.js';
import { CHAT_CLIENT_FRAME_TYPES } from '../../src/shared/protocol/chat-frames.js';

describe('chat frames', () => {
  it('are client frame types', () => {
    for (const type of CHAT_CLIENT_FRAME_TYPES) expect(CLIENT_FRAME_TYPES).toContain(type);
  });

  it('accepts each well-formed frame and keeps only known fields', () => {
    expect(parseClientFrame({ t: 'pm', to: 'bob', id: '1', text: 'hi', extra: true })).toEqual({ t: 'pm', to: 'bob', id: '1', text: 'hi' });
    expect(parseClientFrame({ t: 'sync' })).toEqual({ t: 'sync' });
    expect(parseClientFrame({ t: 'sync', after: 5, limit: 10 })).toEqual({ t: 'sync', after: 5, limit: 10 });
    expect(parseClientFrame({ t: 'sync', after: null })).toEqual({ t: 'sync' });
    expect(parseClientFrame({ t: 'inbox_ack', seq: 0 })).toEqual({ t: 'inbox_ack', seq: 0 });
    expect(parseClientFrame({ t: 'read', peer: 'a@b.c', cseq: 3 })).toEqual({ t: 'read', peer: 'a@b.c', cseq: 3 });
    expect(parseClientFrame({ t: 'conv_history', peer: 'bob', beforeSeq: 9 })).toEqual({ t: 'conv_history', peer: 'bob', beforeSeq: 9 });
    expect(parseClientFrame({ t: 'convs' })).toEqual({ t: 'convs' });
    expect(parseClientFrame({ t: 'block', uid: 'x' })).toEqual({ t: 'block', uid: 'x' });
    expect(parseClientFrame({ t: 'gm', group: 'g', id: '1', text: 'hi' })).toEqual({ t: 'gm', group: 'g', id: '1', text: 'hi' });
    expect(parseClientFrame({ t: 'group_create', group: 'g', members: ['a', 'a', 'b'] })).toEqual({ t: 'group_create', group: 'g', members: ['a', 'b'] });
    expect(parseClientFrame({ t: 'group_add', group: 'g', uids: ['a'], role: 'admin' })).toEqual({ t: 'group_add', group: 'g', uids: ['a'], role: 'admin' });
    expect(parseClientFrame({ t: 'group_members', group: 'g', cursor: '12', limit: 5 })).toEqual({ t: 'group_members', group: 'g', cursor: '12', limit: 5 });
    expect(parseClientFrame({ t: 'group_join', group: 'g', uid: 'someone-else' })).toEqual({ t: 'group_join', group: 'g' });
    expect(parseClientFrame({ t: 'group_leave', group: 'g' })).toEqual({ t: 'group_leave', group: 'g' });
    expect(parseClientFrame({ t: 'group_invites' })).toEqual({ t: 'group_invites' });
    expect(parseClientFrame({ t: 'group_invites', group: 'g', cursor: '3', limit: 2 })).toEqual({ t: 'group_invites', group: 'g', cursor: '3', limit: 2 });
  });

  it('refuses wrong shapes with stable codes', () => {
    expect(codeOf({ t: 'pm', to: 'a/b', id: '1', text: 'x' })).toBe('bad_frame');
    expect(codeOf({ t: 'pm', to: 'bob', id: 1, text: 'x' })).toBe('bad_frame');
    expect(codeOf({ t: 'sync', limit: 1.5 })).toBe('bad_frame');
    expect(codeOf({ t: 'inbox_ack', seq: -1 })).toBe('bad_frame');
    expect(codeOf({ t: 'gm', group: 'g*', id: '1', text: 'x' })).toBe('bad_group');
    expect(codeOf({ t: 'group_add', group: 'g', uids: 'a' })).toBe('bad_frame');
    expect(codeOf({ t: 'group_add', group: 'g', uids: ['a'], role: 'owner' })).toBe('bad_frame');
    expect(codeOf({ t: 'group_members', group: 'g', cursor: 5 })).toBe('bad_frame');
    expect(codeOf({ t: 'group_join' })).toBe('bad_frame');
    expect(codeOf({ t: 'group_leave', group: 'g.>' })).toBe('bad_group');
    expect(codeOf({ t: 'group_invites', group: 'g*' })).toBe('bad_group');
    expect(codeOf({ t: 'group_invites', cursor: 'x'.repeat(33) })).toBe('bad_frame');
  });
});
