/**
 * The InboxStore contract (private chat), run against the in-memory store and against the Redis
 * store on a real redis-server. Time is the `nowMs` the tests pass: nothing sleeps.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { conversationOf, privateMessageFor, type ChatRetention, type InboxStore, type PrivateSendInput } from '../../src/shared/store/inbox-store.js';
import { SLOT_COUNT, slotOfTag, slotTags } from '../../src/shared/store/key-slot.js';
import { MemoryInboxStore } from '../../src/shared/store/memory-inbox-store.js';
import { RedisInboxStore } from '../../src/shared/store/redis-inbox-store.js';
import { useContractRedis } from '../helpers/contract-redis.js';

const NOW = 1_700_000_000_000;
const RETENTION: ChatRetention = { count: 10, maxAgeMs: 3_600_000, dedupTtlMs: 60_000 };
const LOOSE = { ratePerSec: 1000, burst: 1000 };
const GRACE_MS = 5_000;
/** A Redis store visits a window of the per-slot outboxes per `pending` call: these many calls visit all. */
const SLOTS_PER_VISIT = 4096;
const PENDING_CALLS_FOR_ALL = 4;

const contractRedis = useContractRedis();

/** The connection of the Redis target named `name`, to look at what a store wrote. */
const redisOf = (name: string) => {
  const target = contractRedis.targets.find((candidate) => candidate.name === name);
  if (!target) throw new Error(`no Redis target ${name}`);
  return target.redis();
};

const implementations = [
  { name: 'memory', create: (retention: ChatRetention): InboxStore => new MemoryInboxStore(retention) },
  ...contractRedis.targets.map(({ name, redis }) => ({ name, create: (retention: ChatRetention): InboxStore => new RedisInboxStore({ redis: redis(), retention, outboxSlotsPerVisit: SLOTS_PER_VISIT }) })),
];

describe.each(implementations)('InboxStore ($name)', ({ name, create }) => {
  let store: InboxStore;
  let nextId = 0;
  // Memory and one Redis node hold both users' keys where the send runs: it does the inbox steps too.
  // A Cluster spreads them over slots, so there they are `deliver`'s.
  const appendsInSend = name !== 'redis-cluster';
  beforeEach(async () => {
    await contractRedis.flushAll();
    store = create(RETENTION);
  });

  const store1 = (overrides: Partial<PrivateSendInput> = {}) =>
    store.send({ from: 'alice', to: 'bob', cid: `c${nextId++}`, text: 'hi', nowMs: NOW, rate: LOOSE, ...overrides });
  /** A whole send as the chat service makes it: store, both inbox steps, settle. */
  const send = async (overrides: Partial<PrivateSendInput> = {}) => {
    const result = await store1(overrides);
    if (result.status === 'rejected') return result;
    const seqs = await store.deliver(result.message, overrides.nowMs ?? NOW);
    // Where the send ran the inbox steps, `deliver` finds them done.
    if (result.status === 'stored' && result.inboxSeqs) expect(seqs).toEqual(result.inboxSeqs);
    await store.settle(result.message);
    return { status: result.status, forSender: privateMessageFor(result.message, seqs.senderSeq), forRecipient: privateMessageFor(result.message, seqs.recipientSeq) };
  };
  /** Every outbox entry due at `nowMs`: enough `pending` calls to visit every part of the outbox. */
  const allPending = async (nowMs: number) => {
    const found = new Map<string, Awaited<ReturnType<InboxStore['pending']>>[number]>();
    for (let i = 0; i < PENDING_CALLS_FOR_ALL; i++) for (const entry of await store.pending(nowMs, GRACE_MS, 100)) found.set(`${entry.conv}#${entry.cseq}`, entry);
    return [...found.values()];
  };

  it('stores a message once and gives each user the next seq of their own inbox', async () => {
    const first = await send({ text: 'one' });
    await send({ from: 'carol', to: 'bob', text: 'from carol' });
    const second = await send({ text: 'two' });
    if (first.status !== 'stored' || second.status !== 'stored') throw new Error('expected stored');
    expect(first.forSender).toMatchObject({ seq: 1, cseq: 1, from: 'alice', to: 'bob', text: 'one' });
    expect(first.forRecipient).toMatchObject({ seq: 1, cseq: 1, mid: first.forSender.mid });
    expect(second.forSender).toMatchObject({ seq: 2, cseq: 2 });
    expect(second.forRecipient).toMatchObject({ seq: 3, cseq: 2 });
    const page = await store.sync('bob', 'web', undefined, 100, NOW);
    expect(page.msgs.map((m) => [m.seq, m.from, m.text])).toEqual([[1, 'alice', 'one'], [2, 'carol', 'from carol'], [3, 'alice', 'two']]);
    expect(page).toMatchObject({ cursor: 0, lastSeq: 3, firstSeq: 1 });
    if (name !== 'memory') {
      // One stored copy in the conversation log; the inboxes hold references.
      expect(await redisOf(name).llen(`rc:conv:{${conversationOf('alice', 'bob')}}:log`)).toBe(2);
      expect(await redisOf(name).llen('rc:user:{bob}:inbox')).toBe(3);
    }
  });

  it('answers a retried client message id with the first message, storing nothing', async () => {
    const first = await send({ cid: 'same', text: 'once' });
    const again = await send({ cid: 'same', text: 'once' });
    expect(again.status).toBe('duplicate');
    if (first.status === 'rejected' || again.status === 'rejected') throw new Error('unexpected rejection');
    expect(again.forSender).toEqual(first.forSender);
    expect(again.forRecipient).toEqual(first.forRecipient);
    expect((await store.sync('bob', 'web', undefined, 100, NOW)).lastSeq).toBe(1);
    // The id is forgotten after the dedup ttl.
    expect((await send({ cid: 'same', nowMs: NOW + RETENTION.dedupTtlMs + 1 })).status).toBe('stored');
  });

  it('refuses a blocked sender and a sender over the rate, changing nothing', async () => {
    await store.setBlocked('bob', 'alice', true);
    expect(await store.isBlocked('bob', 'alice')).toBe(true);
    expect(await send()).toEqual({ status: 'rejected', code: 'blocked' });
    await store.setBlocked('bob', 'alice', false);
    expect((await send()).status).toBe('stored');
    const rate = { ratePerSec: 1, burst: 2 };
    expect((await send({ from: 'dave', rate })).status).toBe('stored');
    expect((await send({ from: 'dave', rate })).status).toBe('stored');
    expect(await send({ from: 'dave', rate })).toEqual({ status: 'rejected', code: 'rate_limited' });
    expect((await send({ from: 'dave', rate, nowMs: NOW + 1000 })).status).toBe('stored');
    expect((await store.sync('bob', 'web', undefined, 100, NOW + 1000)).lastSeq).toBe(4);
  });

  it('pages the inbox; asking for the next page acknowledges the previous one, per device', async () => {
    for (let i = 0; i < 7; i++) await send({ text: `m${i}` });
    const page1 = await store.sync('bob', 'ios', undefined, 3, NOW);
    expect(page1.msgs.map((m) => m.seq)).toEqual([1, 2, 3]);
    const page2 = await store.sync('bob', 'ios', 3, 3, NOW);
    expect(page2.msgs.map((m) => m.seq)).toEqual([4, 5, 6]);
    expect(page2.cursor).toBe(3);
    const page3 = await store.sync('bob', 'ios', 6, 3, NOW);
    expect(page3.msgs.map((m) => m.seq)).toEqual([7]);
    expect(await store.ack('bob', 'ios', 7, NOW)).toBe(7);
    // Cursors never move back, nor past the inbox.
    expect(await store.ack('bob', 'ios', 2, NOW)).toBe(7);
    expect(await store.ack('bob', 'ios', 99, NOW)).toBe(7);
    // Another device has its own cursor.
    expect((await store.sync('bob', 'web', undefined, 100, NOW)).msgs).toHaveLength(7);
    expect((await store.sync('bob', 'ios', undefined, 100, NOW)).msgs).toHaveLength(0);
  });

  it('answers the newest messages after the cursor for the login push', async () => {
    for (let i = 0; i < 6; i++) await send({ text: `m${i}` });
    await store.ack('bob', 'web', 2, NOW);
    const latest = await store.latest('bob', 'web', 3, NOW);
    expect(latest.msgs.map((m) => m.seq)).toEqual([4, 5, 6]);
    expect(latest).toMatchObject({ cursor: 2, lastSeq: 6 });
    expect((await store.latest('bob', 'web', 10, NOW)).msgs.map((m) => m.seq)).toEqual([3, 4, 5, 6]);
  });

  it('trims inboxes and logs by count and by age', async () => {
    for (let i = 0; i < RETENTION.count + 5; i++) await send({ text: `m${i}` });
    const page = await store.sync('bob', 'web', undefined, 100, NOW);
    expect(page.firstSeq).toBe(6);
    expect(page.msgs.map((m) => m.seq)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const history = await store.history('bob', 'alice', undefined, 100, NOW);
    expect(history.msgs).toHaveLength(RETENTION.count);
    if (name !== 'memory') {
      expect(await redisOf(name).llen(`rc:conv:{${conversationOf('alice', 'bob')}}:log`)).toBe(RETENTION.count);
      expect(await redisOf(name).llen('rc:user:{bob}:inbox')).toBe(RETENTION.count);
    }
    const later = NOW + RETENTION.maxAgeMs + 1;
    expect((await store.sync('bob', 'web', undefined, 100, later)).msgs).toEqual([]);
    await send({ text: 'fresh', nowMs: later });
    const afterAge = await store.sync('bob', 'web', undefined, 100, later);
    expect(afterAge.msgs.map((m) => m.text)).toEqual(['fresh']);
    expect(afterAge.firstSeq).toBe(16);
    expect((await store.history('alice', 'bob', undefined, 100, later)).msgs.map((m) => m.text)).toEqual(['fresh']);
  });

  it('keeps a user\'s conversation list to the newest `count` conversations', async () => {
    const senders = Array.from({ length: RETENTION.count + 2 }, (_, i) => `s${String(i).padStart(2, '0')}`);
    for (const [i, from] of senders.entries()) await send({ from, to: 'bob', text: 'hi', nowMs: NOW + i });
    // A newer message in a listed conversation moves it up and drops nothing.
    await send({ from: 's05', to: 'bob', text: 'again', nowMs: NOW + 100 });
    const listed = (await store.conversations('bob', 100)).map((c) => c.peer);
    expect(listed).toEqual(['s05', ...senders.slice(2).reverse().filter((peer) => peer !== 's05')]);
  });

  it('pages back through a conversation as each user sees it', async () => {
    for (let i = 0; i < 5; i++) await send({ from: i % 2 ? 'bob' : 'alice', to: i % 2 ? 'alice' : 'bob', text: `m${i}` });
    const newest = await store.history('alice', 'bob', undefined, 2, NOW);
    expect(newest.msgs.map((m) => m.cseq)).toEqual([4, 5]);
    expect(newest.more).toBe(true);
    const older = await store.history('alice', 'bob', 4, 10, NOW);
    expect(older.msgs.map((m) => m.text)).toEqual(['m0', 'm1', 'm2']);
    expect(older.more).toBe(false);
    // History goes by cseq: no inbox seq.
    expect(older.msgs.map((m) => m.seq)).toEqual([0, 0, 0]);
    expect(await store.history('alice', 'nobody', undefined, 10, NOW)).toEqual({ msgs: [], more: false });
  });

  it('keeps read cursors and lists conversations with their unread state', async () => {
    await send({ text: 'a1' });
    await send({ from: 'carol', to: 'bob', text: 'c1', nowMs: NOW + 1 });
    await send({ text: 'a2', nowMs: NOW + 2 });
    const convs = await store.conversations('bob', 10);
    expect(convs.map((c) => [c.peer, c.lastSeq, c.readSeq])).toEqual([['alice', 2, 0], ['carol', 1, 0]]);
    expect(await store.markRead('bob', 'alice', 1)).toBe(1);
    expect(await store.markRead('bob', 'alice', 0)).toBe(1);
    expect(await store.markRead('bob', 'alice', 50)).toBe(2);
    expect(await store.markRead('bob', 'nobody', 5)).toBe(0);
    expect((await store.conversations('bob', 1)).map((c) => [c.peer, c.readSeq])).toEqual([['alice', 2]]);
    // The sender has read its own conversation up to what it sent.
    expect((await store.conversations('alice', 10)).map((c) => [c.peer, c.readSeq])).toEqual([['bob', 2]]);
  });

  it('keeps a send in the outbox until settled; its inbox steps, in the send or after it, append it once', async () => {
    const stored = await store1({ text: 'pending' });
    if (stored.status !== 'stored') throw new Error('expected stored');
    expect(stored.message).toMatchObject({ cseq: 1, from: 'alice', to: 'bob', text: 'pending', ts: NOW });
    // Where the send does not run the inbox steps, it is acknowledged but in no inbox yet: a sync does not show it.
    expect(stored.inboxSeqs).toEqual(appendsInSend ? { senderSeq: 1, recipientSeq: 1 } : undefined);
    expect((await store.sync('bob', 'web', undefined, 100, NOW)).lastSeq).toBe(appendsInSend ? 1 : 0);
    expect(await allPending(NOW + GRACE_MS - 1)).toEqual([]);
    expect((await allPending(NOW + GRACE_MS)).map((entry) => [entry.conv, entry.cseq, entry.from, entry.to, entry.text]))
      .toEqual([['alice/bob', 1, 'alice', 'bob', 'pending']]);
    const first = await store.deliver(stored.message, NOW);
    // A retry (or a repair racing the send) appends nothing twice and answers the same seqs.
    expect(await store.deliver(stored.message, NOW)).toEqual(first);
    expect(first).toEqual({ senderSeq: 1, recipientSeq: 1 });
    expect((await store.sync('bob', 'web', undefined, 100, NOW)).msgs.map((m) => [m.seq, m.text])).toEqual([[1, 'pending']]);
    expect((await store.sync('alice', 'web', undefined, 100, NOW)).lastSeq).toBe(1);
    await store.settle(stored.message);
    expect(await allPending(NOW + GRACE_MS)).toEqual([]);
  });

  it('appends a conversation to an inbox in cseq order when its deliveries race', async () => {
    const one = await store1({ text: 'one' });
    const two = await store1({ from: 'bob', to: 'alice', text: 'two' });
    if (one.status !== 'stored' || two.status !== 'stored') throw new Error('expected stored');
    // Where the inbox steps are apart from the send, the second send's run first: they bring both
    // inboxes up to date with the conversation. Where the sends ran them, they are found done.
    expect(await store.deliver(two.message, NOW)).toEqual({ senderSeq: 2, recipientSeq: 2 });
    expect(await store.deliver(one.message, NOW)).toEqual({ senderSeq: 1, recipientSeq: 1 });
    for (const uid of ['alice', 'bob']) {
      expect((await store.sync(uid, 'web', undefined, 100, NOW)).msgs.map((m) => [m.seq, m.cseq, m.text])).toEqual([[1, 1, 'one'], [2, 2, 'two']]);
    }
    // Both entries are still due until settled: a repair would find the inboxes done.
    expect((await allPending(NOW + GRACE_MS)).map((entry) => entry.cseq).sort()).toEqual([1, 2]);
    await store.settle(two.message);
    await store.settle(one.message);
    expect(await allPending(NOW + GRACE_MS)).toEqual([]);
  });

  it('repairs from the outbox a send that was never settled (its inbox steps never ran, unless in the send)', async () => {
    await send({ text: 'before' });
    const lost = await store1({ text: 'lost' });
    if (lost.status !== 'stored') throw new Error('expected stored');
    const due = await allPending(NOW + GRACE_MS);
    expect(due.map((entry) => entry.text)).toEqual(['lost']);
    for (const entry of due) {
      expect(await store.deliver(entry, NOW + GRACE_MS)).toEqual({ senderSeq: 2, recipientSeq: 2 });
      await store.settle(entry);
    }
    expect((await store.sync('bob', 'web', undefined, 100, NOW + GRACE_MS)).msgs.map((m) => m.text)).toEqual(['before', 'lost']);
    // A retried send after the repair is a duplicate and finds its seqs.
    const again = await store1({ cid: lost.message.cid, text: 'lost' });
    expect(again).toEqual({ status: 'duplicate', message: lost.message, settled: true });
    expect(await store.deliver(lost.message, NOW)).toEqual({ senderSeq: 2, recipientSeq: 2 });
  });

  it('answers a stored send\'s inbox seqs where it ran the inbox steps; a retry appends nothing twice', async () => {
    const inboxSeqsOf = async (overrides: Partial<PrivateSendInput>) => {
      const result = await store1(overrides);
      if (result.status !== 'stored') throw new Error('expected stored');
      expect(result.inboxSeqs !== undefined).toBe(appendsInSend);
      return result.inboxSeqs ?? await store.deliver(result.message, NOW);
    };
    expect(await inboxSeqsOf({ cid: 'a1', text: 'one' })).toEqual({ senderSeq: 1, recipientSeq: 1 });
    expect(await inboxSeqsOf({ from: 'carol', to: 'bob', text: 'from carol' })).toEqual({ senderSeq: 1, recipientSeq: 2 });
    expect(await inboxSeqsOf({ from: 'bob', to: 'alice', text: 'two' })).toEqual({ senderSeq: 3, recipientSeq: 2 });
    const inboxOf = async (uid: string) => (await store.sync(uid, 'web', undefined, 100, NOW)).msgs.map((m) => [m.seq, m.from, m.text]);
    expect(await inboxOf('bob')).toEqual([[1, 'alice', 'one'], [2, 'carol', 'from carol'], [3, 'bob', 'two']]);
    expect(await inboxOf('alice')).toEqual([[1, 'alice', 'one'], [2, 'bob', 'two']]);
    // A retry before and after its first attempt settled: a duplicate that runs no inbox step, and the
    // inbox steps run again append nothing and answer the same seqs.
    const retried = await store1({ cid: 'a1', text: 'one' });
    if (retried.status !== 'duplicate') throw new Error('expected duplicate');
    expect(retried).toEqual({ status: 'duplicate', message: expect.objectContaining({ cseq: 1, text: 'one' }), settled: false });
    expect(await store.deliver(retried.message, NOW)).toEqual({ senderSeq: 1, recipientSeq: 1 });
    await store.settle(retried.message);
    expect(await store1({ cid: 'a1', text: 'one' })).toEqual({ status: 'duplicate', message: retried.message, settled: true });
    expect(await store.deliver(retried.message, NOW)).toEqual({ senderSeq: 1, recipientSeq: 1 });
    expect(await inboxOf('bob')).toEqual([[1, 'alice', 'one'], [2, 'carol', 'from carol'], [3, 'bob', 'two']]);
    expect(await inboxOf('alice')).toEqual([[1, 'alice', 'one'], [2, 'bob', 'two']]);
    if (name !== 'memory') expect(await redisOf(name).llen('rc:user:{bob}:inbox')).toBe(3);
  });

  it('stores sends of many conversations made at once, each in its own slot', async () => {
    // Made in one tick, they go out together (auto-pipelining groups a Cluster's commands by node).
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => send({ from: `u${i}`, to: `v${i}`, text: `m${i}` })));
    expect(results.map((result) => result.status)).toEqual(Array(20).fill('stored'));
    for (let i = 0; i < 20; i++) {
      expect((await store.sync(`v${i}`, 'web', undefined, 100, NOW)).msgs.map((m) => [m.seq, m.from, m.text])).toEqual([[1, `u${i}`, `m${i}`]]);
    }
  });

  it('finds a message\'s inbox seqs anywhere in the inboxes that still hold it, however many came after', async () => {
    // A retry after a crash between the inbox steps and the pushes must learn the recipient's seq to push it.
    const roomy = create({ ...RETENTION, count: 200 });
    const first = await roomy.send({ from: 'alice', to: 'bob', cid: 'early', text: 'early', nowMs: NOW, rate: LOOSE });
    if (first.status !== 'stored') throw new Error('expected stored');
    const firstSeqs = first.inboxSeqs ?? await roomy.deliver(first.message, NOW);
    for (let i = 0; i < 150; i++) {
      const later = await roomy.send({ from: `u${i}`, to: 'bob', cid: `later${i}`, text: `later ${i}`, nowMs: NOW, rate: LOOSE });
      if (later.status === 'stored' && !later.inboxSeqs) await roomy.deliver(later.message, NOW);
    }
    expect(firstSeqs).toEqual({ senderSeq: 1, recipientSeq: 1 });
    expect(await roomy.deliver(first.message, NOW)).toEqual({ senderSeq: 1, recipientSeq: 1 });
    // Once the inbox's retention has dropped it, its place there is gone: 0.
    for (let i = 150; i < 210; i++) {
      const later = await roomy.send({ from: `u${i}`, to: 'bob', cid: `later${i}`, text: `later ${i}`, nowMs: NOW, rate: LOOSE });
      if (later.status === 'stored' && !later.inboxSeqs) await roomy.deliver(later.message, NOW);
    }
    expect(await roomy.deliver(first.message, NOW)).toEqual({ senderSeq: 1, recipientSeq: 0 });
  });

  it('tells a retried send whether its first attempt settled (appended and pushed) or may still be due', async () => {
    const first = await store1({ cid: 'retry', text: 'once' });
    if (first.status !== 'stored') throw new Error('expected stored');
    // Died after storing: the entry is still in the outbox, so the retry must deliver and push.
    expect(await store1({ cid: 'retry', text: 'once' })).toEqual({ status: 'duplicate', message: first.message, settled: false });
    await store.deliver(first.message, NOW);
    expect(await store1({ cid: 'retry', text: 'once' })).toMatchObject({ status: 'duplicate', settled: false });
    await store.settle(first.message);
    expect(await store1({ cid: 'retry', text: 'once' })).toEqual({ status: 'duplicate', message: first.message, settled: true });
  });
});



describe('slot tags', () => {
  it('name a key into each slot, as Redis Cluster hashes it', async () => {
    const tags = slotTags();
    expect(new Set(tags.map(slotOfTag)).size).toBe(SLOT_COUNT);
    for (const tag of [tags[0]!, tags[5000]!, tags[SLOT_COUNT - 1]!, 'alice/bob', 'g1']) {
      expect(await redisOf('redis-cluster').call('CLUSTER', 'KEYSLOT', `rc:x:{${tag}}:y`)).toBe(slotOfTag(tag));
    }
  });
});
