/** RoomAccess: a room's bans as read once, kept exact by the room's ban events, expiring by time. */
import { describe, expect, it } from 'vitest';
import { RoomAccess } from '../../src/gateway/room-access.js';
import { fail } from '../../src/shared/errors.js';
import type { AccessReply } from '../../src/shared/protocol/bus-messages.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

function setUp() {
  let now = 1_000;
  const replies: ReturnType<typeof deferred<AccessReply>>[] = [];
  const access = new RoomAccess({
    roomClient: { access: () => { const d = deferred<AccessReply>(); replies.push(d); return d.promise; } },
    clock: { now: () => now },
  });
  const codeOf = (room: string, uid: string) => { try { access.check(room, uid); return 'ok'; } catch (e) { return (e as { code: string }).code; } };
  return { access, replies, codeOf, advance: (ms: number) => { now += ms; } };
}

describe('RoomAccess', () => {
  it('applies the ban events that came while the rules were on their way, in order, over the reply', async () => {
    const { access, replies, codeOf } = setUp();
    const opened = access.open('r');
    access.event({ t: 'kick', room: 'r', uid: 'late', reason: 'banned', untilMs: 60_000 });
    access.event({ t: 'unban', room: 'r', uid: 'old' });
    access.event({ t: 'kick', room: 'r', uid: 'flip', reason: 'banned', untilMs: 60_000 });
    access.event({ t: 'unban', room: 'r', uid: 'flip' });
    replies[0]!.resolve({ bans: [{ uid: 'old', untilMs: 60_000 }, { uid: 'kept', untilMs: 60_000 }] });
    await opened;
    expect(['late', 'old', 'flip', 'kept', 'nobody'].map((uid) => codeOf('r', uid))).toEqual(['banned', 'ok', 'ok', 'banned', 'ok']);
  });

  it('lets a user in once the ban expired, and follows later events', async () => {
    const { access, replies, codeOf, advance } = setUp();
    const opened = access.open('r');
    replies[0]!.resolve({ bans: [{ uid: 'u', untilMs: 2_000 }] });
    await opened;
    expect(codeOf('r', 'u')).toBe('banned');
    advance(999);
    expect(codeOf('r', 'u')).toBe('banned');
    advance(1);
    expect(codeOf('r', 'u')).toBe('ok');
    access.event({ t: 'kick', room: 'r', uid: 'u', reason: 'banned', untilMs: 5_000 });
    expect(codeOf('r', 'u')).toBe('banned');
    access.event({ t: 'kick', room: 'other', uid: 'x', reason: 'banned', untilMs: 5_000 });
    expect(codeOf('other', 'x')).toBe('unavailable');
  });

  it('keeps nothing for a room that failed to open or was closed, and an old open does not undo a newer one', async () => {
    const { access, replies, codeOf } = setUp();
    const first = access.open('r');
    replies[0]!.reject(fail.unknown_room('r'));
    await expect(first).rejects.toMatchObject({ code: 'unknown_room' });
    expect(codeOf('r', 'u')).toBe('unavailable');
    const stale = access.open('r');
    access.close('r');
    const fresh = access.open('r');
    replies[2]!.resolve({ bans: [{ uid: 'u', untilMs: 60_000 }] });
    await fresh;
    replies[1]!.reject(new Error('late failure'));
    await expect(stale).rejects.toThrow('late failure');
    expect(codeOf('r', 'u')).toBe('banned');
  });
});
