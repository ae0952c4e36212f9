/**
 * The bench's limit peers (bench/peers/limit-peer.mjs) over a real WebSocket: `limit` takes joins and
 * publishes, leaving sends unanswered; `limit-sends` (BENCH_LIMIT_ACK_SENDS=1) answers each send at
 * once with an `ack` of Roomcast's layout. The efficiency report's second ratio rests on that.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { ChildOutput } from '../helpers/child-output.js';
import { WsTestClient } from '../helpers/ws-client.js';

const started: ChildProcess[] = [];
const clients: WsTestClient[] = [];

afterAll(() => {
  for (const client of clients) client.close();
  for (const child of started) child.kill('SIGTERM');
});

/** A limit peer's client, welcomed and joined to room `hot`. */
async function joinedClient(ackSends: boolean): Promise<WsTestClient> {
  const child = spawn(process.execPath, ['bench/peers/limit-peer.mjs'], {
    env: { ...process.env, BENCH_PEER_PORT: '0', ...(ackSends ? { BENCH_LIMIT_ACK_SENDS: '1' } : {}) },
  });
  started.push(child);
  const port = await new ChildOutput(child, 'the limit peer')
    .waitForLine((line) => /^listening (\d+)$/.exec(line.trim())?.[1], 'its listening line', 10_000);
  const client = await WsTestClient.connect(`ws://127.0.0.1:${port}/ws`);
  clients.push(client);
  await client.next((f) => f.t === 'welcome');
  expect(await client.request({ t: 'join', room: 'hot' }, 'joined')).toMatchObject({ t: 'joined', room: 'hot', seq: 0 });
  return client;
}

describe('limit peers (bench)', () => {
  it('limit-sends answers each send at once with an ack of Roomcast\'s layout', async () => {
    const client = await joinedClient(true);
    const from = client.frames.length;
    client.send({ t: 'send', room: 'hot', id: 's-1', text: 'hello' });
    client.send({ t: 'send', room: 'hot', id: 's-2', text: 'again' });
    await client.next((f) => f.t === 'ack' && f.id === 's-2', 10_000, from);
    expect(client.frames.slice(from)).toEqual([{ t: 'ack', id: 's-1', room: 'hot', seq: 0 }, { t: 'ack', id: 's-2', room: 'hot', seq: 0 }]);
  });

  it('limit leaves sends unanswered: the next answer is the pong to a later ping', async () => {
    const client = await joinedClient(false);
    const from = client.frames.length;
    client.send({ t: 'send', room: 'hot', id: 's-1', text: 'hello' });
    client.send({ t: 'ping', ts: 7 });
    await client.next((f) => f.t === 'pong', 10_000, from);
    expect(client.frames.slice(from)).toEqual([{ t: 'pong', ts: 7 }]);
  });
});
