/**
 * The RoomStore contract, run against the in-memory store and against the Redis store on a real
 * redis-server, so the all-in-one mode can never drift from the distributed one. Time is what the
 * tests pass as `nowMs`: nothing sleeps.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { PRIORITY_HIGH, PRIORITY_LOW, type RoomMessage, type Seq } from '../../src/shared/protocol/frames.js';
import { MemoryRoomStore } from '../../src/shared/store/memory-room-store.js';
import { RedisRoomStore } from '../../src/shared/store/redis-room-store.js';
import type { AppendInput, AppendResult, RateLimit, RoomStore, RoomStoreLimits, SendChecks } from '../../src/shared/store/room-store.js';
import { useContractRedis } from '../helpers/contract-redis.js';

const NOW = 1_700_000_000_000;
const HISTORY_LIMIT = 5;
const LIMITS: RoomStoreLimits = { historyLimit: HISTORY_LIMIT, dedupTtlMs: 60_000, roomIdleTtlMs: 0 };
const ROOM = 'lobby';
const NO_SLOW_MODE = { slowModeMs: 0 };
/** Generous enough that only the rate-limit tests ever hit it. */
const LOOSE_RATE: RateLimit = { ratePerSec: 100, burst: 100 };
const VIEWER: SendChecks = { rateLimit: LOOSE_RATE, moderated: true };
const STREAMER: SendChecks = { rateLimit: LOOSE_RATE, moderated: false };

const contractRedis = useContractRedis();

const implementations = [
  { name: 'memory', create: (limits: RoomStoreLimits): RoomStore => new MemoryRoomStore(limits) },
  ...contractRedis.targets.map(({ name, redis }) => ({ name, create: (limits: RoomStoreLimits): RoomStore => new RedisRoomStore({ redis: redis(), limits }) })),
];

describe.each(implementations)('RoomStore ($name)', ({ create }) => {
  let store: RoomStore;
  beforeEach(async () => {
    await contractRedis.flushAll();
    store = create(LIMITS);
  });

  /** Appends a chat message from `uid` (fields overridable) and answers the store's result. */
  const send = (overrides: Partial<AppendInput> = {}): Promise<AppendResult> =>
    store.append({ room: ROOM, uid: 'alice', kind: 'chat', text: 'hi', nowMs: NOW, ...overrides });

  const appendedSeq = async (overrides: Partial<AppendInput> = {}): Promise<Seq> => {
    const result = await send(overrides);
    if (result.status !== 'appended') throw new Error(`expected an append, got ${JSON.stringify(result)}`);
    return result.message.seq;
  };

  const rejectionOf = async (overrides: Partial<AppendInput>): Promise<string> => {
    const result = await send(overrides);
    return result.status === 'rejected' ? result.code : result.status;
  };

  const allMessages = async (): Promise<RoomMessage[]> => (await store.range(ROOM, { limit: 1000 }))!.msgs;
  const seqsOf = (msgs: RoomMessage[]) => msgs.map((m) => m.seq);

  describe('rooms', () => {
    it('creates a room once and keeps the first settings', async () => {
      expect(await store.createRoom(ROOM, { slowModeMs: 3000 }, NOW)).toBe(true);
      expect(await store.createRoom(ROOM, { slowModeMs: 9000 }, NOW + 1)).toBe(false);
      expect(await store.getRoom(ROOM)).toEqual({ room: ROOM, settings: { slowModeMs: 3000 }, lastSeq: 0, createdAtMs: NOW });
    });

    it('updates settings of a known room only', async () => {
      await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
      expect(await store.updateSettings(ROOM, { slowModeMs: 2500 })).toBe(true);
      expect((await store.getRoom(ROOM))?.settings).toEqual({ slowModeMs: 2500 });
      expect(await store.updateSettings(ROOM, {})).toBe(true);
      expect((await store.getRoom(ROOM))?.settings).toEqual({ slowModeMs: 2500 });
      expect(await store.updateSettings('nowhere', { slowModeMs: 1 })).toBe(false);
      expect(await store.getRoom('nowhere')).toBeNull();
    });

    it('answers unknown_room or null for a room that does not exist', async () => {
      expect(await send({ room: 'nowhere' })).toEqual({ status: 'rejected', code: 'unknown_room' });
      expect(await store.range('nowhere', { limit: 10 })).toBeNull();
      expect(await store.moderationLists('nowhere', NOW)).toBeNull();
      expect(await store.setMute('nowhere', 'alice', NOW + 1000)).toBe(false);
      expect(await store.setBan('nowhere', 'alice', NOW + 1000)).toBe(false);
      expect(await store.getRoom('nowhere')).toBeNull();
    });
  });

  describe('append and history', () => {
    beforeEach(async () => {
      await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
    });

    it('assigns gap-free seqs and answers exactly the stored message', async () => {
      const first = await send({ text: 'one', cid: 'c1' });
      expect(first).toEqual({ status: 'appended', message: { seq: 1, uid: 'alice', kind: 'chat', prio: PRIORITY_LOW, text: 'one', ts: NOW, cid: 'c1' } });
      const gift = await send({ uid: 'shop', kind: 'gift', text: 'a rose', nowMs: NOW + 5, data: { giftId: 'rose', count: 3, nested: { ok: true } } });
      const system = await send({ uid: 'system', kind: 'system', text: 'notice', nowMs: NOW + 6, prio: PRIORITY_LOW });
      expect(gift).toEqual({
        status: 'appended',
        message: { seq: 2, uid: 'shop', kind: 'gift', prio: PRIORITY_HIGH, text: 'a rose', ts: NOW + 5, data: { giftId: 'rose', count: 3, nested: { ok: true } } },
      });
      expect(system).toMatchObject({ status: 'appended', message: { seq: 3, kind: 'system', prio: PRIORITY_LOW } });
      // Absent optional fields are absent, not undefined-valued keys.
      if (first.status !== 'appended' || gift.status !== 'appended' || system.status !== 'appended') throw new Error('unreachable');
      expect(Object.keys(system.message).sort()).toEqual(['kind', 'prio', 'seq', 'text', 'ts', 'uid']);
      const stored = await allMessages();
      expect(stored).toEqual([first.message, gift.message, system.message]);
      expect(stored.map((m) => Object.keys(m).sort())).toEqual([first, gift, system].map((r) => Object.keys(r.message).sort()));
      expect((await store.getRoom(ROOM))?.lastSeq).toBe(3);
    });

    it('keeps the newest historyLimit messages and reports firstSeq and lastSeq', async () => {
      expect(await store.range(ROOM, { limit: 10 })).toEqual({ msgs: [], lastSeq: 0, firstSeq: 1 });
      for (let i = 1; i <= HISTORY_LIMIT + 3; i++) await appendedSeq({ text: `m${i}` });
      const result = await store.range(ROOM, { limit: 100 });
      expect(result?.lastSeq).toBe(HISTORY_LIMIT + 3);
      expect(result?.firstSeq).toBe(4);
      expect(seqsOf(result!.msgs)).toEqual([4, 5, 6, 7, 8]);
      expect(result!.msgs.map((m) => m.text)).toEqual(['m4', 'm5', 'm6', 'm7', 'm8']);
    });

    it('ranges: oldest `limit` after afterSeq, newest `limit` otherwise, always oldest first', async () => {
      for (let i = 1; i <= 5; i++) await appendedSeq({ text: `m${i}` });
      const seqs = async (query: { afterSeq?: Seq; beforeSeq?: Seq; limit: number }) => seqsOf((await store.range(ROOM, query))!.msgs);
      expect(await seqs({ limit: 2 })).toEqual([4, 5]);
      expect(await seqs({ afterSeq: 1, limit: 2 })).toEqual([2, 3]);
      expect(await seqs({ afterSeq: 0, limit: 3 })).toEqual([1, 2, 3]);
      expect(await seqs({ beforeSeq: 5, limit: 2 })).toEqual([3, 4]);
      expect(await seqs({ afterSeq: 1, beforeSeq: 5, limit: 10 })).toEqual([2, 3, 4]);
      expect(await seqs({ afterSeq: 1, beforeSeq: 5, limit: 2 })).toEqual([2, 3]);
      expect(await seqs({ beforeSeq: 3, limit: 10 })).toEqual([1, 2]);
      expect(await seqs({ afterSeq: 5, limit: 10 })).toEqual([]);
      expect(await seqs({ afterSeq: 2, beforeSeq: 3, limit: 10 })).toEqual([]);
      expect(await seqs({ afterSeq: 99, limit: 10 })).toEqual([]);
      expect(await seqs({ limit: 0 })).toEqual([]);
    });

    it('ranges over what is left after trimming', async () => {
      for (let i = 1; i <= 8; i++) await appendedSeq();
      expect(seqsOf((await store.range(ROOM, { afterSeq: 1, limit: 2 }))!.msgs)).toEqual([4, 5]);
      expect(seqsOf((await store.range(ROOM, { beforeSeq: 6, limit: 10 }))!.msgs)).toEqual([4, 5]);
      expect(seqsOf((await store.range(ROOM, { beforeSeq: 3, limit: 10 }))!.msgs)).toEqual([]);
    });

    it('answers a repeated (uid, cid) with the original seq and appends nothing', async () => {
      expect(await appendedSeq({ cid: 'c1', text: 'first' })).toBe(1);
      expect(await send({ cid: 'c1', text: 'retry', nowMs: NOW + 100 })).toEqual({ status: 'duplicate', seq: 1 });
      expect(await appendedSeq({ uid: 'bob', cid: 'c1' })).toBe(2);
      expect(await appendedSeq({ cid: 'c2' })).toBe(3);
      // The same characters split differently between uid and cid are another pair.
      expect(await appendedSeq({ uid: 'alice:c', cid: 'x' })).toBe(4);
      expect(await appendedSeq({ uid: 'alice', cid: 'c:x' })).toBe(5);
      expect((await allMessages()).map((m) => m.text)).toEqual(['first', 'hi', 'hi', 'hi', 'hi']);
    });

    it('forgets a (uid, cid) pair dedupTtlMs after its append, by the caller\'s clock', async () => {
      expect(await appendedSeq({ cid: 'c1' })).toBe(1);
      expect(await send({ cid: 'c1', nowMs: NOW + LIMITS.dedupTtlMs - 1 })).toEqual({ status: 'duplicate', seq: 1 });
      expect(await appendedSeq({ cid: 'c1', nowMs: NOW + LIMITS.dedupTtlMs })).toBe(2);
      expect(await send({ cid: 'c1', nowMs: NOW + LIMITS.dedupTtlMs + 1 })).toEqual({ status: 'duplicate', seq: 2 });
    });

    it('answers a duplicate even to a sender who is muted since', async () => {
      await appendedSeq({ cid: 'c1', checks: VIEWER });
      await store.setMute(ROOM, 'alice', NOW + 60_000);
      expect(await send({ cid: 'c1', checks: VIEWER })).toEqual({ status: 'duplicate', seq: 1 });
    });

    it('gives 200 concurrent appends distinct, gap-free seqs', async () => {
      const count = 200;
      const roomy = create({ ...LIMITS, historyLimit: count });
      await roomy.createRoom('busy', NO_SLOW_MODE, NOW);
      const results = await Promise.all(Array.from({ length: count }, (_, i) =>
        roomy.append({ room: 'busy', uid: `u${i % 7}`, kind: 'chat', text: `m${i}`, cid: `c${i}`, nowMs: NOW, checks: VIEWER })));
      const seqs = results.map((result) => (result.status === 'appended' ? result.message.seq : -1));
      expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
      const stored = (await roomy.range('busy', { limit: count }))!;
      expect(seqsOf(stored.msgs)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
      // Each message is stored under the seq its sender was told.
      results.forEach((result) => {
        if (result.status === 'appended') expect(stored.msgs[result.message.seq - 1]).toEqual(result.message);
      });
    });
  });

  describe('appendBatch', () => {
    it('appends a batch in order, each input with its own checks and result, over several rooms', async () => {
      await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
      await store.createRoom('stage', NO_SLOW_MODE, NOW);
      await store.setMute(ROOM, 'mallory', NOW + 60_000);
      const chat = (room: string, uid: string, cid: string, checks: SendChecks = VIEWER): AppendInput =>
        ({ room, uid, kind: 'chat', text: `${uid} ${cid}`, cid, nowMs: NOW, checks });
      const results = await store.appendBatch([
        chat(ROOM, 'alice', 'c1'),
        chat(ROOM, 'mallory', 'm1'),
        chat('stage', 'bob', 'b1'),
        chat(ROOM, 'alice', 'c1'),
        chat('nowhere', 'alice', 'x1'),
        chat(ROOM, 'mallory', 'm2', STREAMER),
        chat('stage', 'bob', 'b2'),
      ]);
      expect(results.map((result) => (result.status === 'appended' ? [result.message.seq, result.message.text] : result.status === 'duplicate' ? ['duplicate', result.seq] : ['rejected', result.code])))
        .toEqual([[1, 'alice c1'], ['rejected', 'muted'], [1, 'bob b1'], ['duplicate', 1], ['rejected', 'unknown_room'], [2, 'mallory m2'], [2, 'bob b2']]);
      expect((await allMessages()).map((m) => m.text)).toEqual(['alice c1', 'mallory m2']);
      expect((await store.range('stage', { limit: 10 }))!.msgs.map((m) => m.text)).toEqual(['bob b1', 'bob b2']);
    });

    it('appends many messages of one room in one batch as one by one: seqs, duplicates, limits, a retraction and trimming', async () => {
      await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
      const tight: SendChecks = { rateLimit: { ratePerSec: 0.01, burst: 2 }, moderated: true };
      const chat = (uid: string, cid: string, checks: SendChecks = VIEWER): AppendInput =>
        ({ room: ROOM, uid, kind: 'chat', text: `${uid} ${cid}`, cid, nowMs: NOW, checks });
      const results = await store.appendBatch([
        chat('alice', 'c1'), chat('alice', 'c2'), chat('alice', 'c2'),
        chat('bob', 'b1', tight), chat('bob', 'b2', tight), chat('bob', 'b3', tight),
        chat('carol', 'k1'), chat('carol', 'k2'),
        { room: ROOM, uid: 'mod', kind: 'retract', text: '', target: 4, nowMs: NOW },
        chat('carol', 'k3'), chat('alice', 'c1'),
      ]);
      expect(results.map((result) => (result.status === 'appended' ? result.message.seq : result.status === 'duplicate' ? `duplicate ${result.seq}` : result.code)))
        .toEqual([1, 2, 'duplicate 2', 3, 4, 'rate_limited', 5, 6, 7, 8, 'duplicate 1']);
      const { msgs, firstSeq, lastSeq } = (await store.range(ROOM, { limit: 10 }))!;
      expect({ firstSeq, lastSeq }).toEqual({ firstSeq: 4, lastSeq: 8 });
      expect(msgs.map((m) => [m.seq, m.deleted === true ? 'deleted' : m.text])).toEqual([[4, 'deleted'], [5, 'carol k1'], [6, 'carol k2'], [7, ''], [8, 'carol k3']]);
      // Each message is stored as its sender was told.
      for (const result of results) {
        if (result.status === 'appended' && result.message.seq !== 4) expect(msgs.find((m) => m.seq === result.message.seq) ?? result.message).toEqual(result.message);
      }
      // The next batch goes on from there.
      expect(await store.appendBatch([chat('dave', 'd1')])).toMatchObject([{ status: 'appended', message: { seq: 9 } }]);
    });

    it('answers an empty batch with no results', async () => {
      expect(await store.appendBatch([])).toEqual([]);
    });
  });

  describe('moderation and limits', () => {
    const SLOW_MS = 10_000;
    beforeEach(async () => {
      await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
    });

    it('refuses a muted viewer until the mute ends or is lifted', async () => {
      expect(await store.setMute(ROOM, 'alice', NOW + 1000)).toBe(true);
      expect(await rejectionOf({ checks: VIEWER })).toBe('muted');
      expect(await rejectionOf({ checks: VIEWER, nowMs: NOW + 999 })).toBe('muted');
      expect(await rejectionOf({ uid: 'bob', checks: VIEWER })).toBe('appended');
      expect(await rejectionOf({ checks: VIEWER, nowMs: NOW + 1000 })).toBe('appended');
      await store.setMute(ROOM, 'alice', NOW + 60_000);
      expect(await rejectionOf({ checks: VIEWER, nowMs: NOW + 2000 })).toBe('muted');
      await store.setMute(ROOM, 'alice', null);
      expect(await rejectionOf({ checks: VIEWER, nowMs: NOW + 2000 })).toBe('appended');
    });

    it('refuses a banned viewer (before a mute), and lists the ban until it ends', async () => {
      await store.setMute(ROOM, 'alice', NOW + 60_000);
      expect(await store.setBan(ROOM, 'alice', NOW + 5000)).toBe(true);
      expect(await rejectionOf({ checks: VIEWER })).toBe('banned');
      expect((await store.moderationLists(ROOM, NOW))?.banned).toEqual([{ uid: 'alice', untilMs: NOW + 5000 }]);
      expect((await store.moderationLists(ROOM, NOW + 5000))?.banned).toEqual([]);
      expect(await rejectionOf({ checks: VIEWER, nowMs: NOW + 5000 })).toBe('muted');
      await store.setBan(ROOM, 'alice', NOW + 60_000);
      await store.setBan(ROOM, 'alice', null);
      expect((await store.moderationLists(ROOM, NOW))?.banned).toEqual([]);
    });

    it('holds a viewer to slow mode, counted from the last accepted message', async () => {
      await store.updateSettings(ROOM, { slowModeMs: SLOW_MS });
      expect(await rejectionOf({ checks: VIEWER })).toBe('appended');
      expect(await rejectionOf({ checks: VIEWER, nowMs: NOW + SLOW_MS - 1 })).toBe('slow_mode');
      // The refusal says how long the wait still is.
      expect(await send({ checks: VIEWER, nowMs: NOW + 400 })).toMatchObject({ status: 'rejected', code: 'slow_mode', retryAfterMs: SLOW_MS - 400 });
      expect(await rejectionOf({ uid: 'bob', checks: VIEWER, nowMs: NOW + 1 })).toBe('appended');
      expect(await rejectionOf({ checks: VIEWER, nowMs: NOW + SLOW_MS })).toBe('appended');
      expect(await rejectionOf({ checks: VIEWER, nowMs: NOW + SLOW_MS + 1 })).toBe('slow_mode');
    });

    it('exempts unmoderated senders from mutes, bans and slow mode, and backends from every check', async () => {
      await store.updateSettings(ROOM, { slowModeMs: SLOW_MS });
      await store.setMute(ROOM, 'alice', NOW + 60_000);
      await store.setBan(ROOM, 'alice', NOW + 60_000);
      expect(await rejectionOf({ checks: STREAMER })).toBe('appended');
      expect(await rejectionOf({ checks: STREAMER, nowMs: NOW + 1 })).toBe('appended');
      expect(await rejectionOf({})).toBe('appended');
      expect(await rejectionOf({ nowMs: NOW + 2 })).toBe('appended');
      expect(await rejectionOf({ checks: VIEWER })).toBe('banned');
    });

    it('rate-limits with a token bucket, moderated or not, but never a backend', async () => {
      const rateLimit: RateLimit = { ratePerSec: 1, burst: 3 };
      for (const moderated of [true, false]) {
        const uid = moderated ? 'viewer' : 'streamer';
        const checks: SendChecks = { rateLimit, moderated };
        for (let i = 0; i < 3; i++) expect(await rejectionOf({ uid, checks })).toBe('appended');
        expect(await rejectionOf({ uid, checks })).toBe('rate_limited');
        expect(await rejectionOf({ uid, checks, nowMs: NOW + 999 })).toBe('rate_limited');
        // One token back after a second, and only one.
        expect(await rejectionOf({ uid, checks, nowMs: NOW + 1000 })).toBe('appended');
        expect(await rejectionOf({ uid, checks, nowMs: NOW + 1000 })).toBe('rate_limited');
        // Refills up to the burst, no further.
        for (let i = 0; i < 3; i++) expect(await rejectionOf({ uid, checks, nowMs: NOW + 60_000 })).toBe('appended');
        expect(await rejectionOf({ uid, checks, nowMs: NOW + 60_000 })).toBe('rate_limited');
      }
      expect(await rejectionOf({ uid: 'other', checks: { rateLimit, moderated: true } })).toBe('appended');
      for (let i = 0; i < 5; i++) expect(await rejectionOf({ uid: 'viewer' })).toBe('appended');
    });

    it('a rejected send consumes no token, sets no slow-mode mark, remembers no cid and takes no seq', async () => {
      await store.updateSettings(ROOM, { slowModeMs: SLOW_MS });
      // A single token that takes 100 s to come back: any spent token shows.
      const checks: SendChecks = { rateLimit: { ratePerSec: 0.01, burst: 1 }, moderated: true };
      await store.setMute(ROOM, 'alice', NOW + 1000);
      for (let i = 0; i < 3; i++) expect(await rejectionOf({ checks, cid: 'c1', nowMs: NOW + i })).toBe('muted');
      await store.setMute(ROOM, 'alice', null);
      expect(await rejectionOf({ checks, kind: 'retract', text: '', target: 99, nowMs: NOW + 3 })).toBe('not_found');
      expect((await store.getRoom(ROOM))?.lastSeq).toBe(0);
      expect(await send({ checks, cid: 'c1', nowMs: NOW + 4 })).toMatchObject({ status: 'appended', message: { seq: 1 } });
    });

    it('a rate-limited send does not start a slow-mode period', async () => {
      const slowMs = 6000;
      await store.updateSettings(ROOM, { slowModeMs: slowMs });
      const checks: SendChecks = { rateLimit: { ratePerSec: 0.1, burst: 1 }, moderated: true };
      expect(await rejectionOf({ checks })).toBe('appended');
      // Slow mode is over, the bucket is not full yet.
      expect(await rejectionOf({ checks, nowMs: NOW + slowMs })).toBe('rate_limited');
      // The bucket holds a token again; a slow-mode mark from the refused send would still hold.
      expect(await rejectionOf({ checks, nowMs: NOW + 11_000 })).toBe('appended');
    });
  });

  describe('retract', () => {
    beforeEach(async () => {
      await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
    });

    it('appends the retraction and tombstones its target in history', async () => {
      await appendedSeq({ text: 'keep' });
      await appendedSeq({ uid: 'troll', text: 'nasty', cid: 't1', nowMs: NOW + 1, data: { link: 'x' } });
      await appendedSeq({ text: 'keep too', nowMs: NOW + 2 });
      const retraction = await send({ uid: 'mod', kind: 'retract', text: '', target: 2, nowMs: NOW + 3 });
      expect(retraction).toEqual({
        status: 'appended',
        message: { seq: 4, uid: 'mod', kind: 'retract', prio: PRIORITY_HIGH, text: '', ts: NOW + 3, target: 2 },
      });
      const stored = await allMessages();
      expect(stored[1]).toEqual({ seq: 2, uid: 'troll', kind: 'chat', prio: PRIORITY_LOW, text: '', ts: NOW + 1, cid: 't1', deleted: true });
      expect(stored.map((m) => m.text)).toEqual(['keep', '', 'keep too', '']);
      expect(stored.filter((m) => m.deleted)).toHaveLength(1);
      // Retracting twice leaves the same tombstone.
      await appendedSeq({ uid: 'mod', kind: 'retract', text: '', target: 2, nowMs: NOW + 4 });
      expect((await allMessages())[1]).toEqual(stored[1]);
    });

    it('answers not_found for a seq the room never had, and appends nothing', async () => {
      await appendedSeq();
      expect(await rejectionOf({ kind: 'retract', text: '', target: 2 })).toBe('not_found');
      expect(await rejectionOf({ kind: 'retract', text: '', target: 0 })).toBe('not_found');
      expect((await store.getRoom(ROOM))?.lastSeq).toBe(1);
    });

    it('accepts retracting a message history no longer holds', async () => {
      for (let i = 0; i < HISTORY_LIMIT + 1; i++) await appendedSeq();
      expect(await rejectionOf({ kind: 'retract', text: '', target: 1 })).toBe('appended');
      expect((await allMessages()).some((m) => m.deleted)).toBe(false);
    });
  });

  describe('pins', () => {
    beforeEach(async () => {
      await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
    });

    const pinOf = async (target: Seq, nowMs = NOW + 10) => store.pin({ room: ROOM, target, uid: 'mod', nowMs });

    it('appends a pin message carrying the pinned text and author, and the room, ranges and joins show the original', async () => {
      await appendedSeq({ text: 'first' });
      const gift = await send({ uid: 'shop', kind: 'gift', text: 'a rose', cid: 'g1', nowMs: NOW + 1, data: { giftId: 'rose' } });
      if (gift.status !== 'appended') throw new Error('unreachable');
      const result = await pinOf(2);
      expect(result).toEqual({
        status: 'pinned',
        message: { seq: 3, uid: 'mod', kind: 'pin', prio: PRIORITY_HIGH, text: 'a rose', ts: NOW + 10, target: 2, data: { from: 'shop', kind: 'gift' } },
        pinned: gift.message,
      });
      if (result.status !== 'pinned') throw new Error('unreachable');
      expect((await allMessages())[2]).toEqual(result.message);
      expect((await store.getRoom(ROOM))?.pinned).toEqual(gift.message);
      expect((await store.getRoom(ROOM))?.lastSeq).toBe(3);
      expect((await store.range(ROOM, { limit: 1 }))?.pinned).toEqual(gift.message);
    });

    it('replaces the previous pin without an unpin in between, and keeps the pin when history trims the message', async () => {
      await appendedSeq({ text: 'one' });
      await appendedSeq({ text: 'two' });
      await pinOf(1);
      const second = await pinOf(2);
      expect(second).toMatchObject({ status: 'pinned', message: { seq: 4, kind: 'pin', target: 2, text: 'two' } });
      expect((await store.getRoom(ROOM))?.pinned).toMatchObject({ seq: 2, text: 'two' });
      for (let i = 0; i < HISTORY_LIMIT; i++) await appendedSeq({ text: `later ${i}` });
      expect((await store.range(ROOM, { limit: 10 }))!.firstSeq).toBeGreaterThan(2);
      expect((await store.getRoom(ROOM))?.pinned).toMatchObject({ seq: 2, text: 'two', uid: 'alice' });
    });

    it('refuses seqs not in history, withdrawn messages and kinds that cannot be pinned, appending nothing', async () => {
      await appendedSeq({ text: 'soon gone' });
      await appendedSeq({ uid: 'mod', kind: 'retract', text: '', target: 1, nowMs: NOW + 1 });
      expect(await pinOf(0)).toEqual({ status: 'rejected', code: 'not_found' });
      expect(await pinOf(99)).toEqual({ status: 'rejected', code: 'not_found' });
      expect(await pinOf(1)).toEqual({ status: 'rejected', code: 'not_found' });
      expect(await pinOf(2)).toEqual({ status: 'rejected', code: 'not_pinnable' });
      expect(await store.pin({ room: 'nowhere', target: 1, uid: 'mod', nowMs: NOW })).toEqual({ status: 'rejected', code: 'unknown_room' });
      for (let i = 0; i < HISTORY_LIMIT + 1; i++) await appendedSeq();
      // Seq 3 has left history: it cannot be read, so it cannot be pinned.
      expect(await pinOf(3)).toEqual({ status: 'rejected', code: 'not_found' });
      expect((await store.getRoom(ROOM))?.lastSeq).toBe(3 + HISTORY_LIMIT);
      expect((await store.getRoom(ROOM))?.pinned).toBeUndefined();
    });

    it('unpins with an unpin message naming the pinned seq; with nothing pinned it answers not_pinned', async () => {
      expect(await store.unpin({ room: ROOM, uid: 'mod', nowMs: NOW })).toEqual({ status: 'rejected', code: 'not_pinned' });
      expect(await store.unpin({ room: 'nowhere', uid: 'mod', nowMs: NOW })).toEqual({ status: 'rejected', code: 'unknown_room' });
      await appendedSeq();
      await pinOf(1);
      const result = await store.unpin({ room: ROOM, uid: 'mod2', nowMs: NOW + 20 });
      expect(result).toEqual({ status: 'unpinned', message: { seq: 3, uid: 'mod2', kind: 'unpin', prio: PRIORITY_HIGH, text: '', ts: NOW + 20, target: 1 } });
      expect((await allMessages())[2]).toEqual((result as { message: RoomMessage }).message);
      expect((await store.getRoom(ROOM))?.pinned).toBeUndefined();
      expect((await store.range(ROOM, { limit: 1 }))?.pinned).toBeUndefined();
      expect(await store.unpin({ room: ROOM, uid: 'mod', nowMs: NOW })).toEqual({ status: 'rejected', code: 'not_pinned' });
    });

    it('a retraction of the pinned message unpins it with an unpin message right after; of another message it does not', async () => {
      await appendedSeq({ text: 'pinned' });
      await appendedSeq({ text: 'other' });
      await pinOf(1);
      const other = await send({ uid: 'mod', kind: 'retract', text: '', target: 2, nowMs: NOW + 30 });
      expect(other).toMatchObject({ status: 'appended', message: { seq: 4 } });
      expect(other).not.toHaveProperty('unpin');
      expect((await store.getRoom(ROOM))?.pinned).toMatchObject({ seq: 1 });
      const retraction = await send({ uid: 'mod', kind: 'retract', text: '', target: 1, nowMs: NOW + 31 });
      expect(retraction).toEqual({
        status: 'appended',
        message: { seq: 5, uid: 'mod', kind: 'retract', prio: PRIORITY_HIGH, text: '', ts: NOW + 31, target: 1 },
        unpin: { seq: 6, uid: 'mod', kind: 'unpin', prio: PRIORITY_HIGH, text: '', ts: NOW + 31, target: 1 },
      });
      expect(seqsOf(await allMessages()).slice(-2)).toEqual([5, 6]);
      expect((await allMessages()).at(-1)).toEqual((retraction as { unpin: RoomMessage }).unpin);
      expect((await store.getRoom(ROOM))?.pinned).toBeUndefined();
      expect((await store.getRoom(ROOM))?.lastSeq).toBe(6);
    });
  });

  describe('moderation lists', () => {
    it('lists the mutes and bans still in force, sorted by uid', async () => {
      expect(await store.moderationLists(ROOM, NOW)).toBeNull();
      await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
      expect(await store.moderationLists(ROOM, NOW)).toEqual({ muted: [], banned: [] });
      await store.setMute(ROOM, 'zed', NOW + 5000);
      await store.setMute(ROOM, 'amy', NOW + 9000);
      await store.setMute(ROOM, 'gone', NOW + 10);
      await store.setMute(ROOM, 'lifted', NOW + 9000);
      await store.setMute(ROOM, 'lifted', null);
      await store.setBan(ROOM, 'troll', NOW + 60_000);
      expect(await store.moderationLists(ROOM, NOW + 100)).toEqual({
        muted: [{ uid: 'amy', untilMs: NOW + 9000 }, { uid: 'zed', untilMs: NOW + 5000 }],
        banned: [{ uid: 'troll', untilMs: NOW + 60_000 }],
      });
      expect(await store.moderationLists(ROOM, NOW + 6000)).toEqual({ muted: [{ uid: 'amy', untilMs: NOW + 9000 }], banned: [{ uid: 'troll', untilMs: NOW + 60_000 }] });
    });
  });
});

describe('RedisRoomStore keys', () => {
  const IDLE_TTL_MS = 60_000;
  beforeEach(async () => {
    await contractRedis.flushAll();
  });

  it('keeps every key of a room in its hash slot and lets an idle room expire with all its keys', async () => {
    const store = new RedisRoomStore({ redis: contractRedis.admin(), limits: { ...LIMITS, roomIdleTtlMs: IDLE_TTL_MS }, keyPrefix: 'test:' });
    await store.createRoom(ROOM, { slowModeMs: 1000 }, NOW);
    await store.setMute(ROOM, 'mallory', NOW + 600_000);
    // A bucket that refills slowly: its key lives until the bucket is full again (50 s here), not for
    // the 10 ms one token of LOOSE_RATE takes, which a busy machine may spend before the listing.
    const slowRefill: SendChecks = { rateLimit: { ratePerSec: 0.02, burst: 100 }, moderated: true };
    await store.append({ room: ROOM, uid: 'alice', kind: 'chat', text: 'hi', cid: 'c1', nowMs: NOW, checks: slowRefill });
    await store.setBan(ROOM, 'mallory', NOW + 600_000);
    await store.pin({ room: ROOM, target: 1, uid: 'mod', nowMs: NOW });

    const keys = (await contractRedis.admin().keys('*')).sort();
    expect(keys).toEqual([
      'test:room:{lobby}:ban', 'test:room:{lobby}:dedup:5:alice:c1', 'test:room:{lobby}:hist', 'test:room:{lobby}:meta',
      'test:room:{lobby}:mute', 'test:room:{lobby}:pin', 'test:room:{lobby}:rl:alice', 'test:room:{lobby}:seq', 'test:room:{lobby}:slow:alice',
    ]);
    for (const key of keys) {
      const ttlMs = await contractRedis.admin().pttl(key);
      expect(ttlMs, key).toBeGreaterThan(0);
      expect(ttlMs, key).toBeLessThanOrEqual(IDLE_TTL_MS);
    }
  });

  it('trims history in steps (one record over the limit of 5 here) and never shows the records kept over the limit', async () => {
    const admin = contractRedis.admin();
    const store = new RedisRoomStore({ redis: admin, limits: LIMITS, keyPrefix: 'test:' });
    const hist = `test:room:{${ROOM}}:hist`;
    await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
    const append = (text: string) => store.append({ room: ROOM, uid: 'alice', kind: 'chat', text, nowMs: NOW });
    for (let i = 1; i <= HISTORY_LIMIT + 1; i++) await append(`m${i}`);
    expect(await admin.llen(hist)).toBe(HISTORY_LIMIT + 1);
    const range = (await store.range(ROOM, { limit: 100 }))!;
    expect({ firstSeq: range.firstSeq, lastSeq: range.lastSeq, seqs: range.msgs.map((m) => m.seq) }).toEqual({ firstSeq: 2, lastSeq: 6, seqs: [2, 3, 4, 5, 6] });
    expect((await store.range(ROOM, { afterSeq: 0, limit: 2 }))!.msgs.map((m) => m.text)).toEqual(['m2', 'm3']);
    expect(await store.pin({ room: ROOM, target: 1, uid: 'mod', nowMs: NOW })).toEqual({ status: 'rejected', code: 'not_found' });
    expect(await store.pin({ room: ROOM, target: 2, uid: 'mod', nowMs: NOW })).toMatchObject({ status: 'pinned', pinned: { seq: 2, text: 'm2' } });
    // The pin message (seq 7) trims to the limit, as the next append over the slack would.
    expect(await admin.llen(hist)).toBe(HISTORY_LIMIT);
    await append('m8');
    await append('m9');
    expect(await admin.llen(hist)).toBe(HISTORY_LIMIT);
    expect((await store.range(ROOM, { limit: 100 }))!.msgs.map((m) => m.seq)).toEqual([5, 6, 7, 8, 9]);
  });

  it('renews a room\'s idle TTL on append once 1 % of it has passed since the last renewal, not on every append', async () => {
    const admin = contractRedis.admin();
    const store = new RedisRoomStore({ redis: admin, limits: { ...LIMITS, roomIdleTtlMs: IDLE_TTL_MS }, keyPrefix: 'test:' });
    await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
    await store.append({ room: ROOM, uid: 'alice', kind: 'chat', text: 'first', nowMs: NOW });
    const roomKeys = ['meta', 'seq', 'hist'].map((part) => `test:room:{${ROOM}}:${part}`);
    const shortenTtls = async (ttlMs: number) => { for (const key of roomKeys) await admin.pexpire(key, ttlMs); };

    // Within 1 % (600 ms of 60 s) of the last renewal by the caller's clock, an append leaves the TTLs as they are.
    await shortenTtls(30_000);
    await store.append({ room: ROOM, uid: 'alice', kind: 'chat', text: 'second', nowMs: NOW + 599 });
    for (const key of roomKeys) expect(await admin.pttl(key), key).toBeLessThanOrEqual(30_000);

    // Past it, the next append gives every key of the room the whole TTL again...
    await store.append({ room: ROOM, uid: 'alice', kind: 'chat', text: 'third', nowMs: NOW + 600 });
    for (const key of roomKeys) expect(await admin.pttl(key), key).toBeGreaterThan(59_000);

    // ...and so does one from a clock that is behind by more than that (the renewal is then counted from it).
    await shortenTtls(30_000);
    await store.append({ room: ROOM, uid: 'alice', kind: 'chat', text: 'fourth', nowMs: NOW - 1 });
    for (const key of roomKeys) expect(await admin.pttl(key), key).toBeGreaterThan(59_000);
    await shortenTtls(30_000);
    await store.append({ room: ROOM, uid: 'alice', kind: 'chat', text: 'fifth', nowMs: NOW + 100 });
    for (const key of roomKeys) expect(await admin.pttl(key), key).toBeLessThanOrEqual(30_000);
  });

  it('reads the mute and ban lists only in a room that has one, whoever wrote them', async () => {
    const admin = contractRedis.admin();
    const store = new RedisRoomStore({ redis: admin, limits: LIMITS, keyPrefix: 'test:' });
    const send = (uid: string) => store.append({ room: ROOM, uid, kind: 'chat', text: 'hi', nowMs: NOW, checks: VIEWER });
    /** HGETs (the per-sender mute and ban reads) that one send ran. */
    const listReadsOf = async (uid: string) => {
      await admin.config('RESETSTAT');
      const result = await send(uid);
      const hget = /cmdstat_hget:calls=(\d+)/.exec(await admin.info('commandstats'));
      return { status: result.status, reads: Number(hget?.[1] ?? 0) };
    };
    await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
    expect(await listReadsOf('alice')).toEqual({ status: 'appended', reads: 0 });

    await store.setMute(ROOM, 'bob', NOW + 60_000);
    expect(await listReadsOf('alice')).toEqual({ status: 'appended', reads: 2 });
    expect(await send('bob')).toMatchObject({ status: 'rejected', code: 'muted' });
    // Lifting the last mute leaves no list: sends skip the reads again.
    await store.setMute(ROOM, 'bob', null);
    expect(await listReadsOf('bob')).toEqual({ status: 'appended', reads: 0 });

    // A ban written by another writer (a replica of an earlier release) is read all the same.
    await admin.hset(`test:room:{${ROOM}}:ban`, 'carol', String(NOW + 60_000));
    expect(await send('carol')).toMatchObject({ status: 'rejected', code: 'banned' });
  });

  it('renews on the first append a room whose meta has no renewal mark (stored by an earlier release)', async () => {
    const admin = contractRedis.admin();
    const store = new RedisRoomStore({ redis: admin, limits: { ...LIMITS, roomIdleTtlMs: IDLE_TTL_MS }, keyPrefix: 'test:' });
    await store.createRoom(ROOM, NO_SLOW_MODE, NOW);
    await store.append({ room: ROOM, uid: 'alice', kind: 'chat', text: 'first', nowMs: NOW });
    const meta = `test:room:{${ROOM}}:meta`;
    await admin.hdel(meta, 'renewedAtMs');
    await admin.pexpire(meta, 30_000);
    await store.append({ room: ROOM, uid: 'alice', kind: 'chat', text: 'second', nowMs: NOW + 1 });
    expect(await admin.pttl(meta)).toBeGreaterThan(59_000);
  });
});
