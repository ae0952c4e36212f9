/**
 * Group sends reuse the member list read for the group's roster version: a membership change made
 * through any replica gives the group a new version, so the next send on every replica reads the
 * members again and pushes to exactly the members of the moment. And MemberLists itself: a list is
 * answered only for the version it was read at, and the least recently used lists go first once the
 * lists hold more uids than allowed.
 */
import { describe, expect, it } from 'vitest';
import type { Bus } from '../../src/shared/bus/bus.js';
import { MemoryBus } from '../../src/shared/bus/memory-bus.js';
import { decodeBusMessage, decodeMsgpack } from '../../src/shared/codec/codec.js';
import { FixedGatewayDirectory } from '../../src/shared/fleet/gateway-directory.js';
import { silentLogger } from '../../src/shared/log.js';
import { MetricsRegistry, RoomServiceMetrics } from '../../src/shared/metrics.js';
import { subjects } from '../../src/shared/protocol/bus-messages.js';
import type { GroupStore } from '../../src/shared/store/group-store.js';
import { MemoryGroupStore } from '../../src/shared/store/memory-group-store.js';
import { MemorySessionStore } from '../../src/shared/store/memory-session-store.js';
import { ChatRouting } from '../../src/room-service/chat-routing.js';
import { BACKEND_ACTOR, GroupService } from '../../src/room-service/group-service.js';
import { MemberLists } from '../../src/room-service/member-lists.js';
import { RecipientRouter } from '../../src/room-service/recipient-router.js';

const NOW = 1_700_000_000_000;

/** A room service replica's group chat over the shared stores and bus. */
function replica(bus: Bus, groups: GroupStore, sessions: MemorySessionStore): GroupService {
  const gateways = new FixedGatewayDirectory([{ gatewayId: 'gw1', epoch: 1, url: 'ws://gw1/ws', connections: 4, ready: true, expiresAtMs: NOW + 3_600_000 }]);
  const router = new RecipientRouter({ sessions, gateways, bus });
  const metrics = new RoomServiceMetrics(new MetricsRegistry());
  return new GroupService({
    groups, routing: new ChatRouting({ router, bus, log: silentLogger, metrics }), blocks: { isBlocked: async () => false },
    clock: { now: () => NOW }, metrics,
    limits: { maxTextLength: 1000, rate: { ratePerSec: 100, burst: 100 }, syncPage: 100, membersPage: 100 },
    policy: { create: 'backends', invites: 'direct' },
  });
}

describe('group sends and member lists', () => {
  it('pushes to the members of the moment when another replica changed the group between two sends', async () => {
    const bus = new MemoryBus({ onError: (error) => { throw error; } });
    const groups = new MemoryGroupStore({ count: 100, maxAgeMs: 3_600_000, dedupTtlMs: 600_000, maxMembers: 100 });
    const sessions = new MemorySessionStore();
    const [first, second] = [replica(bus, groups, sessions), replica(bus, groups, sessions)];
    for (const uid of ['owner', 'a', 'b', 'c']) {
      await sessions.register({ uid, gatewayId: 'gw1', epoch: 1, connId: `conn-${uid}`, device: 'web', connectedAtMs: NOW });
    }
    const pushed: string[][] = [];
    const offline: string[][] = [];
    bus.subscribe(subjects.gateway('gw1'), (message) => {
      for (const item of (decodeBusMessage(message.data) as { items: Array<{ to: string[]; f: Uint8Array }> }).items) {
        const frame = decodeMsgpack(item.f) as { t: string };
        if (frame.t === 'group_msgs') pushed.push([...item.to].sort());
      }
    });
    bus.subscribe(subjects.pushOffline, (message) => offline.push((decodeBusMessage(message.data) as { uids: string[] }).uids));
    const sendAndSee = async (id: string) => {
      pushed.length = 0;
      offline.length = 0;
      await first.send('owner', 'g1', id, 'hi', 'conn-owner');
      await bus.flush();
      return { pushed: pushed.flat().sort(), offline: offline.flat().sort() };
    };

    await first.create('owner', 'g1', ['a', 'b', 'c', 'gone'], 'backend');
    expect(await sendAndSee('m1')).toEqual({ pushed: ['a', 'b', 'c'], offline: ['gone'] });
    expect(await sendAndSee('m2')).toEqual({ pushed: ['a', 'b', 'c'], offline: ['gone'] });

    await second.remove(BACKEND_ACTOR, 'g1', ['c']);
    await second.add(BACKEND_ACTOR, 'g1', ['new'], 'member', 'backend');
    expect(await sendAndSee('m3')).toEqual({ pushed: ['a', 'b'], offline: ['gone', 'new'] });
    await sessions.register({ uid: 'new', gatewayId: 'gw1', epoch: 1, connId: 'conn-new', device: 'web', connectedAtMs: NOW });
    expect(await sendAndSee('m4')).toEqual({ pushed: ['a', 'b', 'new'], offline: ['gone'] });
  });
});

describe('MemberLists', () => {
  it('answers a list only for the roster version it was kept at, the newest kept in place of the older', () => {
    const lists = new MemberLists(10);
    lists.set('g1', 'v1', ['a', 'b'], NOW);
    expect(lists.get('g1', 'v1', NOW)).toEqual(['a', 'b']);
    expect(lists.get('g1', 'v2', NOW)).toBeUndefined();
    lists.set('g1', 'v2', ['a'], NOW);
    expect(lists.get('g1', 'v1', NOW)).toBeUndefined();
    expect(lists.get('g1', 'v2', NOW)).toEqual(['a']);
    expect(lists.get('g2', 'v2', NOW)).toBeUndefined();
  });

  it('reads a list again once it is as old as the maximum age, whatever its version', () => {
    const lists = new MemberLists(10, 1000);
    lists.set('g1', 'v1', ['a', 'b'], NOW);
    expect(lists.get('g1', 'v1', NOW + 999)).toEqual(['a', 'b']);
    expect(lists.get('g1', 'v1', NOW + 1000)).toBeUndefined();
  });

  it('drops the least recently used lists once they hold more uids than allowed, and never keeps a list larger than that', () => {
    const lists = new MemberLists(5);
    lists.set('g1', 'v', ['a', 'b'], NOW);
    lists.set('g2', 'v', ['c', 'd'], NOW);
    expect(lists.get('g1', 'v', NOW)).toEqual(['a', 'b']);
    lists.set('g3', 'v', ['e', 'f'], NOW);
    expect(lists.get('g2', 'v', NOW)).toBeUndefined();
    expect(lists.get('g1', 'v', NOW)).toEqual(['a', 'b']);
    expect(lists.get('g3', 'v', NOW)).toEqual(['e', 'f']);
    lists.set('big', 'v', ['1', '2', '3', '4', '5', '6'], NOW);
    expect(lists.get('big', 'v', NOW)).toBeUndefined();
    expect(lists.get('g1', 'v', NOW)).toEqual(['a', 'b']);
  });
});
