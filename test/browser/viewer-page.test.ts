/**
 * The viewer page in Chromium against a real two-gateway cluster (nats-server, redis-server, a room
 * service): what a viewer sees, sends and recovers, checked in the DOM. Every wait is for an event
 * on the page; nothing sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { launchChromium, newPage, pageUrl, rowsOf, waitForRow, waitForState } from '../helpers/browser.js';

let cluster: Cluster;
let browser: Browser;

beforeAll(async () => {
  [cluster, browser] = await Promise.all([
    startCluster({ mode: 'distributed', gateways: 2, env: { ROOMCAST_SEND_RATE_PER_SEC: '50', ROOMCAST_SEND_BURST: '50' } }),
    launchChromium(),
  ]);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
});

async function publish(room: string, kind: 'gift' | 'system', text: string, extra: Record<string, unknown> = {}): Promise<{ seq: number; ts: number }> {
  const response = await cluster.api('POST', `/v1/rooms/${room}/messages`, { kind, text, uid: kind === 'gift' ? 'bob' : 'system', ...extra });
  expect(response.status).toBe(201);
  return response.body as { seq: number; ts: number };
}

async function openViewer(room: string, uid: string, options: { gateway?: number; delay?: number; url?: string } = {}) {
  const opened = await newPage(browser);
  const token = await cluster.token(uid);
  const base = options.url ?? cluster.gateways[options.gateway ?? 0]!.url;
  await opened.page.goto(pageUrl(base, '/', { room, token, ...(options.delay === undefined ? {} : { delay: options.delay }) }));
  await waitForState(opened.page, 'live');
  return opened;
}

async function sendFromPage(page: import('playwright-core').Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

describe('viewer page', () => {
  it('shows a gift published over HTTP, set apart from chat, with its data as text', async () => {
    await cluster.createRoom('gifts');
    const { page, context, watch } = await openViewer('gifts', 'gina');
    await publish('gifts', 'gift', 'carol sent a rocket', { data: { gift: 'rocket', count: 3 } });
    await waitForRow(page, 'carol sent a rocket');
    const gift = page.locator('#messages li.msg', { hasText: 'carol sent a rocket' });
    expect(await gift.getAttribute('class')).toContain('msg--gift');
    expect(await gift.locator('.badge').textContent()).toBe('Gift');
    expect(await gift.locator('.detail').textContent()).toBe('rocket ×3');
    expect(watch.errors).toEqual([]);
    await context.close();
  });

  it('sends a chat message and shows it exactly once, with the counter at the server limit', async () => {
    await cluster.createRoom('sending');
    const { page, context, watch } = await openViewer('sending', 'sam');
    expect(await page.textContent('#counter')).toBe('0 / 500');
    await page.fill('#text', 'hello from the page');
    expect(await page.textContent('#counter')).toBe('19 / 500');
    await page.press('#text', 'Enter');
    await waitForRow(page, 'hello from the page');
    // The ack settles the send; a later message is a barrier for any late duplicate of the first.
    await page.waitForFunction(() => document.querySelector('#send-status')?.textContent === '');
    await publish('sending', 'system', 'barrier');
    await waitForRow(page, 'barrier');
    const rows = await rowsOf(page);
    expect(rows.filter(([, , , text]) => text === 'hello from the page')).toEqual([[1, 'chat', 'sam', 'hello from the page']]);
    expect(await page.locator('#messages li.msg--own').count()).toBe(1);
    expect(await page.inputValue('#text')).toBe('');
    expect(watch.errors).toEqual([]);
    await context.close();
  });

  it('shows two viewers on two gateways the same messages in the same order', async () => {
    await cluster.createRoom('order');
    const a = await openViewer('order', 'ann', { gateway: 0 });
    const b = await openViewer('order', 'ben', { gateway: 1 });
    const sends: Array<Promise<unknown>> = [];
    for (let i = 0; i < 10; i++) {
      sends.push(publish('order', i % 2 === 0 ? 'system' : 'gift', `backend ${i}`));
      await sendFromPage(a.page, `ann ${i}`);
      await sendFromPage(b.page, `ben ${i}`);
    }
    await Promise.all(sends);
    for (const { page } of [a, b]) {
      for (const text of ['ann 9', 'ben 9', 'backend 9']) await waitForRow(page, text);
    }
    await publish('order', 'system', 'the end');
    await Promise.all([waitForRow(a.page, 'the end'), waitForRow(b.page, 'the end')]);
    const rowsA = await rowsOf(a.page);
    const rowsB = await rowsOf(b.page);
    expect(rowsA.length).toBe(31);
    expect(rowsB).toEqual(rowsA);
    const seqs = rowsA.map(([seq]) => seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    await Promise.all([a.context.close(), b.context.close()]);
  });

  it('shows chat text that looks like HTML as text, and runs nothing', async () => {
    await cluster.createRoom('hostile');
    const { page, context, watch } = await openViewer('hostile', 'mallory');
    const payload = '<img src=x onerror=alert(1)>';
    await sendFromPage(page, payload);
    await waitForRow(page, payload);
    await publish('hostile', 'gift', '<script>alert(2)</script>', { data: { gift: '<svg onload=alert(3)>', count: 1, note: '<b>x</b>' } });
    await waitForRow(page, '<script>alert(2)</script>');
    expect(await page.locator('#messages img, #messages script, #messages svg, #messages b').count()).toBe(0);
    const row = page.locator('#messages li.msg', { hasText: payload });
    expect(await row.locator('.text').textContent()).toBe(payload);
    expect(watch.dialogs).toEqual([]);
    expect(watch.errors).toEqual([]);
    await context.close();
  });

  it('recovers when its socket is killed: no duplicate and no missing row, and a send made meanwhile arrives once', async () => {
    await cluster.createRoom('flaky');
    let proxy: TcpProxy | null = null;
    try {
      proxy = await startTcpProxy(cluster.gateways[0]!.gateway.wsPort);
      const { page, context, watch } = await openViewer('flaky', 'fay', { url: `ws://127.0.0.1:${proxy.port}/ws` });
      for (let i = 1; i <= 5; i++) await publish('flaky', 'system', `before ${i}`);
      await waitForRow(page, 'before 5');

      proxy.cut();
      await waitForState(page, 'reconnecting');
      for (let i = 1; i <= 10; i++) await publish('flaky', 'system', `during ${i}`);
      await sendFromPage(page, 'sent while offline');
      await page.waitForFunction(() => document.querySelector('#send-status')?.textContent?.startsWith('Will send'));
      proxy.restore();

      await waitForState(page, 'live', 30_000);
      await waitForRow(page, 'sent while offline');
      await page.waitForFunction(() => document.querySelector('#send-status')?.textContent === '');
      await publish('flaky', 'system', 'after');
      await waitForRow(page, 'after');

      const texts = (await rowsOf(page)).map(([, , , text]) => text);
      expect(texts).toEqual([
        ...Array.from({ length: 5 }, (_, i) => `before ${i + 1}`),
        ...Array.from({ length: 10 }, (_, i) => `during ${i + 1}`),
        'sent while offline', 'after',
      ]);
      const seqs = (await rowsOf(page)).map(([seq]) => seq);
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(watch.errors.filter((error) => !error.includes('WebSocket'))).toEqual([]);
      await context.close();
    } finally {
      await proxy?.close();
    }
  });

  it('with a delay set from the URL, shows a message no earlier than its server ts + delay', async () => {
    await cluster.createRoom('delayed');
    const delayMs = 2500;
    const { page, context } = await openViewer('delayed', 'dee', { delay: delayMs });
    expect(await page.inputValue('#delay')).toBe('2.5');
    // The page records when each row enters the DOM, by the same clock the server stamps ts with.
    await page.evaluate(() => {
      const seen: Record<string, number> = {};
      (window as unknown as { seenAt: Record<string, number> }).seenAt = seen;
      new MutationObserver((records) => {
        const now = Date.now();
        for (const record of records) for (const node of record.addedNodes) {
          const text = (node as Element).querySelector?.('.text')?.textContent;
          if (text && !(text in seen)) seen[text] = now;
        }
      }).observe(document.getElementById('messages')!, { childList: true });
    });
    const first = await publish('delayed', 'system', 'in step 1');
    const second = await publish('delayed', 'gift', 'in step 2');
    await waitForRow(page, 'in step 2', 20_000);
    const seenAt = await page.evaluate(() => (window as unknown as { seenAt: Record<string, number> }).seenAt);
    expect(seenAt['in step 1']).toBeGreaterThanOrEqual(first.ts + delayMs);
    expect(seenAt['in step 2']).toBeGreaterThanOrEqual(second.ts + delayMs);
    expect((await rowsOf(page)).map(([, , , text]) => text)).toEqual(['in step 1', 'in step 2']);
    await context.close();
  });

  it('keeps at most 200 rows and offers older messages through history', async () => {
    await cluster.createRoom('busy');
    for (let i = 1; i <= 260; i++) await publish('busy', 'system', `m${i}`);
    const { page, context } = await openViewer('busy', 'bea');
    // The join brings the latest messages; a live burst follows.
    for (let i = 261; i <= 480; i++) await publish('busy', 'system', `m${i}`);
    await waitForRow(page, 'm480', 30_000);
    const rows = await rowsOf(page);
    expect(rows.length).toBe(200);
    expect(rows.at(-1)![3]).toBe('m480');
    // Scrolled up, new messages wait behind the pill instead of moving the list.
    await page.click('#older');
    await page.waitForFunction(() => Number(document.querySelector('#messages li.msg')?.getAttribute('data-seq')) < 281);
    expect(await page.locator('#messages li.msg').count()).toBeLessThanOrEqual(200);
    await publish('busy', 'system', 'while reading');
    await page.waitForSelector('#pill:not([hidden])');
    await page.click('#pill');
    await waitForRow(page, 'while reading');
    expect(await page.locator('#messages li.msg').count()).toBe(200);
    await context.close();
  });
});
