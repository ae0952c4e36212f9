/**
 * Filling a new gateway: with two gateways of unequal load, the room service's dispatch endpoint
 * sends new clients to the lightly loaded one, from the load the gateways report to the registry.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/latch.js';
import { WsTestClient } from '../helpers/ws-client.js';

const LOADED = 150;
/**
 * Gateways report their load this often (5 s by default): short, so the report comes soon, yet with
 * the registry's slack (half an interval) above a busy machine's event-loop stalls.
 */
const REGISTRY_HEARTBEAT_MS = 1000;
let cluster: Cluster;
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 2, roomServices: 1, env: { ROOMCAST_REGISTRY_HEARTBEAT_MS: String(REGISTRY_HEARTBEAT_MS) },
  });
});

afterAll(async () => {
  for (const client of clients) client.close();
  await cluster?.stop();
});

async function dispatched(credential?: string): Promise<{ status: number; body: { url?: string; gatewayId?: string; error?: { code: string } } }> {
  return cluster.api('GET', '/v1/gateway', undefined, credential);
}

it('sends new clients to the lightly loaded gateway', async () => {
  const token = await cluster.token('newcomer');
  for (let i = 0; i < LOADED; i++) clients.push(await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token(`early-${i}`) }));
  // The gateways report their load with their registry heartbeat: wait for the report of the loaded one.
  await eventually(async () => cluster.registry.liveGateways().some((g) => g.gatewayId === 'gw0' && g.connections === LOADED), { timeoutMs: 20_000, what: 'the registry to report the loaded gateway' });
  const answers = await Promise.all(Array.from({ length: 20 }, () => dispatched(token)));
  expect(answers.map((answer) => answer.body.gatewayId)).toEqual(Array.from({ length: 20 }, () => 'gw1'));
  const answer = answers[0]!;
  expect(answer).toMatchObject({ status: 200, body: { gatewayId: 'gw1', url: cluster.gateways[1]!.url } });
});

it('answers only callers with a credential', async () => {
  expect((await dispatched('not-a-token')).body.error?.code).toBe('unauthorized');
  expect((await cluster.api('POST', '/v1/gateway')).body.error?.code).toBe('method_not_allowed');
});
