/**
 * The SessionStore contract (the online registry), run against the in-memory store and against the
 * Redis store on a real redis-server. Gateway heartbeats expire by the `nowMs` the tests pass.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { MemorySessionStore } from '../../src/shared/store/memory-session-store.js';
import { RedisSessionStore } from '../../src/shared/store/redis-session-store.js';
import type { DeviceSession, GatewayInfo, SessionStore } from '../../src/shared/store/session-store.js';
import { eventually } from '../helpers/latch.js';
import { useContractRedis } from '../helpers/contract-redis.js';

const NOW = 1_700_000_000_000;
const HEARTBEAT_TTL_MS = 15_000;

const contractRedis = useContractRedis();

const implementations = [
  { name: 'memory', create: (): SessionStore => new MemorySessionStore() },
  ...contractRedis.targets.map(({ name, redis }) => ({ name, create: (): SessionStore => new RedisSessionStore({ redis: redis() }) })),
];

function gateway(gatewayId: string, expiresAtMs = NOW + HEARTBEAT_TTL_MS): GatewayInfo {
  return { gatewayId, url: `ws://${gatewayId}.test:9000/ws`, connections: 2, ready: true, expiresAtMs };
}

function device(uid: string, gatewayId: string, connId: string, deviceType = 'web'): DeviceSession {
  return { uid, gatewayId, connId, device: deviceType, connectedAtMs: NOW - 1000 };
}

const byConn = (a: DeviceSession, b: DeviceSession) => a.connId.localeCompare(b.connId);
const byGateway = (a: GatewayInfo, b: GatewayInfo) => a.gatewayId.localeCompare(b.gatewayId);

describe.each(implementations)('SessionStore ($name)', ({ create }) => {
  let store: SessionStore;
  beforeEach(async () => {
    await contractRedis.flushAll();
    store = create();
    await store.heartbeatGateway(gateway('gw1'));
    await store.heartbeatGateway(gateway('gw2'));
  });

  const devicesOf = async (uid: string, nowMs = NOW) => ((await store.lookup([uid], nowMs)).get(uid) ?? []).sort(byConn);

  it('finds every device of every uid in one lookup; a uid with none is absent', async () => {
    const phone = device('alice', 'gw1', 'c1', 'ios');
    const laptop = device('alice', 'gw2', 'c2', 'web');
    const bob = device('bob', 'gw1', 'c3');
    for (const session of [phone, laptop, bob]) await store.register(session);

    const found = await store.lookup(['alice', 'bob', 'carol'], NOW);
    expect([...found.keys()].sort()).toEqual(['alice', 'bob']);
    expect(found.get('alice')?.sort(byConn)).toEqual([phone, laptop]);
    expect(found.get('bob')).toEqual([bob]);
    expect(await store.lookup([], NOW)).toEqual(new Map());
  });

  it('keeps one entry per connection when a connection registers again', async () => {
    await store.register(device('alice', 'gw1', 'c1', 'ios'));
    await store.register(device('alice', 'gw1', 'c1', 'android'));
    expect(await devicesOf('alice')).toEqual([device('alice', 'gw1', 'c1', 'android')]);
  });

  it('forgets an unregistered device and then the uid', async () => {
    await store.register(device('alice', 'gw1', 'c1'));
    await store.register(device('alice', 'gw2', 'c2'));
    await store.unregister('alice', 'gw1', 'c1');
    expect(await devicesOf('alice')).toEqual([device('alice', 'gw2', 'c2')]);
    // Another gateway's connection of the same id is another device.
    await store.unregister('alice', 'gw1', 'c2');
    expect(await devicesOf('alice')).toEqual([device('alice', 'gw2', 'c2')]);
    await store.unregister('alice', 'gw2', 'c2');
    expect((await store.lookup(['alice'], NOW)).has('alice')).toBe(false);
  });

  it('ignores the sessions of a gateway whose heartbeat expired, and cleans them up', async () => {
    await store.heartbeatGateway(gateway('gw2', NOW + 5000));
    await store.register(device('alice', 'gw1', 'c1'));
    await store.register(device('alice', 'gw2', 'c2'));
    await store.register(device('bob', 'gw2', 'c3'));
    expect(await devicesOf('alice', NOW + 4999)).toHaveLength(2);

    const later = NOW + 5000;
    const found = await store.lookup(['alice', 'bob'], later);
    expect(found.get('alice')).toEqual([device('alice', 'gw1', 'c1')]);
    expect(found.has('bob')).toBe(false);
    expect((await store.liveGateways(later)).map((info) => info.gatewayId)).toEqual(['gw1']);

    // The dead gateway's entries were removed, not just hidden: its return does not bring them back.
    await store.heartbeatGateway(gateway('gw2', later + HEARTBEAT_TTL_MS));
    await eventually(async () => (await store.lookup(['alice', 'bob'], later)).size === 1 && (await devicesOf('alice', later)).length === 1, { what: 'stale sessions removed' });
    expect(await devicesOf('alice', later)).toEqual([device('alice', 'gw1', 'c1')]);
  });

  it('ignores the sessions of a gateway that is unknown or was removed', async () => {
    await store.register(device('alice', 'gw1', 'c1'));
    await store.register(device('alice', 'gw9', 'c2'));
    await store.register(device('bob', 'gw2', 'c3'));
    expect(await devicesOf('alice')).toEqual([device('alice', 'gw1', 'c1')]);

    await store.removeGateway('gw2');
    expect((await store.lookup(['bob'], NOW)).has('bob')).toBe(false);
    expect((await store.liveGateways(NOW)).map((info) => info.gatewayId)).toEqual(['gw1']);
  });

  it('lists the live gateways with what they last reported', async () => {
    const fresh = { ...gateway('gw2', NOW + 30_000), connections: 7, ready: false };
    await store.heartbeatGateway(fresh);
    await store.heartbeatGateway(gateway('gw3', NOW - 1));
    expect((await store.liveGateways(NOW)).sort(byGateway)).toEqual([gateway('gw1'), fresh]);
    expect(await store.liveGateways(NOW + HEARTBEAT_TTL_MS)).toEqual([fresh]);
    expect(await store.liveGateways(NOW + 30_000)).toEqual([]);
  });
});
