/**
 * The GroupStore contract, run against the in-memory store and against the Redis store on a real
 * redis-server. Time is the `nowMs` the tests pass.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { GroupSendInput, GroupStore, GroupStoreLimits } from '../../src/shared/store/group-store.js';
import { MemoryGroupStore } from '../../src/shared/store/memory-group-store.js';
import { RedisGroupStore } from '../../src/shared/store/redis-group-store.js';
import { useContractRedis } from '../helpers/contract-redis.js';

const NOW = 1_700_000_000_000;
const LIMITS: GroupStoreLimits = { count: 10, maxAgeMs: 3_600_000, dedupTtlMs: 60_000, maxMembers: 20 };
const LOOSE = { ratePerSec: 1000, burst: 1000 };

const contractRedis = useContractRedis();

/** The connection of the Redis target named `name`, to look at what a store wrote. */
const redisOf = (name: string) => {
  const target = contractRedis.targets.find((candidate) => candidate.name === name);
  if (!target) throw new Error(`no Redis target ${name}`);
  return target.redis();
};

const implementations = [
  { name: 'memory', create: (limits = LIMITS): GroupStore => new MemoryGroupStore(limits) },
  ...contractRedis.targets.map(({ name, redis }) => ({ name, create: (limits = LIMITS): GroupStore => new RedisGroupStore({ redis: redis(), limits }) })),
];

describe.each(implementations)('GroupStore ($name)', ({ name, create }) => {
  let store: GroupStore;
  let nextId = 0;
  beforeEach(async () => {
    await contractRedis.flushAll();
    store = create();
  });

  const send = (overrides: Partial<GroupSendInput> = {}) =>
    store.send({ group: 'g1', from: 'owner', cid: `c${nextId++}`, text: 'hi', nowMs: NOW, rate: LOOSE, ...overrides });
  const seqOf = async (overrides: Partial<GroupSendInput> = {}) => {
    const result = await send(overrides);
    if (result.status === 'rejected') throw new Error(result.code);
    return result.message.seq;
  };

  it('promotes members to admins, leaving the owner, admins and non-members as they are', async () => {
    await store.create('g1', 'owner', ['a', 'b'], NOW);
    await seqOf();
    expect(await store.promote('g1', ['a', 'owner', 'z', 'a'])).toEqual(['a']);
    expect(await store.member('g1', 'a')).toEqual({ uid: 'a', role: 'admin', joinSeq: 0 });
    expect(await store.member('g1', 'owner')).toMatchObject({ role: 'owner' });
    expect(await store.member('g1', 'z')).toBeNull();
    expect(await store.promote('g1', ['a'])).toEqual([]);
    expect(await store.promote('nope', ['a'])).toBeNull();
  });

  it('pages members by the limit with a cursor, each member once', async () => {
    const others = Array.from({ length: 300 }, (_, i) => `u${i}`);
    store = create({ ...LIMITS, maxMembers: 1000 });
    await store.create('g1', 'owner', others, NOW);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.members('g1', cursor, 100);
      expect(page.members.length).toBeLessThanOrEqual(100);
      seen.push(...page.members.map((m) => m.uid));
      cursor = page.cursor;
      pages++;
    } while (cursor !== undefined && pages < 20);
    expect(seen.sort()).toEqual(['owner', ...others].sort());
    expect(pages).toBeGreaterThanOrEqual(4);
    // A small group (one HSCAN batch on Redis) is cut at the limit too.
    await store.create('g2', 'owner', ['a', 'b', 'c', 'd'], NOW);
    const first = await store.members('g2', undefined, 3);
    expect(first.members).toHaveLength(3);
    const rest = await store.members('g2', first.cursor, 3);
    expect([...first.members, ...rest.members].map((m) => m.uid).sort()).toEqual(['a', 'b', 'c', 'd', 'owner']);
    expect(rest.cursor).toBeUndefined();
  });

  it('creates a group once, with its owner and members', async () => {
    expect(await store.create('g1', 'owner', ['a', 'b', 'owner'], NOW)).toBe('created');
    expect(await store.create('g1', 'other', [], NOW)).toBe('exists');
    expect(await store.info('g1')).toEqual({ group: 'g1', owner: 'owner', createdAtMs: NOW, lastSeq: 0, members: 3, invited: 0 });
    expect(await store.member('g1', 'owner')).toEqual({ uid: 'owner', role: 'owner', joinSeq: 0 });
    expect(await store.member('g1', 'a')).toEqual({ uid: 'a', role: 'member', joinSeq: 0 });
    expect(await store.member('g1', 'z')).toBeNull();
    expect(await store.info('nope')).toBeNull();
    expect(await store.groupsOf('a')).toEqual(['g1']);
    const many = Array.from({ length: LIMITS.maxMembers }, (_, i) => `m${i}`);
    expect(await store.create('g2', 'owner', many, NOW)).toBe('too_many_members');
    expect(await store.info('g2')).toBeNull();
  });

  it('stores each message once with the next group seq; a retried id is a duplicate', async () => {
    await store.create('g1', 'owner', ['a'], NOW);
    expect(await seqOf()).toBe(1);
    const first = await send({ from: 'a', cid: 'same', text: 'once' });
    const again = await send({ from: 'a', cid: 'same', text: 'once' });
    expect(first).toMatchObject({ status: 'stored', message: { seq: 2, mid: 'g/g1/2', from: 'a', text: 'once', group: 'g1' } });
    expect(again).toEqual({ ...first, status: 'duplicate' });
    expect((await store.info('g1'))?.lastSeq).toBe(2);
    if (name !== 'memory') expect(await redisOf(name).llen('rc:group:{g1}:log')).toBe(2);
    expect(await send({ from: 'stranger' })).toEqual({ status: 'rejected', code: 'not_group_member' });
    expect(await send({ group: 'nope' })).toEqual({ status: 'rejected', code: 'unknown_group' });
    const rate = { ratePerSec: 1, burst: 1 };
    expect((await send({ from: 'a', rate })).status).toBe('stored');
    expect(await send({ from: 'a', rate })).toEqual({ status: 'rejected', code: 'rate_limited' });
  });

  it('new members see only messages after they joined; cursors are per member', async () => {
    await store.create('g1', 'owner', ['a'], NOW);
    await seqOf();
    await seqOf();
    expect(await store.addMembers('g1', ['late', 'a'], 'member')).toBe('ok');
    expect(await store.member('g1', 'late')).toEqual({ uid: 'late', role: 'member', joinSeq: 2 });
    await seqOf({ text: 'after join' });
    const late = await store.sync('g1', 'late', undefined, 100, NOW);
    expect(late?.msgs.map((m) => m.text)).toEqual(['after join']);
    expect(late).toMatchObject({ cursor: 2, lastSeq: 3, firstSeq: 3 });
    // Asking from 0 does not reach before the join either.
    expect((await store.sync('g1', 'late', 0, 100, NOW))?.msgs.map((m) => m.seq)).toEqual([3]);
    const a = await store.sync('g1', 'a', undefined, 2, NOW);
    expect(a?.msgs.map((m) => m.seq)).toEqual([1, 2]);
    expect((await store.sync('g1', 'a', 2, 2, NOW))?.cursor).toBe(2);
    expect(await store.ack('g1', 'a', 3, NOW)).toBe(3);
    expect(await store.ack('g1', 'a', 1, NOW)).toBe(3);
    expect(await store.ack('g1', 'a', 99, NOW)).toBe(3);
    expect(await store.sync('g1', 'stranger', undefined, 10, NOW)).toBeNull();
    expect(await store.ack('g1', 'stranger', 1, NOW)).toBeNull();
  });

  it('removes members, pages through members, and refuses too many', async () => {
    await store.create('g1', 'owner', ['a', 'b', 'c'], NOW);
    expect(await store.addMembers('g1', ['admin1'], 'admin')).toBe('ok');
    expect((await store.member('g1', 'admin1'))?.role).toBe('admin');
    expect(await store.removeMembers('g1', ['b'])).toBe(true);
    expect(await store.member('g1', 'b')).toBeNull();
    expect(await store.groupsOf('b')).toEqual([]);
    expect(await store.removeMembers('nope', ['b'])).toBe(false);
    expect(await store.addMembers('nope', ['b'], 'member')).toBe('unknown_group');
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.members('g1', cursor, 2);
      seen.push(...page.members.map((m) => m.uid));
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(seen.sort()).toEqual(['a', 'admin1', 'c', 'owner']);
    const chunks: string[] = [];
    for await (const chunk of store.memberUids('g1', 2)) chunks.push(...chunk);
    expect(chunks.sort()).toEqual(['a', 'admin1', 'c', 'owner']);
    const many = Array.from({ length: LIMITS.maxMembers }, (_, i) => `m${i}`);
    expect(await store.addMembers('g1', many, 'member')).toBe('too_many_members');
    expect((await store.info('g1'))?.members).toBe(4);
  });

  it('gives the membership a new roster version at every change of members and at nothing else; a send answers the current one', async () => {
    await store.create('g1', 'owner', ['a'], NOW);
    const versions = [await store.roster('g1')];
    expect(versions[0]).not.toBeNull();
    const current = () => versions[versions.length - 1];
    const expectUnchanged = async () => expect(await store.roster('g1')).toBe(current());
    const expectChanged = async () => {
      const version = await store.roster('g1');
      expect(versions).not.toContain(version);
      versions.push(version);
    };

    const stored = await send({ from: 'a', cid: 'r1' });
    expect(stored).toMatchObject({ status: 'stored', roster: current() });
    // Roles, invites, cursors and messages are not membership.
    expect(await store.promote('g1', ['a'])).toEqual(['a']);
    expect((await store.invite('g1', ['b', 'd'], 'member', 'owner', NOW)).status).toBe('ok');
    await store.ack('g1', 'a', 1, NOW);
    expect(await store.removeMembers('g1', ['d'])).toBe(true);
    expect(await store.addMembers('g1', ['a'], 'member')).toBe('ok');
    await expectUnchanged();

    expect(await store.accept('g1', 'b')).toBe('joined');
    await expectChanged();
    expect(await store.addMembers('g1', ['c'], 'member')).toBe('ok');
    await expectChanged();
    expect(await send({ from: 'a', cid: 'r1' })).toMatchObject({ status: 'duplicate', roster: current() });
    expect(await store.removeMembers('g1', ['c', 'stranger'])).toBe(true);
    await expectChanged();
    expect(await store.removeMembers('g1', ['c'])).toBe(true);
    await expectUnchanged();
    expect(await send({ from: 'b' })).toMatchObject({ status: 'stored', roster: current() });
    expect(await store.roster('nope')).toBeNull();
  });

  it('trims the log by count and by age', async () => {
    await store.create('g1', 'owner', [], NOW);
    for (let i = 0; i < LIMITS.count + 3; i++) await seqOf({ text: `m${i}` });
    const page = await store.sync('g1', 'owner', undefined, 100, NOW);
    expect(page?.firstSeq).toBe(4);
    expect(page?.msgs.map((m) => m.seq)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    const later = NOW + LIMITS.maxAgeMs + 1;
    expect((await store.sync('g1', 'owner', undefined, 100, later))?.msgs).toEqual([]);
    await seqOf({ text: 'fresh', nowMs: later });
    expect((await store.sync('g1', 'owner', undefined, 100, later))?.msgs.map((m) => m.text)).toEqual(['fresh']);
    if (name !== 'memory') expect(await redisOf(name).llen('rc:group:{g1}:log')).toBe(1);
  });

  describe('invites', () => {
    const invite = (uids: string[], overrides: { group?: string; role?: 'admin' | 'member'; by?: string; nowMs?: number } = {}) =>
      store.invite(overrides.group ?? 'g1', uids, overrides.role ?? 'member', overrides.by ?? 'owner', overrides.nowMs ?? NOW);

    it('an invited user is no member: it is listed apart, gets no place in sends or syncs, and is counted as invited', async () => {
      await store.create('g1', 'owner', ['a'], NOW);
      expect(await invite(['inv', 'a'], { role: 'admin', by: 'owner:x@y' })).toEqual({ status: 'ok', pending: ['inv'], fresh: ['inv'] });
      expect(await store.member('g1', 'inv')).toBeNull();
      expect(await store.pendingInvite('g1', 'inv')).toEqual({ group: 'g1', uid: 'inv', role: 'admin', by: 'owner:x@y', atMs: NOW });
      expect(await store.pendingInvite('g1', 'a')).toBeNull();
      expect(await store.info('g1')).toMatchObject({ members: 2, invited: 1 });
      const uids: string[] = [];
      for await (const chunk of store.memberUids('g1', 10)) uids.push(...chunk);
      expect(uids.sort()).toEqual(['a', 'owner']);
      expect((await store.members('g1', undefined, 10)).members.map((m) => m.uid).sort()).toEqual(['a', 'owner']);
      expect(await store.invites('g1', undefined, 10)).toEqual({ invites: [{ group: 'g1', uid: 'inv', role: 'admin', by: 'owner:x@y', atMs: NOW }] });
      expect(await send({ from: 'inv' })).toEqual({ status: 'rejected', code: 'not_group_member' });
      expect(await store.sync('g1', 'inv', undefined, 10, NOW)).toBeNull();
      expect(await store.ack('g1', 'inv', 1, NOW)).toBeNull();
      expect(await store.groupsOf('inv')).toEqual([]);
      expect(await store.invitesOf('inv', 10)).toEqual([{ group: 'g1', uid: 'inv', role: 'admin', by: 'owner:x@y', atMs: NOW }]);
      expect(await invite(['x'], { group: 'nope' })).toEqual({ status: 'unknown_group' });
    });

    it('inviting is idempotent: an earlier invite is kept as it was and is not fresh again', async () => {
      await store.create('g1', 'owner', [], NOW);
      await invite(['inv'], { by: 'owner' });
      expect(await invite(['inv', 'new'], { by: 'other', nowMs: NOW + 5, role: 'admin' })).toEqual({ status: 'ok', pending: ['new', 'inv'], fresh: ['new'] });
      expect(await store.pendingInvite('g1', 'inv')).toMatchObject({ by: 'owner', role: 'member', atMs: NOW });
      expect((await store.info('g1'))?.invited).toBe(2);
    });

    it('accepting makes a member that sees messages from its acceptance on; accepting again is harmless', async () => {
      await store.create('g1', 'owner', [], NOW);
      await invite(['inv'], { role: 'admin' });
      await seqOf({ text: 'while invited' });
      expect(await store.accept('g1', 'inv')).toBe('joined');
      expect(await store.member('g1', 'inv')).toEqual({ uid: 'inv', role: 'admin', joinSeq: 1 });
      expect(await store.pendingInvite('g1', 'inv')).toBeNull();
      expect(await store.info('g1')).toMatchObject({ members: 2, invited: 0 });
      expect(await store.groupsOf('inv')).toEqual(['g1']);
      expect(await store.invitesOf('inv', 10)).toEqual([]);
      await seqOf({ text: 'after accepting' });
      expect((await store.sync('g1', 'inv', 0, 10, NOW))?.msgs.map((m) => m.text)).toEqual(['after accepting']);
      expect(await store.accept('g1', 'inv')).toBe('member');
      expect(await store.accept('g1', 'stranger')).toBe('not_invited');
      expect(await store.accept('nope', 'inv')).toBe('unknown_group');
    });

    it('declining (or withdrawing) an invite removes it; the user may be invited again', async () => {
      await store.create('g1', 'owner', [], NOW);
      await store.create('g2', 'owner', [], NOW);
      await invite(['inv'], { nowMs: NOW + 1 });
      await invite(['inv'], { group: 'g2' });
      expect((await store.invitesOf('inv', 10)).map((i) => i.group)).toEqual(['g2', 'g1']);
      expect(await store.removeMembers('g1', ['inv'])).toBe(true);
      expect(await store.pendingInvite('g1', 'inv')).toBeNull();
      expect(await store.accept('g1', 'inv')).toBe('not_invited');
      expect((await store.invitesOf('inv', 10)).map((i) => i.group)).toEqual(['g2']);
      expect(await store.info('g1')).toMatchObject({ members: 1, invited: 0 });
      expect(await invite(['inv'], { nowMs: NOW + 2 })).toMatchObject({ fresh: ['inv'] });
      expect((await store.invitesOf('inv', 1)).map((i) => i.group)).toEqual(['g2']);
    });

    it('a direct add uses up a pending invite; members are never invited', async () => {
      await store.create('g1', 'owner', [], NOW);
      await invite(['inv']);
      expect(await store.addMembers('g1', ['inv'], 'member')).toBe('ok');
      expect(await store.member('g1', 'inv')).toMatchObject({ role: 'member' });
      expect(await store.pendingInvite('g1', 'inv')).toBeNull();
      expect(await store.invitesOf('inv', 10)).toEqual([]);
      expect(await invite(['inv'])).toEqual({ status: 'ok', pending: [], fresh: [] });
    });

    it('creating a group may invite its first members instead of adding them', async () => {
      expect(await store.create('g1', 'owner', ['a'], NOW, ['inv', 'a', 'owner'])).toBe('created');
      expect(await store.info('g1')).toMatchObject({ members: 2, invited: 1 });
      expect(await store.pendingInvite('g1', 'inv')).toEqual({ group: 'g1', uid: 'inv', role: 'member', by: 'owner', atMs: NOW });
      expect(await store.invitesOf('inv', 10)).toHaveLength(1);
    });

    it('pending invites hold places: members and invites together stay within the limit', async () => {
      await store.create('g1', 'owner', [], NOW);
      const many = Array.from({ length: LIMITS.maxMembers - 1 }, (_, i) => `m${i}`);
      expect(await invite(many)).toMatchObject({ status: 'ok' });
      expect(await invite(['one-more'])).toEqual({ status: 'too_many_members' });
      expect(await store.addMembers('g1', ['one-more'], 'member')).toBe('too_many_members');
      // An invited user's own place is free to take.
      expect(await store.addMembers('g1', ['m0'], 'member')).toBe('ok');
      expect(await store.accept('g1', 'm1')).toBe('joined');
      expect(await store.create('g2', 'owner', [], NOW, [...many, 'x'])).toBe('too_many_members');
      const pages: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.invites('g1', cursor, 5);
        pages.push(...page.invites.map((i) => i.uid));
        cursor = page.cursor;
      } while (cursor !== undefined);
      expect(new Set(pages).size).toBe(LIMITS.maxMembers - 3);
    });
  });
});
