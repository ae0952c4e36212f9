/**
 * The SDK as browsers run it: src/client bundled by Vite for the browser (no Node built-ins), loaded
 * into a blank Chromium page, and driven there against a real gateway with the browser's own
 * WebSocket: connect, join, send, history, the delay, moderation, room stats and a reconnect.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { launchChromium, newPage } from '../helpers/browser.js';

const SDK_ENTRY = fileURLToPath(new URL('../../src/client/roomcast-client.ts', import.meta.url));

let cluster: Cluster;
let browser: Browser;
let sdkBundle: string;
let page: Page;
let proxy: TcpProxy;

beforeAll(async () => {
  const outDir = mkdtempSync(join(tmpdir(), 'roomcast-sdk-'));
  try {
    await build({
      configFile: false, logLevel: 'silent',
      build: { outDir, lib: { entry: SDK_ENTRY, name: 'Roomcast', formats: ['iife'], fileName: () => 'sdk.js' }, minify: true },
    });
    sdkBundle = readFileSync(join(outDir, 'sdk.js'), 'utf8');
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
  [cluster, browser] = await Promise.all([startCluster({ mode: 'distributed', gateways: 1 }), launchChromium()]);
  await cluster.createRoom('sdk');
  proxy = await startTcpProxy(cluster.gateways[0]!.gateway.wsPort);
  // A page of the gateway's origin (Chromium's local network access checks keep about:blank from
  // opening sockets to the loopback address): any path there; the bundle is added as a script, past
  // the gateway's CSP, which allows no inline script.
  ({ page } = await newPage(browser, undefined, { bypassCSP: true }));
  await page.goto(`${cluster.gateways[0]!.url.replace(/^ws/, 'http').replace(/\/ws$/, '')}/sdk-test`);
  await page.addScriptTag({ content: sdkBundle });
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await browser?.close();
  await cluster?.stop();
});

it('bundles for browsers without Node built-ins', () => {
  expect(sdkBundle).not.toMatch(/\brequire\(["']node:|from ?["']node:/);
  expect(sdkBundle.length).toBeGreaterThan(1000);
});

it('connects, joins, sends, reads history and moderates from Chromium with the browser WebSocket', async () => {
  const streamerToken = await cluster.token('sdk-star', 'streamer', { rooms: ['sdk'] });
  const viewerToken = await cluster.token('sdk-viewer');
  const result = await page.evaluate(async ({ url, streamerToken, viewerToken }) => {
    const { RoomcastClient } = (window as unknown as { Roomcast: typeof import('../../src/client/roomcast-client.js') }).Roomcast;
    const streamer = new RoomcastClient({ url, token: streamerToken });
    const viewer = new RoomcastClient({ url, token: viewerToken, format: 'json' });
    const seen: Array<[number, string, string]> = [];
    const pins: Array<string | null> = [];
    viewer.on('message', (_room, m) => seen.push([m.seq, m.kind, m.text]));
    viewer.on('pinned', (_room, m) => pins.push(m ? m.text : null));
    const welcome = await streamer.connect();
    await viewer.connect();
    await streamer.join('sdk');
    await viewer.join('sdk');
    const ack = await viewer.send('sdk', 'from a browser');
    await streamer.send('sdk', 'announcement', { kind: 'streamer' });
    await streamer.pin('sdk', ack.seq);
    const muted = await streamer.mute('sdk', 'sdk-viewer', 60_000);
    const refused = await viewer.send('sdk', 'muted now').then(() => 'sent', (error: { code: string }) => error.code);
    const lists = await streamer.moderationLists('sdk');
    await streamer.unmute('sdk', 'sdk-viewer');
    const stats = await streamer.roomStats('sdk');
    const history = await viewer.history('sdk', { limit: 10 });
    const forbidden = await viewer.deleteMessage('sdk', ack.seq).then(() => 'done', (error: { code: string }) => error.code);
    await new Promise<void>((resolve) => {
      const wait = () => (pins.some((pin) => pin !== null) ? resolve() : setTimeout(wait, 10));
      wait();
    });
    streamer.close();
    viewer.close();
    return {
      role: welcome.role, ackSeq: ack.seq, muted: muted.action, refused, mutedList: lists.muted.map((entry) => entry.uid),
      statsSeq: stats.seq, historyKinds: history.msgs.map((m) => m.kind), forbidden, pins, seen,
    };
  }, { url: cluster.gateways[0]!.url, streamerToken, viewerToken });

  expect(result.role).toBe('streamer');
  expect(result.ackSeq).toBe(1);
  expect(result.muted).toBe('mute');
  expect(result.refused).toBe('muted');
  expect(result.mutedList).toEqual(['sdk-viewer']);
  expect(result.statsSeq).toBeGreaterThanOrEqual(3);
  expect(result.historyKinds).toEqual(['chat', 'streamer', 'pin']);
  expect(result.forbidden).toBe('forbidden');
  // joined says nothing is pinned, then the pin arrives.
  expect(result.pins).toEqual([null, 'from a browser']);
  expect(result.seen.slice(0, 2)).toEqual([[1, 'chat', 'from a browser'], [2, 'streamer', 'announcement']]);
});

it('holds messages back by delayMs and recovers a dropped connection without duplicates', async () => {
  const token = await cluster.token('sdk-delay');
  await page.evaluate(async ({ url, token }) => {
    const { RoomcastClient } = (window as unknown as { Roomcast: typeof import('../../src/client/roomcast-client.js') }).Roomcast;
    const client = new RoomcastClient({ url, token, delayMs: 1500, reconnect: { baseMs: 50, maxMs: 200 } });
    const state = { early: [] as string[], texts: [] as string[], seqs: [] as number[], states: [] as string[] };
    client.on('message', (_room, m) => {
      if (Date.now() < m.ts + client.delayMs) state.early.push(m.text);
      state.texts.push(m.text);
      state.seqs.push(m.seq);
    });
    client.on('reconnecting', () => state.states.push('reconnecting'));
    client.on('connected', () => state.states.push('connected'));
    (window as unknown as { delayed: typeof state }).delayed = state;
    await client.connect();
    await client.join('sdk');
  }, { url: `ws://127.0.0.1:${proxy.port}/ws`, token });

  proxy.cut();
  await page.waitForFunction(() => (window as unknown as { delayed: { states: string[] } }).delayed.states.includes('reconnecting'));
  for (const text of ['while away 1', 'while away 2']) {
    expect((await cluster.api('POST', '/v1/rooms/sdk/messages', { kind: 'system', text })).status).toBe(201);
  }
  proxy.restore();
  await page.waitForFunction(() => (window as unknown as { delayed: { texts: string[] } }).delayed.texts.includes('while away 2'), undefined, { timeout: 20_000 });
  const state = await page.evaluate(() => (window as unknown as { delayed: { early: string[]; texts: string[]; seqs: number[] } }).delayed);
  expect(state.early).toEqual([]);
  expect(state.texts.slice(-2)).toEqual(['while away 1', 'while away 2']);
  expect(state.seqs).toEqual([...new Set(state.seqs)].sort((a, b) => a - b));
});
