/**
 * What a gateway refuses or closes at the connection level, as docs/protocol.md sections 1 and 6.11
 * say: the per-address cap (HTTP 429), the Origin allow-list (HTTP 403), and the idle close (4008).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';

let cluster: Cluster;
let url: string;

beforeAll(async () => {
  cluster = await startCluster({
    mode: 'embedded', gateways: 1,
    env: {
      ROOMCAST_MAX_CONNECTIONS_PER_IP: '3', ROOMCAST_ALLOWED_ORIGINS: 'https://shop.example,https://tv.example', ROOMCAST_IDLE_TIMEOUT_S: '8',
      ROOMCAST_API_MAX_CONNECTIONS: '2',
    },
  });
  url = cluster.gateways[0]!.url;
});

afterAll(async () => {
  await cluster?.stop();
});

/** The HTTP status of a refused handshake, or 101 when the WebSocket opened (it is then closed). */
function handshakeStatus(headers: Record<string, string>, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(token ? `${url}?token=${encodeURIComponent(token)}` : url, ['roomcast.v1.msgpack'], { headers });
    ws.once('open', () => { ws.close(); resolve(101); });
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.once('error', (error) => { if (ws.readyState !== WebSocket.CLOSED) reject(error); });
  });
}

describe('per-address connection cap', () => {
  it('refuses a connection beyond the cap with HTTP 429, and accepts again once one closes', async () => {
    const held = await Promise.all([0, 1, 2].map(async (i) => WsTestClient.connect(url, { token: await cluster.token(`capped-${i}`) })));
    await Promise.all(held.map((c) => c.next((f) => f.t === 'welcome')));
    expect(await handshakeStatus({}, await cluster.token('capped-3'))).toBe(429);
    held[0]!.close();
    await held[0]!.closed();
    const again = await WsTestClient.connect(url, { token: await cluster.token('capped-4') });
    expect((await again.next((f) => f.t === 'welcome')).uid).toBe('capped-4');
    for (const c of [...held.slice(1), again]) c.close();
    await Promise.all([...held.slice(1), again].map((c) => c.closed()));
  });
});

describe('HTTP API connection cap', () => {
  /** A raw connection to the API; resolves with it once open, and `ended` when the server closes it. */
  function openApiSocket(): Promise<{ socket: Socket; ended: Promise<string> }> {
    const { port } = new URL(cluster.apiUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        let received = '';
        socket.setEncoding('utf8').on('data', (chunk: string) => { received += chunk; });
        resolve({ socket, ended: new Promise((done) => socket.once('close', () => done(received))) });
      });
      socket.once('error', reject);
    });
  }

  it('closes connections beyond ROOMCAST_API_MAX_CONNECTIONS at once, and serves the ones it holds', async () => {
    const held = [await openApiSocket(), await openApiSocket()];
    const extra = await openApiSocket();
    expect(await extra.ended).toBe('');
    held[0]!.socket.end('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(await held[0]!.ended).toMatch(/^HTTP\/1\.1 200/);
    held[1]!.socket.destroy();
  });
});

describe('Origin allow-list', () => {
  it('lets allowed origins, pages of the gateway itself and clients without Origin connect, and refuses others with 403', async () => {
    const host = new URL(url).host;
    expect(await handshakeStatus({ Origin: 'https://evil.example' })).toBe(403);
    expect(await handshakeStatus({ Origin: 'https://shop.example' })).toBe(101);
    expect(await handshakeStatus({ Origin: `http://${host}` })).toBe(101);
    expect(await handshakeStatus({})).toBe(101);
  });
});

describe('idle connections', () => {
  it('pings a silent client; one that never answers gets idle_timeout and 4008, one that answers stays', async () => {
    const token = await cluster.token('silent');
    const silent = new WebSocket(`${url}?token=${encodeURIComponent(token)}`, ['roomcast.v1.json'], { autoPong: false });
    const silentFrames: Array<Record<string, unknown>> = [];
    silent.on('message', (data) => silentFrames.push(JSON.parse(String(data))));
    let silentPings = 0;
    silent.on('ping', () => { silentPings++; });
    const silentClosed = new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));

    const answering = await WsTestClient.connect(url, { token: await cluster.token('answering') });
    let answeredPings = 0;
    answering.ws.on('ping', () => { answeredPings++; });

    expect(await silentClosed).toBe(4008);
    expect(silentPings).toBeGreaterThan(0);
    expect(silentFrames.at(-1)).toMatchObject({ t: 'error', code: 'idle_timeout' });
    expect(answeredPings).toBeGreaterThan(0);
    expect(answering.closeCode).toBeNull();
    answering.close();
  }, 30_000);
});
