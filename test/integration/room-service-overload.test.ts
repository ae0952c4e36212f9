/**
 * A room service that cannot keep up answers `overloaded` at once, with a retry hint, from a bounded
 * queue: here its Redis stalls (replies stop coming), so two sends fill the queue and every further
 * send is answered before Redis answers anything; the two taken on are acknowledged once it does.
 * The same holds for private messages. (The gateway sends a window's sends, or chat frames of one
 * kind, in one request; the queue counts each.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { startRedis, type RedisServerHandle } from '../helpers/redis-server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { eventually } from '../helpers/latch.js';
import { WsTestClient, type AnyFrame } from '../helpers/ws-client.js';

let redis: RedisServerHandle;
let link: TcpProxy;
let cluster: Cluster;

beforeAll(async () => {
  redis = await startRedis();
  link = await startTcpProxy(redis.port);
  cluster = await startCluster({
    mode: 'distributed', gateways: 1, roomServices: 1,
    env: {
      ROOMCAST_REDIS_URL: `redis://127.0.0.1:${link.port}`, ROOMCAST_MAX_PENDING_REQUESTS: '2',
      ROOMCAST_SEND_RATE_PER_SEC: '1000', ROOMCAST_SEND_BURST: '1000', ROOMCAST_REQUEST_TIMEOUT_MS: '30000',
    },
  });
  await cluster.createRoom('busy');
});

afterAll(async () => {
  link?.unstall();
  await cluster?.stop();
  await link?.close();
  await redis?.stop();
});

/**
 * With Redis stalled, two frames fill the queue (ROOMCAST_MAX_PENDING_REQUESTS 2) and the next four
 * are refused `overloaded` with a retry hint before Redis answers anything; once it does, the two
 * taken on are answered with `answer`. Answers the refusals.
 */
async function overflowTheQueue(client: WsTestClient, frameOf: (i: number) => Record<string, unknown>, answer: 'ack' | 'sent', ref: string): Promise<AnyFrame[]> {
  const metricsUrl = `http://127.0.0.1:${cluster.roomServices[0]!.metricsPort}/metrics`;
  link.stall();
  for (let i = 0; i < 2; i++) client.send(frameOf(i));
  await eventually(async () => (await (await fetch(metricsUrl)).text()).includes('roomcast_room_pending_requests 2') || undefined,
    { what: `two ${ref} frames taken on and waiting for Redis` });
  for (let i = 2; i < 6; i++) client.send(frameOf(i));
  const refusals = await client.until(() => {
    const errors = client.frames.filter((f) => f.t === 'error');
    return errors.length === 4 ? errors : undefined;
  }, 10_000, 'four refusals while Redis is stalled');
  expect(refusals.map((refusal) => refusal.id).sort()).toEqual([2, 3, 4, 5].map((i) => frameOf(i).id));
  for (const refusal of refusals) {
    expect(refusal).toMatchObject({ code: 'overloaded', ref });
    expect(refusal.retryAfterMs).toBeGreaterThan(0);
  }
  // Nothing was answered: Redis has answered nothing yet; the refusals came from the queue.
  expect(client.frames.filter((f) => f.t === answer)).toEqual([]);

  link.unstall();
  const answered = await client.until(() => {
    const found = client.frames.filter((f) => f.t === answer);
    return found.length === 2 ? found : undefined;
  }, 10_000, `the two ${ref} frames taken on`);
  expect(new Set(answered.map((frame) => frame.id))).toEqual(new Set([0, 1].map((i) => frameOf(i).id)));
  return refusals;
}

describe('an overloaded room service', () => {
  it('answers sends beyond its queue with overloaded and retryAfterMs at once, and acknowledges what it took on', async () => {
    const viewer = await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token('eager') });
    // The login push and the join are requests the queue counts too: both answered before Redis stalls.
    await viewer.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
    viewer.send({ t: 'join', room: 'busy' });
    await viewer.next((f) => f.t === 'joined');

    const refusals = await overflowTheQueue(viewer, (i) => ({ t: 'send', room: 'busy', id: `s${i}`, text: `message ${i}` }), 'ack', 'send');
    for (const refusal of refusals) expect(refusal.room).toBe('busy');

    // With the queue empty again, a refused send goes through when retried with its id.
    viewer.send({ t: 'send', room: 'busy', id: String(refusals[0]!.id), text: 'again' });
    expect(await viewer.next((f) => f.t === 'ack' && f.id === refusals[0]!.id)).toMatchObject({ seq: 3 });
    viewer.close();
  });

  it('answers private messages beyond its queue the same way, each refusal naming its frame', async () => {
    const writer = await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token('writer') });
    await writer.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
    await overflowTheQueue(writer, (i) => ({ t: 'pm', to: 'reader', id: `p${i}`, text: `message ${i}` }), 'sent', 'pm');
    writer.close();
  });
});
