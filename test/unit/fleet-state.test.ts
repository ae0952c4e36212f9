/**
 * Fleet state held in memory from the bus (the in-process bus here; the same code runs on NATS): the
 * gateway registry (heartbeats, goodbyes, instance epochs, expiry on the receiver's clock) and the
 * viewer totals (sums of the gateways' reports; one publisher of the changed totals at a time).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/shared/bus/memory-bus.js';
import { decodeBusMessage, encodeBusMessage } from '../../src/shared/codec/codec.js';
import type { GatewayDirectory } from '../../src/shared/fleet/gateway-directory.js';
import { GatewayRegistry } from '../../src/shared/fleet/gateway-registry.js';
import { silentLogger } from '../../src/shared/log.js';
import { subjects } from '../../src/shared/protocol/bus-messages.js';
import {
  heartbeatLifetimeMs, type GatewayEvent, type GatewayInstance, type RoomCount, type RoomViewerTotals,
} from '../../src/shared/protocol/fleet-messages.js';
import { ViewerTotals } from '../../src/room-service/viewer-totals.js';

const HEARTBEAT_MS = 1000;
const INTERVAL_MS = 5000;
let nowMs = 1_700_000_000_000;
const clock = { now: () => nowMs };
let bus: MemoryBus;
const stops: Array<() => void> = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await bus?.close();
});

function heartbeat(gatewayId: string, epoch: number, extra: Partial<GatewayEvent> = {}): GatewayEvent {
  return {
    t: 'heartbeat', gatewayId, epoch, url: `ws://${gatewayId}/ws`, connections: 10, ready: true,
    sentAtMs: nowMs, expiresAtMs: nowMs + heartbeatLifetimeMs(HEARTBEAT_MS), ...extra,
  } as GatewayEvent;
}

async function announce(event: GatewayEvent): Promise<void> {
  bus.publish(subjects.fleetGateway(event.gatewayId), encodeBusMessage(event));
  await bus.flush();
}

describe('GatewayRegistry', () => {
  function registry(): GatewayRegistry {
    bus = new MemoryBus();
    const registry = new GatewayRegistry({ bus, clock, log: silentLogger, heartbeatMs: HEARTBEAT_MS });
    registry.start();
    stops.push(() => registry.stop());
    return registry;
  }

  it('knows the fleet from heartbeats, and forgets a gateway whose heartbeat is missed', async () => {
    const fleet = registry();
    await announce(heartbeat('gw1', 1));
    await announce(heartbeat('gw2', 1, { connections: 3, ready: false }));
    expect(fleet.liveGateways().map((g) => [g.gatewayId, g.connections, g.ready])).toEqual([['gw1', 10, true], ['gw2', 3, false]]);
    nowMs += HEARTBEAT_MS;
    await announce(heartbeat('gw1', 1));
    nowMs += heartbeatLifetimeMs(HEARTBEAT_MS) - HEARTBEAT_MS;
    expect(fleet.liveGateways().map((g) => g.gatewayId)).toEqual(['gw1']);
    expect(fleet.isLive({ gatewayId: 'gw2', epoch: 1 })).toBe(false);
  });

  it('forgets a gateway at once when it says goodbye', async () => {
    const fleet = registry();
    await announce(heartbeat('gw1', 1));
    await announce({ t: 'goodbye', gatewayId: 'gw1', epoch: 1 });
    expect(fleet.liveGateways()).toEqual([]);
  });

  it('tells the runs of one gateway id apart: a restart ends the old run, whose late news is ignored', async () => {
    const fleet = registry();
    await announce(heartbeat('gw1', 100));
    await announce(heartbeat('gw1', 200));
    expect(fleet.isLive({ gatewayId: 'gw1', epoch: 100 })).toBe(false);
    expect(fleet.isLive({ gatewayId: 'gw1', epoch: 200 })).toBe(true);
    await announce(heartbeat('gw1', 100));
    await announce({ t: 'goodbye', gatewayId: 'gw1', epoch: 100 });
    expect(fleet.liveGateways().map((g) => g.epoch)).toEqual([200]);
    // A session of a run newer than any heartbeat heard yet is kept: its heartbeat is on the way.
    expect(fleet.isLive({ gatewayId: 'gw1', epoch: 300 })).toBe(true);
  });

  it('keeps the sessions of unknown gateways until it has listened for a whole heartbeat lifetime', async () => {
    const fleet = registry();
    const unknown: GatewayInstance = { gatewayId: 'gw9', epoch: 1 };
    expect(fleet.warm).toBe(false);
    expect(fleet.isLive(unknown)).toBe(true);
    nowMs += heartbeatLifetimeMs(HEARTBEAT_MS);
    expect(fleet.warm).toBe(true);
    expect(fleet.isLive(unknown)).toBe(false);
  });

  it('ignores what is not a heartbeat or goodbye', async () => {
    const fleet = registry();
    bus.publish(subjects.fleetGateway('gw1'), encodeBusMessage({ t: 'heartbeat', gatewayId: 'gw1' }));
    bus.publish(subjects.fleetGateway('gw1'), new Uint8Array([0xc1]));
    await bus.flush();
    expect(fleet.liveGateways()).toEqual([]);
  });
});

describe('ViewerTotals', () => {
  const live = new Set(['gw1/1', 'gw2/1']);
  const gateways: GatewayDirectory = { liveGateways: () => [], isLive: ({ gatewayId, epoch }) => live.has(`${gatewayId}/${epoch}`) };
  const published: RoomViewerTotals[] = [];

  function replica(instanceId: string): ViewerTotals {
    const totals = new ViewerTotals({ bus, clock, log: silentLogger, gateways, instanceId, intervalMs: INTERVAL_MS });
    totals.start();
    stops.push(() => totals.stop());
    return totals;
  }

  /** Past the replicas' warm-up: they publish only once they have heard every gateway. */
  function warmUp(): void {
    nowMs += 1.5 * INTERVAL_MS;
  }

  async function report(gatewayId: string, rooms: RoomCount[]): Promise<void> {
    bus.publish(subjects.fleetViewers(gatewayId), encodeBusMessage({ t: 'viewers', gatewayId, epoch: 1, rooms, sentAtMs: nowMs, expiresAtMs: nowMs + 2.5 * INTERVAL_MS }));
    await bus.flush();
  }

  async function tick(totals: ViewerTotals): Promise<RoomCount[] | null> {
    const before = published.length;
    totals.tick();
    await bus.flush();
    return published.length > before ? published.at(-1)!.rooms : null;
  }

  function start(): void {
    bus = new MemoryBus();
    published.length = 0;
    live.clear();
    live.add('gw1/1').add('gw2/1');
    bus.subscribe(subjects.fleetRoomViewers, (message) => { published.push(decodeBusMessage(message.data) as RoomViewerTotals); });
  }

  it('sums every gateway\'s report per room, and publishes only the rooms that changed', async () => {
    start();
    const a = replica('rs-a');
    await report('gw1', [['lobby', 3, 10]]);
    expect(await tick(a)).toBeNull();
    warmUp();
    await report('gw2', [['lobby', 4, 12], ['quiet', 1, 2]]);
    expect(a.count('lobby')).toBe(7);
    expect(a.count('nobody')).toBe(0);
    expect(await tick(a)).toEqual([['lobby', 7, 12], ['quiet', 1, 2]]);
    expect(await tick(a)).toEqual([]);

    // A report replaces the gateway's last one; a room it no longer names has no viewers there.
    await report('gw2', [['lobby', 6, 12]]);
    expect(await tick(a)).toEqual([['lobby', 9, 12], ['quiet', 0, 2]]);
    expect(a.count('quiet')).toBe(0);
  });

  it('drops the reports of a gateway instance that is over, or silent too long', async () => {
    start();
    const a = replica('rs-a');
    await report('gw1', [['lobby', 3, 1]]);
    await report('gw2', [['lobby', 4, 1]]);
    live.delete('gw2/1');
    a.tick();
    expect(a.count('lobby')).toBe(3);
    nowMs += 2.5 * INTERVAL_MS;
    a.tick();
    expect(a.count('lobby')).toBe(0);
  });

  it('has one publisher: the lowest id heard lately; another takes over when it falls silent, sending only what differs', async () => {
    start();
    const a = replica('rs-a');
    const b = replica('rs-b');
    warmUp();
    await report('gw1', [['lobby', 3, 1]]);
    expect(await tick(b)).toEqual([['lobby', 3, 1]]);
    expect(await tick(a)).toEqual([]);
    expect(await tick(b)).toBeNull();
    expect(b.count('lobby')).toBe(3);

    a.stop();
    await report('gw1', [['lobby', 5, 2]]);
    nowMs += 2.5 * INTERVAL_MS + 1;
    await report('gw1', [['lobby', 5, 2]]);
    expect(await tick(b)).toEqual([['lobby', 5, 2]]);
  });

  it('tells a gateway that newly reports a room its total, even when the sum did not move', async () => {
    start();
    const a = replica('rs-a');
    warmUp();
    await report('gw1', [['lobby', 3, 1]]);
    await report('gw2', [['lobby', 1, 1]]);
    expect(await tick(a)).toEqual([['lobby', 4, 1]]);
    // The viewer on gw2 moves to gw3: the sum stays 4, but gw3 has never been told it.
    live.add('gw3/1');
    await report('gw2', []);
    await report('gw3', [['lobby', 1, 1]]);
    expect(await tick(a)).toEqual([['lobby', 4, 1]]);
  });

  it('sends the seq of a message a gateway lost, from whichever replica published it, leader or not', async () => {
    start();
    const a = replica('rs-a');
    const b = replica('rs-b');
    warmUp();
    await report('gw1', [['quiet', 2, 5]]);
    expect(await tick(a)).toEqual([['quiet', 2, 5]]);
    // rs-b published seq 6 and rs-a seq 7; the only gateway in the room still has 5 a while later.
    b.noteAppended('quiet', 6);
    a.noteAppended('quiet', 7);
    nowMs += 1500;
    await report('gw1', [['quiet', 2, 5]]);
    expect(await tick(b)).toEqual([['quiet', 2, 6]]);
    expect(await tick(a)).toEqual([['quiet', 2, 7]]);
    // A report that has it ends the matter.
    await report('gw1', [['quiet', 2, 7]]);
    expect(await tick(b)).toBeNull();
    expect(await tick(a)).toEqual([]);
  });

  it('does not take a message still on its way for a lost one', async () => {
    start();
    const a = replica('rs-a');
    warmUp();
    await report('gw1', [['busy', 1, 5]]);
    expect(await tick(a)).toEqual([['busy', 1, 5]]);
    a.noteAppended('busy', 6);
    await report('gw1', [['busy', 1, 5]]);
    expect(await tick(a)).toEqual([]);
  });
});
