/**
 * A gateway sends the room messages of one window to the room service in one request. On a real
 * cluster (NATS, Redis): many senders at once are each acknowledged with their own seq, the room sees
 * every message once and in seq order, and a send refused inside a batch (muted, a duplicate) fails
 * or answers alone while the rest of its batch goes through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';

let cluster: Cluster;
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 1, roomServices: 2,
    // A long window, so that the sends below share requests whatever the machine's speed.
    env: { ROOMCAST_SEND_BATCH_WINDOW_MS: '50', ROOMCAST_SEND_RATE_PER_SEC: '1000', ROOMCAST_SEND_BURST: '1000' },
  });
  await cluster.createRoom('batched');
});

afterAll(async () => {
  for (const client of clients) client.close();
  await cluster?.stop();
});

async function joined(uid: string): Promise<WsTestClient> {
  const client = await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token(uid) });
  clients.push(client);
  client.send({ t: 'join', room: 'batched' });
  await client.next((f) => f.t === 'joined');
  return client;
}

describe('room sends coalesced per gateway window', () => {
  it('acknowledges each of many simultaneous sends with its own seq, and the room gets each once, in order', async () => {
    const senders = await Promise.all(Array.from({ length: 8 }, (_, i) => joined(`sender${i}`)));
    const watcher = await joined('watcher');
    for (let round = 0; round < 5; round++) {
      senders.forEach((sender, i) => sender.send({ t: 'send', room: 'batched', id: `m${round}-${i}`, text: `round ${round} from ${i}` }));
    }
    const acks = await Promise.all(senders.map((sender) => sender.until(() => {
      const found = sender.frames.filter((f) => f.t === 'ack');
      return found.length === 5 ? found : undefined;
    }, 15_000, 'five acks')));
    const ackedSeqs = acks.flat().map((ack) => ack.seq as number);
    expect(new Set(ackedSeqs).size).toBe(40);
    for (const [i, senderAcks] of acks.entries()) {
      expect(senderAcks.map((ack) => ack.id).sort()).toEqual([0, 1, 2, 3, 4].map((round) => `m${round}-${i}`).sort());
    }

    const delivered = await watcher.until(() => {
      const msgs = watcher.frames.filter((f) => f.t === 'messages').flatMap((f) => f.msgs as Array<{ seq: number; text: string }>);
      return msgs.length >= 40 ? msgs : undefined;
    }, 15_000, 'forty messages');
    expect(delivered.map((m) => m.seq)).toEqual([...ackedSeqs].sort((a, b) => a - b));
  });

  it('fails a muted sender alone and answers a resent message as the duplicate it is, within the same window', async () => {
    const muted = await joined('hushed');
    const speaker = await joined('speaker');
    const answer = await cluster.api('PUT', '/v1/rooms/batched/mutes/hushed', { durationMs: 60_000 });
    expect(answer.status).toBeLessThan(300);
    await muted.next((f) => f.t === 'notice');

    speaker.send({ t: 'send', room: 'batched', id: 'first', text: 'hello' });
    const firstAck = await speaker.next((f) => f.t === 'ack' && f.id === 'first');
    // One window: the muted send, a new send and a resend of 'first' travel together.
    muted.send({ t: 'send', room: 'batched', id: 'quiet', text: 'may I?' });
    speaker.send({ t: 'send', room: 'batched', id: 'second', text: 'again' });
    speaker.send({ t: 'send', room: 'batched', id: 'first', text: 'hello' });

    const refusal = await muted.next((f) => f.t === 'error');
    expect(refusal).toMatchObject({ code: 'muted', room: 'batched', id: 'quiet', ref: 'send' });
    const acks = await speaker.until(() => {
      const found = speaker.frames.filter((f) => f.t === 'ack');
      return found.length === 3 ? found : undefined;
    }, 10_000, 'three acks');
    const resent = acks.filter((ack) => ack.id === 'first');
    expect(resent.map((ack) => ack.seq)).toEqual([firstAck.seq, firstAck.seq]);
    const second = acks.find((ack) => ack.id === 'second');
    expect(second?.seq).toBe((firstAck.seq as number) + 1);
  });
});
