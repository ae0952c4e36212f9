/**
 * A room's batch window grows with its viewers on the gateway (ROOMCAST_BATCH_WINDOW_PER_1000_VIEWERS_MS):
 * here 30 viewers × 100 ms per viewer make a 3 s window, so after the first message of a quiet room
 * (written at once) the next ones wait for the window and arrive together, in one frame.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';

const VIEWERS = 30;
let cluster: Cluster;
const viewers: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ mode: 'embedded', gateways: 1, env: { ROOMCAST_BATCH_WINDOW_PER_1000_VIEWERS_MS: '100000' } });
  await cluster.createRoom('big');
  for (let i = 0; i < VIEWERS; i++) {
    const viewer = await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token(`v${i}`) });
    viewer.send({ t: 'join', room: 'big' });
    await viewer.next((f) => f.t === 'joined');
    viewers.push(viewer);
  }
});

afterAll(async () => {
  for (const viewer of viewers) viewer.close();
  await cluster?.stop();
});

const publish = (text: string) => cluster.api('POST', '/v1/rooms/big/messages', { kind: 'system', text });

describe('the batch window of a big room', () => {
  it('writes the first message after a quiet window at once and the next ones together when its longer window ends', async () => {
    const watcher = viewers[0]!;
    expect((await publish('first')).status).toBe(201);
    const first = await watcher.next((f) => f.t === 'messages');
    expect((first.msgs as Array<{ text: string }>).map((m) => m.text)).toEqual(['first']);
    const from = watcher.frames.length;
    const answers = await Promise.all(['second', 'third', 'fourth'].map(publish));
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201]);
    const next = await watcher.next((f) => f.t === 'messages', 10_000, from);
    expect((next.msgs as Array<{ text: string }>).map((m) => m.text).sort()).toEqual(['fourth', 'second', 'third']);
  });
});
