/**
 * A gateway sends the chat frames of one op and one window to the room service in one request. On a
 * real cluster (NATS, Redis, WebSocket clients): many simultaneous `pm`s travel in few requests, each
 * sender gets its own `sent`, each recipient its message; a frame refused inside a batch (a `pm` to
 * oneself, a blocked sender) fails alone with its own code and id while the rest of its batch goes
 * through; frames of another op (a `sync`) travel in their own requests. An observer on the bus reads
 * what the requests carried.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBus } from '../../src/shared/bus/nats-bus.js';
import { decodeBusMessage } from '../../src/shared/codec/codec.js';
import { silentLogger } from '../../src/shared/log.js';
import { subjects } from '../../src/shared/protocol/bus-messages.js';
import type { ChatBatchRequest } from '../../src/shared/protocol/chat-bus-messages.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { WsTestClient, type AnyFrame } from '../helpers/ws-client.js';

let cluster: Cluster;
let observer: NatsBus;
/** The frame types each request carried, per op subject. */
const carried: Record<string, string[][]> = { send: [], sync: [] };
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 1, roomServices: 2,
    // A long window, so that the frames below share requests whatever the machine's speed.
    env: { ROOMCAST_SEND_BATCH_WINDOW_MS: '50', ROOMCAST_CHAT_RATE_PER_SEC: '1000', ROOMCAST_CHAT_BURST: '1000' },
  });
  observer = await NatsBus.connect({ servers: cluster.nats!.url, name: 'observer', log: silentLogger });
  for (const op of ['send', 'sync'] as const) {
    observer.subscribe(subjects.chat(op), (message) => {
      carried[op]!.push((decodeBusMessage(message.data) as ChatBatchRequest).requests.map((request) => request.frame.t));
    });
  }
  await observer.flush();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await observer?.close();
  await cluster?.stop();
});

async function connect(uid: string): Promise<WsTestClient> {
  const client = await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token(uid) });
  clients.push(client);
  await client.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
  return client;
}

/** Each of `client`'s frames answering one of `ids` (`sent` or `error`), once all have come. */
function answersTo(client: WsTestClient, ids: string[]): Promise<AnyFrame[]> {
  return client.until(() => {
    const found = client.frames.filter((f) => (f.t === 'sent' || f.t === 'error') && ids.includes(f.id as string));
    return found.length === ids.length ? found : undefined;
  }, 15_000, `answers to ${ids.join(', ')}`);
}

describe('chat frames coalesced per gateway window', () => {
  it('answers each of many simultaneous pms on its own and delivers each, in far fewer requests than frames', async () => {
    const senders = await Promise.all(Array.from({ length: 8 }, (_, i) => connect(`writer${i}`)));
    const reader = await connect('reader');
    carried.send!.length = 0;
    for (let round = 0; round < 4; round++) {
      senders.forEach((sender, i) => sender.send({ t: 'pm', to: 'reader', id: `m${round}-${i}`, text: `round ${round} from ${i}` }));
    }
    const answers = await Promise.all(senders.map((sender, i) => answersTo(sender, [0, 1, 2, 3].map((round) => `m${round}-${i}`))));
    for (const [i, own] of answers.entries()) {
      expect(own.map((f) => [f.t, f.to, f.mid])).toEqual(expect.arrayContaining(
        [0, 1, 2, 3].map(() => ['sent', 'reader', expect.stringMatching(new RegExp(`^p/reader/writer${i}/\\d$`))])));
    }
    const mids = new Set(answers.flat().map((f) => f.mid));
    expect(mids.size).toBe(32);

    const got = await reader.until(() => {
      const msgs = reader.frames.filter((f) => f.t === 'inbox').flatMap((f) => f.msgs as Array<{ mid: string }>);
      return msgs.length >= 32 ? msgs : undefined;
    }, 15_000, 'thirty-two messages');
    expect(new Set(got.map((m) => m.mid))).toEqual(mids);
    expect(carried.send!.flat()).toEqual(Array.from({ length: 32 }, () => 'pm'));
    expect(carried.send!.length).toBeLessThan(32);
  });

  it('fails a refused frame alone, with its own code and id, while the rest of its request goes through', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    const blocked = await connect('pest');
    expect((await bob.request({ t: 'block', uid: 'pest' }, 'blocked')).blocked).toBe(true);
    carried.send!.length = 0;
    carried.sync!.length = 0;

    // One window: a pm to oneself, a pm from a blocked sender, a good pm, and a sync (another op).
    alice.send({ t: 'pm', to: 'alice', id: 'self', text: 'me' });
    blocked.send({ t: 'pm', to: 'bob', id: 'nope', text: 'hi' });
    alice.send({ t: 'pm', to: 'bob', id: 'good', text: 'hello bob' });
    bob.send({ t: 'sync' });

    const aliceAnswers = await answersTo(alice, ['self', 'good']);
    const self = aliceAnswers.find((f) => f.id === 'self');
    const good = aliceAnswers.find((f) => f.id === 'good')!;
    expect(self).toMatchObject({ t: 'error', code: 'bad_request', id: 'self', ref: 'pm' });
    expect(good).toMatchObject({ t: 'sent', id: 'good', to: 'bob' });
    expect((await answersTo(blocked, ['nope']))[0]).toMatchObject({ t: 'error', code: 'blocked', id: 'nope' });
    await bob.next((f) => f.t === 'synced');
    await bob.next((f) => f.t === 'inbox' && (f.msgs as Array<{ mid: string }>).some((m) => m.mid === good.mid));

    expect(carried.send!.flat().sort()).toEqual(['pm', 'pm', 'pm']);
    expect(carried.send!.some((request) => request.length > 1)).toBe(true);
    expect(carried.sync).toEqual([['sync']]);
  });
});
