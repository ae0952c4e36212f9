/**
 * The repair of private messages whose inbox steps a crash cut short: a message stored in its
 * conversation but in no inbox (the room service died after the store) is appended to both inboxes
 * by `repairDeliveries` once it is older than the grace, pushed to the recipient's online device and
 * offered to the offline-push worker otherwise, and settled, so a second round finds nothing. And the
 * settling itself: a message is settled only once the bus server confirmed its pushes, so a replica
 * that dies with the pushes still in its outbound batch leaves it unsettled, and the sender's retry on
 * another replica pushes it again.
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

/** A room service on `bus` whose gateway gw1 records what it is sent; stores shared with `shared`. */
function replica(bus: Bus, clock: { now(): number }, shared?: Replica): Replica {
  const sessions = shared?.sessions ?? new MemorySessionStore();
  const gateways = new FixedGatewayDirectory([{ gatewayId: 'gw1', epoch: 1, url: 'ws://gw1/ws', connections: 1, ready: true, expiresAtMs: clock.now() + 3_600_000 }]);
  const inbox = shared?.inbox ?? new MemoryInboxStore({ count: 100, maxAgeMs: 3_600_000, dedupTtlMs: 600_000 });
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
  it('appends, pushes and settles a stored message that never reached the inboxes, once', async () => {
    let nowMs = 1_700_000_000_000;
    const clock = { now: () => nowMs };
    const bus = new MemoryBus({ onError: (error) => { throw error; } });
    const { chat, inbox, sessions, delivered, offline } = replica(bus, clock);
    await sessions.register({ uid: 'bob', gatewayId: 'gw1', epoch: 1, connId: 'c1', device: 'web', connectedAtMs: nowMs });

    // The room service stored these and died before the inbox steps.
    await inbox.send({ from: 'alice', to: 'bob', cid: 'a1', text: 'to the online bob', nowMs, rate: RATE });
    await inbox.send({ from: 'alice', to: 'carol', cid: 'a2', text: 'to the offline carol', nowMs, rate: RATE });
    expect((await inbox.sync('bob', 'web', undefined, 10, nowMs)).lastSeq).toBe(0);

    // Within the grace a send may still be under way: left alone.
    nowMs += GRACE_MS - 1;
    expect(await chat.repairDeliveries(GRACE_MS, 100)).toBe(0);
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
    // Unconfirmed: still in the outbox.
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
    expect(confirm).toBeDefined();
  });
});
