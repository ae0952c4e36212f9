/**
 * Offline delivery and sync of private messages over the distributed topology: a user offline while
 * messages arrive pulls them on reconnect in pages, each page request acknowledging the previous
 * page; a device that dies before acknowledging gets the same messages again; each device type keeps
 * its own cursor; retention leaves a plain gap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrivateMessage } from '../../src/shared/protocol/chat-frames.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { WsTestClient, type AnyFrame } from '../helpers/ws-client.js';

const RETENTION = 600;
let cluster: Cluster;
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'distributed', gateways: 2, roomServices: 2,
    env: {
      ROOMCAST_CHAT_RATE_PER_SEC: '100000', ROOMCAST_CHAT_BURST: '100000',
      ROOMCAST_FRAME_RATE_PER_SEC: '100000', ROOMCAST_FRAME_BURST: '100000',
      ROOMCAST_CHAT_RETENTION_COUNT: String(RETENTION),
    },
  });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

async function connect(uid: string, device = 'web', gateway = 0): Promise<{ client: WsTestClient; login: AnyFrame }> {
  const client = await WsTestClient.connect(cluster.gateways[gateway]!.url, { token: await cluster.token(uid, 'viewer', { device }) });
  clients.push(client);
  const login = await client.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
  return { client, login };
}

/** Sends `count` private messages from a fresh sender and waits for every `sent`. */
async function sendMany(from: string, to: string, count: number): Promise<void> {
  const { client } = await connect(from, 'web', 1);
  for (let i = 0; i < count; i++) client.send({ t: 'pm', to, id: `${from}-${i}`, text: `message ${i}` });
  await client.until(() => (client.frames.filter((f) => f.t === 'sent').length === count ? true : undefined), 30_000, `${count} sent`);
  expect(client.frames.filter((f) => f.t === 'error')).toEqual([]);
  client.close();
}

/** Requests one sync page and returns it. */
async function sync(client: WsTestClient, after?: number): Promise<AnyFrame> {
  const from = client.frames.length;
  client.send(after === undefined ? { t: 'sync' } : { t: 'sync', after });
  return client.next((f) => f.t === 'synced' || f.t === 'error', 10_000, from);
}

/** Pulls pages until there are no more, each request acknowledging the page before it. */
async function pullAll(client: WsTestClient): Promise<{ pages: AnyFrame[]; msgs: PrivateMessage[] }> {
  const pages: AnyFrame[] = [];
  let page = await sync(client);
  pages.push(page);
  while (page.more) {
    const msgs = page.msgs as PrivateMessage[];
    page = await sync(client, msgs[msgs.length - 1]!.seq);
    pages.push(page);
  }
  return { pages, msgs: pages.flatMap((p) => p.msgs as PrivateMessage[]) };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('offline sync', () => {
  it('a user offline while 500 messages arrive gets them all on reconnect, in order, in pages of 100', async () => {
    await sendMany('alice', 'bob', 500);
    const { client: bob, login } = await connect('bob');
    // The newest are pushed at login; the rest are pulled on demand.
    expect(login).toMatchObject({ cursor: 0, lastSeq: 500 });
    expect((login.msgs as PrivateMessage[]).map((m) => m.seq)).toEqual(range(481, 500));

    const { pages, msgs } = await pullAll(bob);
    expect(pages.map((p) => (p.msgs as PrivateMessage[]).length)).toEqual([100, 100, 100, 100, 100]);
    // Each page request acknowledged the page before it.
    expect(pages.map((p) => p.cursor)).toEqual([0, 100, 200, 300, 400]);
    expect(msgs.map((m) => m.seq)).toEqual(range(1, 500));
    expect(new Set(msgs.map((m) => m.cid)).size).toBe(500);
    expect(msgs.every((m) => m.from === 'alice' && m.to === 'bob')).toBe(true);

    bob.send({ t: 'inbox_ack', seq: 500 });
    const cursorNow = async () => (await sync(bob)).cursor;
    await expect.poll(cursorNow, { timeout: 5000 }).toBe(500);
    bob.close();

    const again = await connect('bob');
    expect(again.login).toMatchObject({ cursor: 500, lastSeq: 500, msgs: [] });
    // Another device type keeps its own cursor.
    const phone = await connect('bob', 'ios', 1);
    expect(phone.login).toMatchObject({ cursor: 0, lastSeq: 500 });
  });

  it('a device that dies before acknowledging gets the same messages again', async () => {
    await sendMany('carol', 'dave', 150);
    const first = await connect('dave');
    const page = await sync(first.client);
    expect((page.msgs as PrivateMessage[]).map((m) => m.seq)).toEqual(range(1, 100));
    first.client.ws.terminate();

    const second = await connect('dave');
    expect(second.login.cursor).toBe(0);
    const { msgs } = await pullAll(second.client);
    expect(msgs.map((m) => m.seq)).toEqual(range(1, 150));
    // The same messages, with the same ids: a client shows each once by dropping known mids.
    const firstMids = (page.msgs as PrivateMessage[]).map((m) => m.mid);
    expect(msgs.slice(0, 100).map((m) => m.mid)).toEqual(firstMids);
    const seen = new Set<string>();
    const shown = [...(page.msgs as PrivateMessage[]), ...(second.login.msgs as PrivateMessage[]), ...msgs].filter((m) => !seen.has(m.mid) && seen.add(m.mid));
    expect(shown).toHaveLength(150);
  });

  it('says plainly what retention dropped before the device got it', async () => {
    await sendMany('erin', 'frank', RETENTION + 50);
    const { client } = await connect('frank');
    const page = await sync(client);
    expect(page.gap).toEqual({ from: 1, to: 50 });
    expect((page.msgs as PrivateMessage[])[0]!.seq).toBe(51);
  });
});
