/**
 * A gateway's NATS connection is cut and restored while a room's messages flow: its viewers end
 * with every seq, once, in order (the gap is filled from the room's history).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';

let cluster: Cluster;
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 2, roomServices: 2,
    env: { ROOMCAST_ROOM_BUDGET_PER_SEC: '0', ROOMCAST_SEND_RATE_PER_SEC: '10000', ROOMCAST_SEND_BURST: '10000', ROOMCAST_FRAME_BURST: '10000' },
  });
  await cluster.createRoom('flow');
});

afterAll(async () => {
  for (const client of clients) client.close();
  await cluster?.stop();
});

async function viewer(gateway: number, uid: string): Promise<WsTestClient> {
  const client = await WsTestClient.connect(cluster.gateways[gateway]!.url, { token: await cluster.token(uid) });
  clients.push(client);
  client.send({ t: 'join', room: 'flow' });
  await client.next((f) => f.t === 'joined');
  return client;
}

it('fills what a gateway missed while its NATS connection was down', async () => {
  const sender = await viewer(0, 'sender');
  const watchers = [await viewer(1, 'w1'), await viewer(1, 'w2')];
  const total = 150;
  let sent = 0;
  const sendSome = (count: number) => {
    for (let i = 0; i < count; i++, sent++) sender.send({ t: 'send', room: 'flow', id: `m${sent}`, text: `message ${sent}` });
  };
  const acked = (count: number) => sender.until(() => (sender.frames.filter((f) => f.t === 'ack').length >= count ? true : undefined), 15_000, `${count} acks`);

  sendSome(50);
  await acked(50);
  cluster.gateways[1]!.natsLink!.cut();
  sendSome(50); // stored and published while gateway 1 cannot hear them
  await acked(100);
  cluster.gateways[1]!.natsLink!.restore();
  sendSome(total - 100);
  await acked(total);

  for (const watcher of watchers) {
    await watcher.until(() => (watcher.messages('flow').length >= total ? true : undefined), 20_000, 'every message after the cut');
    expect(watcher.messages('flow').map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(watcher.frames.filter((f) => f.t === 'gap')).toEqual([]);
  }
});
