/**
 * The repair of private messages whose inbox steps a crash cut short: a message stored in its
 * conversation but in no inbox (the room service died after the store) is appended to both inboxes
 * by `repairDeliveries` once it is older than the grace, pushed to the recipient's online device and
 * offered to the offline-push worker otherwise, and settled, so a second round finds nothing.
 */
import { describe, expect, it } from 'vitest';
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

describe('delivery repair', () => {
  it('appends, pushes and settles a stored message that never reached the inboxes, once', async () => {
    let nowMs = 1_700_000_000_000;
    const clock = { now: () => nowMs };
    const bus = new MemoryBus({ onError: (error) => { throw error; } });
    const sessions = new MemorySessionStore();
    const gateways = new FixedGatewayDirectory([{ gatewayId: 'gw1', epoch: 1, url: 'ws://gw1/ws', connections: 1, ready: true, expiresAtMs: nowMs + 3_600_000 }]);
    const inbox = new MemoryInboxStore({ count: 100, maxAgeMs: 3_600_000, dedupTtlMs: 600_000 });
    const router = new RecipientRouter({ sessions, gateways, bus });
    const metrics = new RoomServiceMetrics(new MetricsRegistry());
    const chat = new ChatService({
      inbox, router, routing: new ChatRouting({ router, bus, log: silentLogger, metrics }), bus, clock, log: silentLogger, metrics,
      limits: { maxTextLength: 1000, rate: RATE, syncPage: 100, loginPush: 20, historyPageMax: 100, devicePolicy: 'many' },
    });
    await sessions.register({ uid: 'bob', gatewayId: 'gw1', epoch: 1, connId: 'c1', device: 'web', connectedAtMs: nowMs });
    const delivered: unknown[] = [];
    const offline: unknown[] = [];
    bus.subscribe(subjects.gateway('gw1'), (message) => delivered.push(decodeBusMessage(message.data)));
    bus.subscribe(subjects.pushOffline, (message) => offline.push(decodeBusMessage(message.data)));

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
    const pushed = delivered.flatMap((event) => (event as { items: Array<{ to: string[]; f: Uint8Array }> }).items)
      .map((item) => ({ to: item.to, frame: decodeMsgpack(item.f) }));
    expect(pushed).toEqual([{ to: ['bob'], frame: { t: 'inbox', msgs: [expect.objectContaining({ seq: 1, mid: 'p/alice/bob/1', text: 'to the online bob' })] } }]);
    expect(offline).toEqual([expect.objectContaining({ t: 'offline', kind: 'private', uids: ['carol'], mid: 'p/alice/carol/1' })]);
    // Settled (the settle is not awaited by the repair: give it its turn).
    await new Promise((resolve) => setImmediate(resolve));
    expect(await chat.repairDeliveries(GRACE_MS, 100)).toBe(0);
  });
});
