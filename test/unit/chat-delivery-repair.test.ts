/**
 * The repair of private messages whose delivery a crash cut short: a message stored (the memory store
 * appends it to both inboxes in the same step, as one Redis node does) by a room service that died
 * before pushing it is found in the outbox by `repairDeliveries` once it is older than the grace, its
 * inbox steps are found done, it is pushed to the recipient's online device and offered to the
 * offline-push worker otherwise, and settled, so a second round finds nothing. (A message in no inbox
 * yet, which only a Redis Cluster leaves, is repaired in chat-redis-cluster.test.ts.) And the
 * settling itself: a message is settled only once the bus server confirmed its pushes, so a replica
 * that dies with the pushes still in its outbound batch leaves it unsettled, and the sender's retry on
 * another replica pushes it again. And a send whose store ran the inbox steps itself makes no second
 * store call for them.
 */
import { describe, expect, it } from 'vitest';
import type { Bus } from '../../src/shared/bus/bus.js';
import { MemoryBus } from '../../src/shared/bus/memory-bus.js';
import { decodeBusMessage, decodeMsgpack } from '../../src/shared/codec/codec.js';
import { silentLogger } from '../../src/shared/log.js';
import { MetricsRegistry, RoomServiceMetrics } from '../../src/shared/metrics.js';
import { subjects } from '../../src/shared/protocol/bus-messages.js';
import { MemoryInboxStore } from '../../src/shared/store/memory-inbox-store.js';
import { FixedGatewayDirectory } from '../../src/shared/fleet/gateway-directory.js';
import { MemorySessionStore } from '../../src/shared/store/memory-session-store.js';
import { ChatRouting } from '../../src/room-service/chat-routing.js';
import { ChatService } from '../../src/room-service/chat-service.js';
import { RecipientRouter } from '../../src/room-service/recipient-router.js';

const GRACE_MS = 5_000;
const RATE = { ratePerSec: 100, burst: 100 };

interface Replica { chat: ChatService; inbox: MemoryInboxStore; sessions: MemorySessionStore; delivered: unknown[]; offline: unknown[] }

const RETENTION = { count: 100, maxAgeMs: 3_600_000, dedupTtlMs: 600_000 };

/** A room service on `bus` whose gateway gw1 records what it is sent; stores shared with `shared`. */
function replica(bus: Bus, clock: { now(): number }, shared: Partial<Pick<Replica, 'inbox' | 'sessions'>> = {}): Replica {
  const sessions = shared.sessions ?? new MemorySessionStore();
  const gateways = new FixedGatewayDirectory([{ gatewayId: 'gw1', epoch: 1, url: 'ws://gw1/ws', connections: 1, ready: true, expiresAtMs: clock.now() + 3_600_000 }]);
  const inbox = shared.inbox ?? new MemoryInboxStore(RETENTION);
  const router = new RecipientRouter({ sessions, gateways, bus });
  const metrics = new RoomServiceMetrics(new MetricsRegistry());
  const chat = new ChatService({
    inbox, router, routing: new ChatRouting({ router, bus, log: silentLogger, metrics }), bus, clock, log: silentLogger, metrics,
    limits: { maxTextLength: 1000, rate: RATE, syncPage: 100, loginPush: 20, historyPageMax: 100, devicePolicy: 'many' },
  });
  const delivered: unknown[] = [];
  const offline: unknown[] = [];
  bus.subscribe(subjects.gateway('gw1'), (message) => delivered.push(decodeBusMessage(message.data)));
  bus.subscribe(subjects.pushOffline, (message) => offline.push(decodeBusMessage(message.data)));
  return { chat, inbox, sessions, delivered, offline };
}

/** The frames pushed through gw1, with their recipients. */
function pushedFrames(delivered: unknown[]): Array<{ to: string[]; frame: unknown }> {
  return delivered.flatMap((event) => (event as { items: Array<{ to: string[]; f: Uint8Array }> }).items)
    .map((item) => ({ to: item.to, frame: decodeMsgpack(item.f) }));
}

describe('delivery repair', () => {
  it('pushes and settles a stored message whose room service died before pushing it, once', async () => {
    let nowMs = 1_700_000_000_000;
    const clock = { now: () => nowMs };
    const bus = new MemoryBus({ onError: (error) => { throw error; } });
    const { chat, inbox, sessions, delivered, offline } = replica(bus, clock);
    await sessions.register({ uid: 'bob', gatewayId: 'gw1', epoch: 1, connId: 'c1', device: 'web', connectedAtMs: nowMs });

    // The room service stored these and died before pushing them.
    await inbox.send({ from: 'alice', to: 'bob', cid: 'a1', text: 'to the online bob', nowMs, rate: RATE });
    await inbox.send({ from: 'alice', to: 'carol', cid: 'a2', text: 'to the offline carol', nowMs, rate: RATE });

    // Within the grace a send may still be under way: left alone.
    nowMs += GRACE_MS - 1;
    expect(await chat.repairDeliveries(GRACE_MS, 100)).toBe(0);
    await bus.flush();
    expect(delivered).toEqual([]);
    nowMs += 1;
    expect(await chat.repairDeliveries(GRACE_MS, 100)).toBe(2);
    await bus.flush();

    expect((await inbox.sync('bob', 'web', undefined, 10, nowMs)).msgs.map((m) => [m.seq, m.text])).toEqual([[1, 'to the online bob']]);
    expect((await inbox.sync('carol', 'web', undefined, 10, nowMs)).msgs.map((m) => m.text)).toEqual(['to the offline carol']);
    expect((await inbox.sync('alice', 'web', undefined, 10, nowMs)).lastSeq).toBe(2);
    expect(pushedFrames(delivered)).toEqual([{ to: ['bob'], frame: { t: 'inbox', msgs: [expect.objectContaining({ seq: 1, mid: 'p/alice/bob/1', text: 'to the online bob' })] } }]);
    expect(offline).toEqual([expect.objectContaining({ t: 'offline', kind: 'private', uids: ['carol'], mid: 'p/alice/carol/1' })]);
    // Settled (the settle is not awaited by the repair: give it its turn).
    await new Promise((resolve) => setImmediate(resolve));
    expect(await chat.repairDeliveries(GRACE_MS, 100)).toBe(0);
  });
});

describe('settling a delivered message', () => {
  it('waits for the bus to confirm the pushes, so a retry after a crash before that pushes again', async () => {
    const clock = { now: () => 1_700_000_000_000 };
    const bus = new MemoryBus({ onError: (error) => { throw error; } });
    // Replica A's bus keeps what it is given, as a batch not yet written when a process dies, and never confirms.
    const unsent: string[] = [];
    let confirm: (() => void) | undefined;
    const dying: Bus = {
      ...bus, subscribe: bus.subscribe.bind(bus), request: bus.request.bind(bus), onStatus: bus.onStatus.bind(bus), close: bus.close.bind(bus),
      publish: (subject) => { unsent.push(subject); },
      flush: () => new Promise<void>((resolve) => { confirm = resolve; }),
    };
    const a = replica(dying, clock);
    const b = replica(bus, clock, a);
    await a.sessions.register({ uid: 'bob', gatewayId: 'gw1', epoch: 1, connId: 'c1', device: 'web', connectedAtMs: clock.now() });

    const first = await a.chat.sendPrivate({ uid: 'alice' }, { to: 'bob', id: 'm1', text: 'hello' });
    expect(unsent).toEqual([subjects.gateway('gw1')]);
    await new Promise((resolve) => setImmediate(resolve));
    // A asked the bus to confirm its push and waits for the answer; unconfirmed, the message is still in the outbox.
    expect(confirm).toBeDefined();
    expect(await a.inbox.pending(clock.now(), 0, 10)).toEqual([expect.objectContaining({ from: 'alice', to: 'bob', cseq: 1 })]);

    // A died; the sender's retry reaches B, which pushes it again.
    const retried = await b.chat.sendPrivate({ uid: 'alice' }, { to: 'bob', id: 'm1', text: 'hello' });
    await bus.flush();
    expect(retried).toEqual({ ...first, duplicate: true });
    expect(pushedFrames(b.delivered)).toEqual([{ to: ['bob'], frame: { t: 'inbox', msgs: [expect.objectContaining({ seq: 1, mid: 'p/alice/bob/1', text: 'hello' })] } }]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await b.inbox.pending(clock.now(), 0, 10)).toEqual([]);

    // Settled now: a later retry answers without pushing a third time.
    await b.chat.sendPrivate({ uid: 'alice' }, { to: 'bob', id: 'm1', text: 'hello' });
    await bus.flush();
    expect(b.delivered).toHaveLength(1);
  });
});

/** Counts the separate inbox steps asked of it. */
class CountingInboxStore extends MemoryInboxStore {
  delivers = 0;
  override deliver(...args: Parameters<MemoryInboxStore['deliver']>) {
    this.delivers++;
    return super.deliver(...args);
  }
}

describe('a private send', () => {
  it('makes no separate inbox step when the store ran it in the send; a retry looks its seqs up', async () => {
    const clock = { now: () => 1_700_000_000_000 };
    const bus = new MemoryBus({ onError: (error) => { throw error; } });
    const inbox = new CountingInboxStore(RETENTION);
    const { chat, sessions, delivered } = replica(bus, clock, { inbox });
    await sessions.register({ uid: 'bob', gatewayId: 'gw1', epoch: 1, connId: 'c1', device: 'web', connectedAtMs: clock.now() });

    await chat.sendPrivate({ uid: 'carol' }, { to: 'bob', id: 'c1', text: 'first' });
    // The answer carries alice's inbox seq, the push bob's.
    const sent = await chat.sendPrivate({ uid: 'alice' }, { to: 'bob', id: 'a1', text: 'hello' });
    expect(sent).toMatchObject({ t: 'sent', mid: 'p/alice/bob/1', seq: 1 });
    expect(inbox.delivers).toBe(0);
    await bus.flush();
    expect(pushedFrames(delivered)).toEqual([
      { to: ['bob'], frame: { t: 'inbox', msgs: [expect.objectContaining({ seq: 1, mid: 'p/bob/carol/1', text: 'first' })] } },
      { to: ['bob'], frame: { t: 'inbox', msgs: [expect.objectContaining({ seq: 2, mid: 'p/alice/bob/1', text: 'hello' })] } },
    ]);

    // Settled: the retry runs the inbox step again only to learn its seq, and pushes nothing.
    await new Promise((resolve) => setImmediate(resolve));
    expect(await chat.sendPrivate({ uid: 'alice' }, { to: 'bob', id: 'a1', text: 'hello' })).toEqual({ ...sent, duplicate: true });
    expect(inbox.delivers).toBe(1);
    await bus.flush();
    expect(delivered).toHaveLength(2);
  });
});
