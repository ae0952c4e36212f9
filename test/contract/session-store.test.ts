/**
 * The SessionStore contract (the online registry), run against the in-memory store and against the
 * Redis store on a real redis-server. Which gateway instances still run is the caller's knowledge
 * (the fleet registry in memory), passed to every lookup.
 */
import type { Cluster } from 'ioredis';
import { beforeEach, describe, expect, it } from 'vitest';
import { FixedGatewayDirectory } from '../../src/shared/fleet/gateway-directory.js';
import type { GatewayInfo } from '../../src/shared/protocol/fleet-messages.js';
import { MemorySessionStore } from '../../src/shared/store/memory-session-store.js';
import { RedisSessionStore } from '../../src/shared/store/redis-session-store.js';
import { slotOfTag } from '../../src/shared/store/key-slot.js';
import type { DeviceSession, InstanceLiveness, SessionStore } from '../../src/shared/store/session-store.js';
import { eventually } from '../helpers/latch.js';
import { useContractRedis } from '../helpers/contract-redis.js';

const NOW = 1_700_000_000_000;
const EPOCH = NOW - 60_000;

const contractRedis = useContractRedis();

const implementations = [
  { name: 'memory', create: (): SessionStore => new MemorySessionStore() },
  ...contractRedis.targets.map(({ name, redis }) => ({ name, create: (): SessionStore => new RedisSessionStore({ redis: redis() }) })),
];

function gateway(gatewayId: string, epoch = EPOCH): GatewayInfo {
  return { gatewayId, epoch, url: `ws://${gatewayId}.test:9000/ws`, connections: 2, ready: true, expiresAtMs: NOW + 7500 };
}

function device(uid: string, gatewayId: string, connId: string, deviceType = 'web', epoch = EPOCH): DeviceSession {
  return { uid, gatewayId, epoch, connId, device: deviceType, connectedAtMs: NOW - 1000 };
}

function liveness(...gateways: GatewayInfo[]): InstanceLiveness {
  const directory = new FixedGatewayDirectory(gateways);
  return (instance) => directory.isLive(instance);
}

const byConn = (a: DeviceSession, b: DeviceSession) => a.connId.localeCompare(b.connId);
const bothLive = liveness(gateway('gw1'), gateway('gw2'));

describe.each(implementations)('SessionStore ($name)', ({ create }) => {
  let store: SessionStore;
  beforeEach(async () => {
    await contractRedis.flushAll();
    store = create();
  });

  const devicesOf = async (uid: string, isLive = bothLive) => ((await store.lookup([uid], isLive)).get(uid) ?? []).sort(byConn);

  it('finds every device of every uid in one lookup; a uid with none is absent', async () => {
    const phone = device('alice', 'gw1', 'c1', 'ios');
    const laptop = device('alice', 'gw2', 'c2', 'web');
    const bob = device('bob', 'gw1', 'c3');
    for (const session of [phone, laptop, bob]) await store.register(session);

    const found = await store.lookup(['alice', 'bob', 'carol'], bothLive);
    expect([...found.keys()].sort()).toEqual(['alice', 'bob']);
    expect(found.get('alice')?.sort(byConn)).toEqual([phone, laptop]);
    expect(found.get('bob')).toEqual([bob]);
    expect(await store.lookup([], bothLive)).toEqual(new Map());
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
    expect((await store.lookup(['alice'], bothLive)).has('alice')).toBe(false);
  });

  it('ignores the sessions of a gateway instance that is over, and deletes them', async () => {
    await store.register(device('alice', 'gw1', 'c1'));
    await store.register(device('alice', 'gw2', 'c2'));
    await store.register(device('bob', 'gw2', 'c3'));
    const onlyGw1 = liveness(gateway('gw1'));
    const found = await store.lookup(['alice', 'bob'], onlyGw1);
    expect(found.get('alice')).toEqual([device('alice', 'gw1', 'c1')]);
    expect(found.has('bob')).toBe(false);

    // Deleted, not just hidden: the gateway's return does not bring them back.
    await eventually(async () => (await store.lookup(['alice', 'bob'], bothLive)).size === 1 && (await devicesOf('alice')).length === 1, { what: 'stale sessions removed' });
    expect(await devicesOf('alice')).toEqual([device('alice', 'gw1', 'c1')]);
  });

  it('tells the instances of one gateway id apart: a restart makes the old run\'s sessions offline', async () => {
    const restartedAt = EPOCH + 30_000;
    await store.register(device('alice', 'gw1', 'old', 'web', EPOCH));
    await store.register(device('alice', 'gw1', 'new', 'ios', restartedAt));
    await store.register(device('bob', 'gw1', 'b-old', 'web', EPOCH));
    const restarted = liveness(gateway('gw1', restartedAt));
    const found = await store.lookup(['alice', 'bob'], restarted);
    expect(found.get('alice')).toEqual([device('alice', 'gw1', 'new', 'ios', restartedAt)]);
    expect(found.has('bob')).toBe(false);
  });
});

describe('RedisSessionStore memory', () => {
  it('keeps a device session in one short hash field', async () => {
    await contractRedis.flushAll();
    const redis = contractRedis.targets[0]!.redis();
    const store = new RedisSessionStore({ redis });
    await store.register(device('alice', 'gw1', 'gw1-42', 'ios'));
    expect(await redis.hgetall('rc:user:{alice}:online')).toEqual({ 'gw1/gw1-42': `${EPOCH}:${NOW - 1000}:ios` });
  });
});

describe('RedisSessionStore on a Redis Cluster', () => {
  const USERS = Array.from({ length: 60 }, (_, i) => `member${i}`);
  const ONLINE = USERS.filter((_, i) => i % 2 === 0);
  const cluster = () => contractRedis.targets.find((target) => target.name === 'redis-cluster')!.redis() as Cluster;
  const stat = (stats: string, command: string, field: string) => Number(new RegExp(`cmdstat_${command}:.*?${field}=(\\d+)`).exec(stats)?.[1] ?? 0);
  /** Script calls (and how many failed) and hash reads, inside scripts or not, over every primary since RESETSTAT. */
  const calls = async () => {
    const totals = { scripts: 0, failedScripts: 0, hgetall: 0 };
    for (const node of cluster().nodes('master')) {
      const stats = await node.info('commandstats');
      totals.scripts += stat(stats, 'eval', 'calls');
      totals.failedScripts += stat(stats, 'eval', 'failed_calls');
      totals.hgetall += stat(stats, 'hgetall', 'calls');
    }
    return totals;
  };
  const registerAll = async (store: RedisSessionStore) => {
    for (const [i, uid] of USERS.entries()) if (i % 2 === 0) await store.register(device(uid, 'gw1', `c${i}`));
  };
  const expectOnline = (found: Map<string, DeviceSession[]>) => {
    expect([...found.keys()].sort()).toEqual([...ONLINE].sort());
    expect(found.get('member4')).toEqual([device('member4', 'gw1', 'c4')]);
  };

  beforeEach(async () => {
    await contractRedis.flushAll();
    await Promise.all(cluster().nodes('master').map((node) => node.config('RESETSTAT')));
  });

  it('reads many users\' hashes, spread over the slots, with one script call per primary', async () => {
    const store = new RedisSessionStore({ redis: cluster() });
    await registerAll(store);
    await Promise.all(cluster().nodes('master').map((node) => node.config('RESETSTAT')));
    expectOnline(await store.lookup(USERS, bothLive));
    // The scripts' own HGETALLs, one per user: none read on its own.
    expect(await calls()).toEqual({ scripts: cluster().nodes('master').length, failedScripts: 0, hgetall: USERS.length });
  });

  it('still finds a user whose slot moved to another primary since the client last learnt the slots', async () => {
    const store = new RedisSessionStore({ redis: cluster() });
    await registerAll(store);
    await moveSlotOf(cluster(), 'member4');
    await Promise.all(cluster().nodes('master').map((node) => node.config('RESETSTAT')));
    expectOnline(await store.lookup(USERS, bothLive));
    // The old primary refused the script (a key it no longer serves); those hashes were read one by one.
    expect((await calls()).failedScripts).toBe(1);
  });
});

/** Moves the slot of a uid's keys, with them, to another primary, as `redis-cli --cluster reshard` does; the client is not told. */
async function moveSlotOf(cluster: Cluster, uid: string): Promise<void> {
  const slot = slotOfTag(uid);
  const primaries = cluster.nodes('master');
  const owner = cluster.slots[slot]![0]!;
  const source = primaries.find((node) => `${node.options.host}:${node.options.port}` === owner)!;
  const target = primaries.find((node) => node !== source)!;
  const [sourceId, targetId] = await Promise.all([source.cluster('MYID'), target.cluster('MYID')]) as [string, string];
  await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId);
  await source.cluster('SETSLOT', slot, 'MIGRATING', targetId);
  for (const key of await source.cluster('GETKEYSINSLOT', slot, 1000) as string[]) {
    await source.migrate(target.options.host!, target.options.port!, key, 0, 5000);
  }
  for (const node of primaries) await node.cluster('SETSLOT', slot, 'NODE', targetId);
}
