/**
 * The streamer console in Chromium, and what its actions do to viewer pages, against a real
 * two-gateway cluster: pin, delete, mute, ban, slow mode, announcements, live figures, and controls
 * that follow the token. Every wait is for an event on a page; nothing sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { Role } from '../../src/shared/protocol/frames.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
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

async function open(path: '/' | '/console', room: string, uid: string, role: Role = 'viewer', options: { gateway?: number; rooms?: string[] } = {}) {
  const opened = await newPage(browser);
  const token = await cluster.token(uid, role, role === 'viewer' || role === 'admin' ? {} : { rooms: options.rooms ?? [room] });
  await opened.page.goto(pageUrl(cluster.gateways[options.gateway ?? 0]!.url, path, { room, token }));
  await waitForState(opened.page, 'live');
  return opened;
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
  await waitForRow(page, text);
}

async function pinnedText(page: Page): Promise<string | null> {
  return page.evaluate(() => {
    const banner = document.getElementById('pinned')!;
    return banner.hidden ? null : document.getElementById('pinned-text')!.textContent;
  });
}

function row(page: Page, text: string) {
  return page.locator('#messages li.msg', { has: page.locator('.text', { hasText: text }) });
}

describe('streamer console', () => {
  it('pins a message: every viewer shows the banner, also one who joins later; unpin takes it down', async () => {
    await cluster.createRoom('pins');
    const streamer = await open('/console', 'pins', 'star', 'streamer');
    const early = await open('/', 'pins', 'ed', 'viewer', { gateway: 1 });
    await say(early.page, 'pin me please');
    await waitForRow(streamer.page, 'pin me please');
    await row(streamer.page, 'pin me please').locator('button[data-action="pin"]').click();

    for (const page of [streamer.page, early.page]) await page.waitForFunction(() => !document.getElementById('pinned')!.hidden);
    expect(await pinnedText(early.page)).toBe('pin me please');
    expect(await early.page.textContent('#pinned-uid')).toBe('ed');
    const late = await open('/', 'pins', 'liz', 'viewer', { gateway: 0 });
    await late.page.waitForFunction(() => !document.getElementById('pinned')!.hidden);
    expect(await pinnedText(late.page)).toBe('pin me please');
    // The pin message itself is no chat row.
    expect((await rowsOf(late.page)).map(([, kind]) => kind)).toEqual(['chat']);

    await streamer.page.click('#unpin');
    for (const page of [early.page, late.page, streamer.page]) await page.waitForFunction(() => document.getElementById('pinned')!.hidden);
    await Promise.all([streamer, early, late].map(({ context }) => context.close()));
  });

  it('deletes a message: it disappears for every viewer', async () => {
    await cluster.createRoom('deletes');
    const streamer = await open('/console', 'deletes', 'star', 'streamer');
    const viewer = await open('/', 'deletes', 'val', 'viewer', { gateway: 1 });
    await say(viewer.page, 'something regrettable');
    await say(viewer.page, 'something fine');
    await waitForRow(streamer.page, 'something fine');
    await row(streamer.page, 'something regrettable').locator('button[data-action="delete"]').click();
    await viewer.page.waitForFunction(() => ![...document.querySelectorAll('#messages .text')].some((node) => node.textContent === 'something regrettable'));
    await streamer.page.waitForFunction(() => ![...document.querySelectorAll('#messages .text')].some((node) => node.textContent === 'something regrettable'));
    expect((await rowsOf(viewer.page)).map(([, , , text]) => text)).toEqual(['something fine']);
    // A viewer who joins later does not see it either.
    const later = await open('/', 'deletes', 'lou');
    await waitForRow(later.page, 'something fine');
    expect((await rowsOf(later.page)).map(([, , , text]) => text)).toEqual(['something fine']);
    await Promise.all([streamer, viewer, later].map(({ context }) => context.close()));
  });

  it('mutes a viewer, whose next send says "muted"; the muted list undoes it', async () => {
    await cluster.createRoom('mutes');
    const streamer = await open('/console', 'mutes', 'star', 'streamer');
    const viewer = await open('/', 'mutes', 'noisy', 'viewer', { gateway: 1 });
    await say(viewer.page, 'LOUD NOISES');
    await waitForRow(streamer.page, 'LOUD NOISES');
    await row(streamer.page, 'LOUD NOISES').locator('button[data-action="mute"]').click();
    await streamer.page.waitForSelector('#muted button[data-uid="noisy"]');
    // The viewer hears of it (a notice), and a send is refused in words.
    await viewer.page.waitForSelector('#notice:not([hidden])');
    await viewer.page.fill('#text', 'am I muted?');
    await viewer.page.press('#text', 'Enter');
    await viewer.page.waitForFunction(() => document.getElementById('send-status')!.textContent!.includes('muted'));
    expect(await viewer.page.inputValue('#text')).toBe('am I muted?');

    await streamer.page.click('#muted button[data-uid="noisy"]');
    await streamer.page.waitForFunction(() => document.querySelector('#muted button') === null);
    await viewer.page.press('#text', 'Enter');
    await waitForRow(viewer.page, 'am I muted?');
    await Promise.all([streamer, viewer].map(({ context }) => context.close()));
  });

  it('bans a viewer, who leaves the room; the banned list undoes it', async () => {
    await cluster.createRoom('bans');
    const streamer = await open('/console', 'bans', 'star', 'moderator');
    const viewer = await open('/', 'bans', 'troll', 'viewer', { gateway: 1 });
    await say(viewer.page, 'bait');
    await waitForRow(streamer.page, 'bait');
    await row(streamer.page, 'bait').locator('button[data-action="ban"]').click();
    await viewer.page.waitForSelector('#state[data-state="closed"]');
    expect(await viewer.page.textContent('#state')).toBe('Banned');
    await streamer.page.waitForSelector('#banned button[data-uid="troll"]');
    await streamer.page.click('#banned button[data-uid="troll"]');
    await streamer.page.waitForFunction(() => document.querySelector('#banned button') === null);
    const back = await open('/', 'bans', 'troll', 'viewer');
    await say(back.page, 'sorry');
    await Promise.all([streamer, viewer, back].map(({ context }) => context.close()));
  });

  it('turns slow mode on: viewers are told, and a second send says how long to wait', async () => {
    await cluster.createRoom('slow');
    const streamer = await open('/console', 'slow', 'star', 'streamer');
    const viewer = await open('/', 'slow', 'speedy', 'viewer', { gateway: 1 });
    await streamer.page.check('#slow-on');
    await streamer.page.fill('#slow-seconds', '600');
    await streamer.page.click('#slow-mode button[type="submit"]');
    await viewer.page.waitForFunction(() => document.getElementById('notice')!.textContent!.toLowerCase().includes('slow mode'));
    await streamer.page.waitForFunction(() => document.getElementById('slow-state')!.textContent!.includes('10 minutes'));
    await say(viewer.page, 'one');
    await viewer.page.waitForFunction(() => document.getElementById('send-status')!.textContent === '');
    await viewer.page.fill('#text', 'two');
    await viewer.page.press('#text', 'Enter');
    await viewer.page.waitForFunction(() => /Slow mode is on: you can send again in \d+ (minutes|seconds)/.test(document.getElementById('send-status')!.textContent!));
    await streamer.page.uncheck('#slow-on');
    await streamer.page.click('#slow-mode button[type="submit"]');
    await viewer.page.waitForFunction(() => document.getElementById('notice')!.textContent!.toLowerCase().includes('off'));
    await viewer.page.press('#text', 'Enter');
    await waitForRow(viewer.page, 'two');
    await Promise.all([streamer, viewer].map(({ context }) => context.close()));
  });

  it('publishes an announcement that viewers see set apart, and shows the room\'s live figures', async () => {
    await cluster.createRoom('figures');
    const streamer = await open('/console', 'figures', 'star', 'streamer');
    const viewer = await open('/', 'figures', 'vic', 'viewer', { gateway: 1 });
    await streamer.page.fill('#announce-text', 'Giveaway at the top of the hour');
    await streamer.page.click('#announce button[type="submit"]');
    await waitForRow(viewer.page, 'Giveaway at the top of the hour');
    expect(await row(viewer.page, 'Giveaway at the top of the hour').getAttribute('data-kind')).toBe('streamer');
    await say(viewer.page, 'nice');
    await streamer.page.waitForFunction(() => document.getElementById('stat-seq')!.textContent === '2', undefined, { timeout: 15_000 });
    await streamer.page.waitForFunction(() => document.getElementById('stat-viewers')!.textContent === '2', undefined, { timeout: 15_000 });
    expect(Number(await streamer.page.textContent('#stat-delivered'))).toBeGreaterThanOrEqual(2);
    expect(await streamer.page.textContent('#stat-sampled')).toBe('0');
    await Promise.all([streamer, viewer].map(({ context }) => context.close()));
  });

  it('shows moderation controls only to a token that may moderate the room', async () => {
    await cluster.createRoom('perms');
    await cluster.createRoom('elsewhere');
    const admin = await open('/console', 'perms', 'root', 'admin');
    expect(await admin.page.isVisible('#slow-mode')).toBe(true);
    expect(await admin.page.$$eval('#announce-kind option', (options) => options.map((option) => option.textContent))).toEqual(['system', 'streamer', 'moderator']);
    const other = await open('/console', 'perms', 'guest-star', 'streamer', { rooms: ['elsewhere'] });
    const viewer = await open('/console', 'perms', 'just-watching', 'viewer');
    expect((await cluster.api('POST', '/v1/rooms/perms/messages', { kind: 'system', text: 'hello' })).status).toBe(201);
    await waitForRow(admin.page, 'hello');
    for (const { page } of [other, viewer]) {
      await waitForRow(page, 'hello');
      expect(await page.isVisible('#may-not')).toBe(true);
      expect(await page.isVisible('#slow-mode')).toBe(false);
      expect(await page.locator('#messages button').count()).toBe(0);
    }
    expect(await admin.page.locator('#messages button[data-action="delete"]').count()).toBe(1);
    await Promise.all([admin, other, viewer].map(({ context }) => context.close()));
  });
});
