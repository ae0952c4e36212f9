/**
 * The SDK's dispatch fallback against a real gateway and room service (the embedded topology, so the
 * fleet registry runs on the in-process bus): dispatch names the gateway by a public URL that cannot
 * be reached from here, as a pod address is from the Internet; after `dispatchFailuresBeforeFallback`
 * failed attempts the SDK connects to `url` and works there.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RoomcastClient, type WebSocketConstructor } from '../../src/client/roomcast-client.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';

/** Nothing listens on port 1: every connection attempt there fails at once. */
const UNREACHABLE = 'ws://127.0.0.1:1/ws';
let cluster: Cluster;
let client: RoomcastClient | null = null;

beforeAll(async () => {
  cluster = await startCluster({ mode: 'embedded', gateways: 1, env: { ROOMCAST_PUBLIC_URL: UNREACHABLE } });
  await cluster.createRoom('lobby');
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

it('connects to url after the dispatched address fails twice in a row, and works there', async () => {
  expect((await cluster.api('GET', '/v1/gateway')).body).toMatchObject({ url: UNREACHABLE, gatewayId: 'gw0' });
  const attempts: number[] = [];
  client = new RoomcastClient({
    url: cluster.gateways[0]!.url, dispatchUrl: `${cluster.apiUrl}/v1/gateway`, dispatchFailuresBeforeFallback: 2,
    token: await cluster.token('wanderer'), WebSocket: WebSocket as unknown as WebSocketConstructor, reconnect: { baseMs: 20, maxMs: 50 },
  });
  client.on('reconnecting', (info: { attempt: number }) => attempts.push(info.attempt));
  const welcome = await client.connect();
  expect(welcome.uid).toBe('wanderer');
  expect(attempts).toEqual([1, 2]);
  const joined = await client.join('lobby');
  expect(joined.room).toBe('lobby');
});
