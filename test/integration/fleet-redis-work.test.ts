/**
 * Fleet state costs Redis nothing per event (DESIGN.md, "Scale-out"): with three gateways holding
 * viewers in rooms on real NATS and Redis, the heartbeats and viewer reports of several intervals,
 * the viewer totals pushed to clients and 50 dispatch answers make no Redis command at all (counted
 * by the server's INFO commandstats).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../../src/shared/log.js';
import { connectRedis, type RedisConnection } from '../../src/shared/store/redis-client.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/latch.js';
import { WsTestClient } from '../helpers/ws-client.js';

const INTERVAL_MS = 300;
const ROOMS = ['stage', 'backstage'];
let cluster: Cluster;
let redis: RedisConnection;
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 3, roomServices: 2,
    env: { ROOMCAST_VIEWER_INTERVAL_MS: String(INTERVAL_MS), ROOMCAST_REGISTRY_HEARTBEAT_MS: '1000' },
  });
  redis = await connectRedis(cluster.redisUrl!, silentLogger);
  for (const room of ROOMS) await cluster.createRoom(room);
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await redis?.quit();
  await cluster?.stop();
});

/** Commands the Redis server has run, by name, except what this test itself asks. */
async function commandCalls(): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const [, name, count] of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (name !== 'info') calls.set(name!, Number(count));
  }
  return calls;
}

function difference(after: Map<string, number>, before: Map<string, number>): Record<string, number> {
  const changed: Record<string, number> = {};
  for (const [name, count] of after) if (count !== (before.get(name) ?? 0)) changed[name] = count - (before.get(name) ?? 0);
  return changed;
}

it('heartbeats, viewer counts and dispatch make no Redis command', async () => {
  for (const [i, gateway] of cluster.gateways.entries()) {
    for (let j = 0; j < 3; j++) {
      const client = await WsTestClient.connect(gateway.url, { token: await cluster.token(`viewer-${i}-${j}`) });
      clients.push(client);
      for (const room of ROOMS) {
        client.send({ t: 'join', room });
        await client.next((frame) => frame.t === 'joined' && frame.room === room);
      }
    }
  }
  // Everyone's sessions and joins are stored; from here on only fleet state moves.
  await eventually(async () => (await cluster.api('GET', '/v1/rooms/stage')).body.viewers === 9, { what: 'the fleet-wide count' });
  await eventually(() => clients.every((client) => client.frames.some((frame) => frame.t === 'viewers' && frame.room === 'stage' && frame.count === 9)), { what: 'every viewer told the count' });

  const before = await commandCalls();
  await new Promise((resolve) => setTimeout(resolve, 4 * INTERVAL_MS));
  const answers = await Promise.all(Array.from({ length: 50 }, () => cluster.api('GET', '/v1/gateway')));
  expect(new Set(answers.map((answer) => answer.status))).toEqual(new Set([200]));
  const after = await commandCalls();
  expect(difference(after, before)).toEqual({});
}, 60_000);
