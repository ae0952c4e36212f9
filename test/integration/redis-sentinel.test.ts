/**
 * Roomcast on Redis behind Sentinel (ROOMCAST_REDIS_URL=redis-sentinel://…), through a failover: the
 * primary is killed (SIGKILL, a crash), the sentinel promotes the replica, and the gateway and room
 * service follow it. What was acknowledged before the crash (a room message, a private message) is
 * still there after it, and new messages are acknowledged again.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/latch.js';
import { WsTestClient, type AnyFrame } from '../helpers/ws-client.js';

const ROOM = 'lobby';
const FAILOVER_TIMEOUT_MS = 30_000;

let cluster: Cluster;
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ mode: 'distributed', gateways: 1, roomServices: 1, redis: 'sentinel', env: { ROOMCAST_REQUEST_TIMEOUT_MS: '1000' } });
  await cluster.createRoom(ROOM);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

async function connect(uid: string): Promise<WsTestClient> {
  const client = await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token(uid) });
  clients.push(client);
  await client.next((f) => f.t === 'welcome');
  return client;
}

/**
 * Sends `frame` until it is acknowledged (`isAck`), resending it with the same id after an error:
 * during a failover a send may fail, and ids make the retries idempotent.
 */
async function sendUntilAcknowledged(client: WsTestClient, frame: Record<string, unknown>, isAck: (f: AnyFrame) => boolean): Promise<AnyFrame> {
  let ack: AnyFrame | undefined;
  // What each attempt got, so a failure says what the service answered meanwhile.
  const answers: string[] = [];
  try {
    await eventually(async () => {
      const from = client.frames.length;
      client.send(frame);
      const answer = await client.next((f) => isAck(f) || (f.t === 'error' && f.id === frame.id), 5_000, from).catch(() => null);
      answers.push(answer ? String(answer.code ?? answer.t) : 'no answer in 5 s');
      if (!answer || answer.t === 'error') return false;
      ack = answer;
      return true;
    }, { timeoutMs: FAILOVER_TIMEOUT_MS, what: `an acknowledgement of ${String(frame.id)}` });
  } catch (error) {
    throw new Error(`${(error as Error).message}; the answers meanwhile: ${answers.join(', ')}`);
  }
  return ack!;
}

it('keeps acknowledged room and private messages across a failover, and acknowledges new ones on the new primary', async () => {
  const sentinel = cluster.sentinel!;
  const alice = await connect('alice');
  alice.send({ t: 'join', room: ROOM });
  await alice.next((f) => f.t === 'joined' && f.room === ROOM);

  const before = await sendUntilAcknowledged(alice, { t: 'send', room: ROOM, id: 'room-before', text: 'before the crash' }, (f) => f.t === 'ack' && f.id === 'room-before');
  const pmBefore = await sendUntilAcknowledged(alice, { t: 'pm', to: 'bob', id: 'pm-before', text: 'for bob, before' }, (f) => f.t === 'sent' && f.id === 'pm-before');

  // No WAIT, no pause: the primary dies right after the acknowledgements.
  const oldPrimary = await sentinel.primaryPort();
  const primaryNode = sentinel.nodes.find((node) => node.port === oldPrimary)!;
  await primaryNode.kill();
  const newPrimary = await sentinel.waitForFailover(oldPrimary);
  expect(newPrimary).not.toBe(oldPrimary);

  const after = await sendUntilAcknowledged(alice, { t: 'send', room: ROOM, id: 'room-after', text: 'after the failover' }, (f) => f.t === 'ack' && f.id === 'room-after');
  const beforeSeq = before.seq as number;
  expect(after.seq).toBe(beforeSeq + 1);
  await sendUntilAcknowledged(alice, { t: 'pm', to: 'bob', id: 'pm-after', text: 'for bob, after' }, (f) => f.t === 'sent' && f.id === 'pm-after');

  const history = await cluster.api('GET', `/v1/rooms/${ROOM}/messages?limit=10`);
  expect(history.status).toBe(200);
  const texts = (history.body.msgs as Array<{ text: string; seq: number }>).map((m) => [m.seq, m.text]);
  expect(texts).toEqual([[beforeSeq, 'before the crash'], [beforeSeq + 1, 'after the failover']]);

  const bob = await connect('bob');
  const from = bob.frames.length;
  bob.send({ t: 'sync' });
  const synced = await bob.next((f) => f.t === 'synced', 10_000, from);
  const inbox = synced.msgs as Array<{ text: string; seq: number }>;
  expect(inbox.map((m) => m.text)).toEqual(['for bob, before', 'for bob, after']);
  expect(inbox[0]!.seq).toBe(pmBefore.seq);
}, 90_000);
