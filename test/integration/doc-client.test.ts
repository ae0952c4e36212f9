/**
 * A client written only from docs/protocol.md: plain `ws` and @msgpack/msgpack (not msgpackr, not
 * our codec, not our SDK). It joins, sends and receives, in msgpack and in JSON.
 */
import WebSocket from 'ws';
import { decode, encode } from '@msgpack/msgpack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ mode: 'embedded', gateways: 1, roomServices: 1 });
  await cluster.createRoom('docs');
});

afterAll(async () => { await cluster?.stop(); });

/** What the document says a client does: open /ws with ?token= and a subprotocol, read one map per frame. */
class DocClient {
  readonly received: Array<Record<string, any>> = [];
  private listeners: Array<() => void> = [];

  constructor(private readonly ws: WebSocket, private readonly json: boolean) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      // The document: msgpack binary frames on roomcast.v1.msgpack, JSON text frames on roomcast.v1.json.
      expect(isBinary).toBe(!json);
      this.received.push((json ? JSON.parse(data.toString('utf8')) : decode(data)) as Record<string, any>);
      for (const listener of this.listeners) listener();
    });
  }

  static open(url: string, token: string, json: boolean): Promise<DocClient> {
    const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`, json ? 'roomcast.v1.json' : 'roomcast.v1.msgpack');
    return new Promise((resolve, reject) => {
      ws.once('open', () => { expect(ws.protocol).toBe(json ? 'roomcast.v1.json' : 'roomcast.v1.msgpack'); resolve(new DocClient(ws, json)); });
      ws.once('error', reject);
    });
  }

  send(frame: Record<string, unknown>): void {
    this.ws.send(this.json ? JSON.stringify(frame) : encode(frame));
  }

  waitFor(match: (frame: Record<string, any>) => boolean): Promise<Record<string, any>> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.received.find(match);
        if (!found) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== check);
        resolve(found);
      };
      const timer = setTimeout(() => reject(new Error(`no matching frame; got ${JSON.stringify(this.received).slice(0, 500)}`)), 10_000);
      this.listeners.push(check);
      check();
    });
  }

  close(): void { this.ws.close(); }
}

describe.each([{ format: 'msgpack', json: false }, { format: 'JSON', json: true }])('a client built from the document ($format)', ({ json }) => {
  it('is welcomed, joins, sends, is acknowledged and receives its message', async () => {
    const uid = json ? 'doc-json' : 'doc-msgpack';
    const client = await DocClient.open(cluster.gateways[0]!.url, await cluster.token(uid), json);
    const welcome = await client.waitFor((f) => f.t === 'welcome');
    expect(welcome).toMatchObject({ uid, role: 'viewer', protocol: 1 });
    expect(welcome.limits.maxTextLength).toBe(500);

    client.send({ t: 'join', room: 'docs' });
    const joined = await client.waitFor((f) => f.t === 'joined');
    expect(joined.room).toBe('docs');
    expect(Array.isArray(joined.msgs)).toBe(true);

    client.send({ t: 'send', room: 'docs', id: `${uid}-1`, text: 'hello from the docs' });
    const ack = await client.waitFor((f) => f.t === 'ack');
    expect(ack).toMatchObject({ id: `${uid}-1`, room: 'docs' });
    expect(ack.seq).toBeGreaterThan(joined.seq);

    const batch = await client.waitFor((f) => f.t === 'messages' && f.msgs.some((m: any) => m.cid === `${uid}-1`));
    const message = batch.msgs.find((m: any) => m.cid === `${uid}-1`);
    expect(message).toMatchObject({ seq: ack.seq, uid, kind: 'chat', prio: 0, text: 'hello from the docs' });
    expect(typeof message.ts).toBe('number');

    client.send({ t: 'history', room: 'docs', limit: 10 });
    const history = await client.waitFor((f) => f.t === 'history');
    expect(history.msgs.map((m: any) => m.seq)).toContain(ack.seq);

    client.send({ t: 'ping', ts: 42 });
    expect(await client.waitFor((f) => f.t === 'pong')).toMatchObject({ ts: 42 });
    client.close();
  });
});
