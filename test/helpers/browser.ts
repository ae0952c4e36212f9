/**
 * Debian's Chromium driven by playwright-core, for the page tests: headless, no sandbox (CI runs as
 * root), nothing fetched from the network by the browser itself, and a fresh profile per launch
 * (playwright makes a temporary user-data dir and deletes it on close).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const PHONE = { width: 375, height: 667 } as const;
export const DESKTOP = { width: 1280, height: 800 } as const;

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`${CHROMIUM_PATH} is missing: install Debian's chromium package (.ci/run does)`);
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

/** What a page did that a test must see: errors, console errors, dialogs (an alert() would be an XSS). */
export interface PageWatch {
  errors: string[];
  dialogs: string[];
}

export async function newPage(
  browser: Browser, viewport: { width: number; height: number } = DESKTOP, options: { bypassCSP?: boolean } = {},
): Promise<{ context: BrowserContext; page: Page; watch: PageWatch }> {
  const context = await browser.newContext({ viewport, ...options });
  const page = await context.newPage();
  const watch: PageWatch = { errors: [], dialogs: [] };
  page.on('pageerror', (error) => watch.errors.push(error.message));
  page.on('console', (message) => { if (message.type() === 'error') watch.errors.push(message.text()); });
  page.on('dialog', (dialog) => { watch.dialogs.push(`${dialog.type()}: ${dialog.message()}`); void dialog.dismiss(); });
  return { context, page, watch };
}

/** The page URL of a gateway (`ws://host:port/ws` → `http://host:port/<path>`). */
export function pageUrl(gatewayWsUrl: string, path: string, params: { room?: string; token?: string; delay?: number } = {}): string {
  const base = gatewayWsUrl.replace(/^ws/, 'http').replace(/\/ws$/, '');
  const query = new URLSearchParams();
  if (params.room) query.set('room', params.room);
  if (params.delay !== undefined) query.set('delay', String(params.delay));
  const search = query.size > 0 ? `?${query.toString()}` : '';
  return `${base}${path}${search}${params.token ? `#token=${params.token}` : ''}`;
}

/** The chat rows a page shows, oldest first, as `[seq, kind, uid, text]`. */
export async function rowsOf(page: Page): Promise<Array<[number, string, string, string]>> {
  return page.$$eval('#messages li.msg', (rows) => rows.map((row) => [
    Number((row as HTMLElement).dataset.seq), (row as HTMLElement).dataset.kind ?? '',
    row.querySelector('.uid')?.textContent ?? '', row.querySelector('.text')?.textContent ?? '',
  ] as [number, string, string, string]));
}

/** Waits until the page shows a row whose text is `text`. */
export async function waitForRow(page: Page, text: string, timeoutMs = 15_000): Promise<void> {
  await page.waitForFunction(
    (wanted) => [...document.querySelectorAll('#messages li.msg .text')].some((node) => node.textContent === wanted),
    text, { timeout: timeoutMs },
  );
}

/** Waits until the connection state badge says `state` (connecting, live, reconnecting, closed). */
export async function waitForState(page: Page, state: string, timeoutMs = 15_000): Promise<void> {
  await page.waitForSelector(`#state[data-state="${state}"]`, { timeout: timeoutMs });
}
