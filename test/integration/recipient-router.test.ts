/**
 * The room service's per-uid routing on a real nats-server and redis-server: one publish per gateway
 * that hosts a recipient, none to gateways without one, nothing to a gateway instance that is over
 * (its sessions are ignored), and recipients online nowhere reported as offline.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NatsBus } from '../../src/shared/bus/nats-bus.js';
import { decodeBusMessage, decodeMsgpack } from '../../src/shared/codec/codec.js';
import { silentLogger } from '../../src/shared/log.js';
import type { DeliverEvent } from '../../src/shared/protocol/chat-bus-messages.js';
import { connectRedis, type RedisConnection } from '../../src/shared/store/redis-client.js';
import { RedisSessionStore } from '../../src/shared/store/redis-session-store.js';
import type { SessionStore } from '../../src/shared/store/session-store.js';
import { RecipientRouter } from '../../src/room-service/recipient-router.js';
import { FixedGatewayDirectory } from '../../src/shared/fleet/gateway-directory.js';
import { eventually } from '../helpers/latch.js';
import { startNats, type NatsServerHandle } from '../helpers/nats-server.js';
import { startRedis, type RedisServerHandle } from '../helpers/redis-server.js';

const NOW = 1_700_000_000_000;
let nats: NatsServerHandle;
let redisServer: RedisServerHandle;
let redis: RedisConnection;
let publisher: NatsBus;
let observer: NatsBus;
const received = new Map<string, DeliverEvent[]>();

beforeAll(async () => {
  nats = await startNats();
  redisServer = await startRedis();
  redis = await connectRedis(redisServer.url, silentLogger);
  publisher = await NatsBus.connect({ servers: nats.url, name: 'router', log: silentLogger });
  observer = await NatsBus.connect({ servers: nats.url, name: 'observer', log: silentLogger });
  observer.subscribe('gw.*', (message) => {
    received.set(message.subject, [...(received.get(message.subject) ?? []), decodeBusMessage(message.data) as DeliverEvent]);
  });
  await observer.flush();
});

afterAll(async () => {
  await observer?.close();
  await publisher?.close();
  await redis?.quit();
  await redisServer?.stop();
  await nats?.stop();
});

it('publishes once per gateway hosting a recipient, and never to a dead or uninvolved gateway', async () => {
  const sessions = new RedisSessionStore({ redis });
  // gwDead is not in the fleet any more.
  const gateways = new FixedGatewayDirectory(['gwA', 'gwB', 'gwIdle'].map((gatewayId) => (
    { gatewayId, epoch: 1, url: `ws://${gatewayId}/ws`, connections: 1, ready: true, expiresAtMs: NOW + 7500 })));
  const device = (uid: string, gatewayId: string, connId: string) => ({ uid, gatewayId, epoch: 1, connId, device: 'web', connectedAtMs: NOW });
  await sessions.register(device('amy', 'gwA', 'a1'));
  await sessions.register(device('amy', 'gwB', 'a2'));
  await sessions.register(device('ben', 'gwA', 'b1'));
  await sessions.register(device('cat', 'gwDead', 'c1'));
  await sessions.register(device('idle', 'gwIdle', 'i1'));

  // 2,500 recipients: looked up in chunks; only three of them are online.
  const crowd = Array.from({ length: 2500 }, (_, i) => `nobody-${i}`);
  const router = new RecipientRouter({ sessions, gateways, bus: publisher });
  const result = await router.route([
    { to: ['amy', 'ben', 'cat', ...crowd], frame: { t: 'receipt', from: 'zed', cseq: 1 } },
    { to: ['amy'], frame: { t: 'receipt', from: 'zed', cseq: 2 }, except: 'a2' },
  ]);
  await publisher.flush();
  expect(result.gateways).toBe(2);
  expect(new Set(result.offline)).toEqual(new Set(['cat', ...crowd]));

  await eventually(() => received.has('gw.gwA') && received.has('gw.gwB'), { what: 'both deliveries' });
  await observer.flush();
  expect(received.get('gw.gwA')).toHaveLength(1);
  expect(received.get('gw.gwB')).toHaveLength(1);
  expect(received.has('gw.gwDead')).toBe(false);
  expect(received.has('gw.gwIdle')).toBe(false);
  const [toA] = received.get('gw.gwA')!;
  expect(toA!.items.map((item) => [item.to, decodeMsgpack(item.f)])).toEqual([
    [['amy', 'ben'], { t: 'receipt', from: 'zed', cseq: 1 }],
    [['amy'], { t: 'receipt', from: 'zed', cseq: 2 }],
  ]);
  // The excepted connection was amy's only one on gwB: gwB gets only the first frame.
  expect(received.get('gw.gwB')![0]!.items.map((item) => item.to)).toEqual([['amy']]);
});

it('answers the lookups of one turn with one registry read, each with its own uids only', async () => {
  const store = new RedisSessionStore({ redis });
  const reads: Array<readonly string[]> = [];
  const sessions: SessionStore = {
    register: (session) => store.register(session),
    unregister: (uid, gatewayId, connId) => store.unregister(uid, gatewayId, connId),
    lookup: (uids, isLive) => { reads.push(uids); return store.lookup(uids, isLive); },
    close: () => store.close(),
  };
  const gateways = new FixedGatewayDirectory([{ gatewayId: 'gwT', epoch: 1, url: 'ws://gwT/ws', connections: 1, ready: true, expiresAtMs: NOW + 7500 }]);
  for (const uid of ['dan', 'eve', 'fay']) await sessions.register({ uid, gatewayId: 'gwT', epoch: 1, connId: `${uid}-1`, device: 'web', connectedAtMs: NOW });
  const router = new RecipientRouter({ sessions, gateways, bus: publisher });

  // Three sends of one batch, each asking for its two users, as the chat service does.
  const [first, second, third] = await Promise.all([router.lookup(['dan', 'eve']), router.lookup(['eve', 'fay']), router.lookup(['gus', 'dan'])]);
  expect(reads).toHaveLength(1);
  expect(new Set(reads[0])).toEqual(new Set(['dan', 'eve', 'fay', 'gus']));
  expect([...first!.keys()].sort()).toEqual(['dan', 'eve']);
  expect([...second!.keys()].sort()).toEqual(['eve', 'fay']);
  expect([...third!.keys()]).toEqual(['dan']);
  expect(first!.get('dan')).toEqual([{ uid: 'dan', gatewayId: 'gwT', epoch: 1, connId: 'dan-1', device: 'web', connectedAtMs: NOW }]);

  // A lookup of a later turn is a read of its own.
  await router.lookup(['fay']);
  expect(reads).toHaveLength(2);
});
