/**
 * How gateways serve the pages on their WebSocket port: the built files with their content types,
 * cache headers and CSP; a clear 404 where the build is missing (the WebSocket still works); and the
 * all-in-one's dev sign-in, off unless set and refused outside all-in-one, used from the viewer page.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { loadConfig } from '../../src/shared/config.js';
import { PAGES_CSP } from '../../src/gateway/static-pages.js';
import { startCluster, type Cluster, type GatewayHandle } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';
import { launchChromium, newPage, PHONE, rowsOf, waitForRow, waitForState } from '../helpers/browser.js';

let cluster: Cluster;
let unbuilt: GatewayHandle;
let browser: Browser;
const httpOf = (handle: GatewayHandle) => handle.url.replace(/^ws/, 'http').replace(/\/ws$/, '');

beforeAll(async () => {
  [cluster, browser] = await Promise.all([
    startCluster({ mode: 'embedded', env: { ROOMCAST_DEV_SIGN_IN: 'true' } }),
    launchChromium(),
  ]);
  unbuilt = await cluster.addGateway('gw-unbuilt', { ROOMCAST_PAGES_DIR: '/nonexistent/roomcast-pages', ROOMCAST_DEV_SIGN_IN: 'false' });
  await cluster.createRoom('lobby');
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
});

it('serves the viewer page and the console with their assets, content types, cache headers and CSP', async () => {
  const base = httpOf(cluster.gateways[0]!);
  for (const path of ['/', '/console']) {
    const response = await fetch(`${base}${path}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(response.headers.get('content-security-policy')).toBe("default-src 'self'; connect-src 'self' ws: wss:");
    const html = await response.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    for (const asset of html.match(/\/assets\/[\w.-]+\.(?:js|css)/g) ?? []) {
      const file = await fetch(`${base}${asset}`);
      expect(file.status).toBe(200);
      expect(file.headers.get('content-type')).toBe(asset.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8');
      expect(file.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      await file.arrayBuffer();
    }
  }
  // The budget: at most 100 KB gzipped per page, everything it loads included.
  for (const path of ['/', '/console']) {
    const html = await (await fetch(`${base}${path}`)).text();
    let gzipped = gzipSync(html).byteLength;
    for (const asset of html.match(/\/assets\/[\w.-]+\.(?:js|css|svg)/g) ?? []) {
      gzipped += gzipSync(Buffer.from(await (await fetch(`${base}${asset}`)).arrayBuffer())).byteLength;
    }
    // Modules a page's script imports (the shared chunk) are named in it.
    for (const script of html.match(/\/assets\/[\w.-]+\.js/g) ?? []) {
      const code = await (await fetch(`${base}${script}`)).text();
      for (const imported of code.match(/\.\/[\w.-]+\.js/g) ?? []) {
        gzipped += gzipSync(Buffer.from(await (await fetch(`${base}/assets/${imported.slice(2)}`)).arrayBuffer())).byteLength;
      }
    }
    expect(gzipped, `${path}: ${gzipped} bytes gzipped`).toBeLessThanOrEqual(100 * 1024);
  }
  expect(PAGES_CSP).toBe("default-src 'self'; connect-src 'self' ws: wss:");
  const missing = await fetch(`${base}/assets/nothing-here.js`);
  expect(missing.status).toBe(404);
  expect(await missing.text()).toBe('not found\n');
});

it('answers 404 with what to do where the pages are not built, and keeps serving WebSockets', async () => {
  const response = await fetch(`${httpOf(unbuilt)}/`);
  expect(response.status).toBe(404);
  expect(await response.text()).toContain('npm run build');
  const client = await WsTestClient.connect(unbuilt.url, { token: await cluster.token('still-works') });
  expect(await client.next((frame) => frame.t === 'welcome')).toMatchObject({ uid: 'still-works' });
  client.close();
});

it('signs dev viewer tokens only where the dev sign-in is on, and only in all-in-one', async () => {
  const signed = await fetch(`${httpOf(cluster.gateways[0]!)}/dev/token?uid=amy`);
  expect(signed.status).toBe(200);
  expect(signed.headers.get('cache-control')).toBe('no-store');
  const { token } = (await signed.json()) as { token: string };
  const client = await WsTestClient.connect(cluster.gateways[0]!.url, { token });
  expect(await client.next((frame) => frame.t === 'welcome')).toMatchObject({ uid: 'amy', role: 'viewer' });
  client.close();

  expect((await fetch(`${httpOf(cluster.gateways[0]!)}/dev/token?uid=${encodeURIComponent('not a uid')}`)).status).toBe(400);
  expect((await fetch(`${httpOf(unbuilt)}/dev/token?uid=amy`)).status).toBe(404);
  expect(await (await fetch(`${httpOf(cluster.gateways[0]!)}/dev/sign-in`)).json()).toEqual({ enabled: true });
  expect(await (await fetch(`${httpOf(unbuilt)}/dev/sign-in`)).json()).toEqual({ enabled: false });
  const env = { ROOMCAST_NATS_URL: 'nats://127.0.0.1:1', ROOMCAST_REDIS_URL: 'redis://127.0.0.1:1', ROOMCAST_JWT_SECRET: 'x'.repeat(32) };
  expect(loadConfig('gateway', env).devSignIn).toBe(false);
  expect(() => loadConfig('gateway', { ...env, ROOMCAST_DEV_SIGN_IN: 'true' })).toThrow(/ROOMCAST_DEV_SIGN_IN is for all-in-one only/);
});

it('offers the dev sign-in on a phone-sized viewer page without a token, and chats with the name chosen', async () => {
  const { page, context, watch } = await newPage(browser, PHONE);
  await page.goto(`${httpOf(cluster.gateways[0]!)}/?room=lobby`);
  await page.waitForSelector('#signin:not([hidden])');
  // Keyboard only: the name field has the focus, Enter submits.
  await page.keyboard.type('kim');
  await page.keyboard.press('Enter');
  await waitForState(page, 'live');
  expect(page.url()).toContain('#token=');
  await page.focus('#text');
  await page.keyboard.type('hi from a phone');
  await page.keyboard.press('Enter');
  await waitForRow(page, 'hi from a phone');
  expect((await rowsOf(page)).at(-1)).toEqual([expect.any(Number), 'chat', 'kim', 'hi from a phone']);
  // Nothing overflows the phone's width.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
  expect(await page.getAttribute('#messages', 'aria-live')).toBe('polite');
  expect(watch.errors).toEqual([]);
  await context.close();
});

it('tells a viewer without a token what to do where there is no dev sign-in', async () => {
  const plain = await cluster.addGateway('gw-plain', { ROOMCAST_DEV_SIGN_IN: 'false' });
  const { page, context, watch } = await newPage(browser);
  await page.goto(`${httpOf(plain)}/?room=lobby`);
  await page.waitForSelector('#no-token:not([hidden])');
  expect(await page.textContent('#no-token')).toContain('#token=');
  expect(await page.isVisible('#send')).toBe(false);
  expect(watch.errors).toEqual([]);
  await context.close();
});

it('takes its token and delay from the page that embeds it (postMessage), and says when it is ready', async () => {
  const base = httpOf(cluster.gateways[0]!);
  const token = await cluster.token('embedded-eve');
  const { page, context, watch } = await newPage(browser);
  // A host page on the gateway's host (served by the test, so it may carry its own script).
  await page.route(`${base}/host-test`, (route) => route.fulfill({
    contentType: 'text/html',
    body: `<!doctype html><title>host</title><iframe id="chat" src="/?room=lobby" style="width:400px;height:600px"></iframe>
      <script>
        window.readyMessages = [];
        addEventListener('message', (event) => {
          const chat = document.getElementById('chat').contentWindow;
          if (event.source !== chat || event.data?.type !== 'roomcast:ready') return;
          window.readyMessages.push(event.data);
          chat.postMessage({ type: 'roomcast:token', token: ${JSON.stringify(token)} }, '*');
          chat.postMessage({ type: 'roomcast:delay', delayMs: 1500 }, '*');
        });
      </script>`,
  }));
  await page.goto(`${base}/host-test`);
  const frame = page.frameLocator('#chat');
  await frame.locator('#state[data-state="live"]').waitFor();
  expect(await page.evaluate(() => (window as unknown as { readyMessages: unknown[] }).readyMessages)).toEqual([{ type: 'roomcast:ready', room: 'lobby' }]);
  expect(await frame.locator('#delay').inputValue()).toBe('1.5');
  await frame.locator('#text').fill('hello from an iframe');
  await frame.locator('#text').press('Enter');
  await frame.locator('#messages li.msg .text', { hasText: 'hello from an iframe' }).waitFor();
  expect(await frame.locator('#messages li.msg', { hasText: 'hello from an iframe' }).locator('.uid').textContent()).toBe('embedded-eve');
  expect(watch.errors).toEqual([]);
  await context.close();
});

it('lays the console out on a phone without sideways scrolling', async () => {
  const { page, context, watch } = await newPage(browser, PHONE);
  const token = await cluster.token('phone-star', 'streamer', { rooms: ['lobby'] });
  await page.goto(`${httpOf(cluster.gateways[0]!)}/console?room=lobby#token=${token}`);
  await waitForState(page, 'live');
  await page.waitForSelector('#slow-mode');
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
  expect(await page.isVisible('#messages')).toBe(true);
  // The chat keeps a good part of the screen beside the controls (it once collapsed to nothing).
  const chatHeight = await page.evaluate(() => document.getElementById('scroller')!.getBoundingClientRect().height);
  expect(chatHeight).toBeGreaterThan(PHONE.height / 4);
  expect(watch.errors).toEqual([]);
  await context.close();
});
