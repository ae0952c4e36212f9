/**
 * Screenshots of the viewer page and the streamer console at phone (375×667) and desktop size, for
 * the README: `npm run build && node bench/pages/screenshots.mjs` writes docs/*.png.
 */
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { RoomcastClient } from '../../dist/src/client/roomcast-client.js';
import { launchChromium, startAllInOne } from './all-in-one.mjs';

const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));
const SIZES = { phone: { width: 375, height: 667 }, desktop: { width: 1280, height: 800 } };

const service = await startAllInOne({ ROOMCAST_SEND_RATE_PER_SEC: '100', ROOMCAST_SEND_BURST: '100' });
const browser = await launchChromium();
const clients = [];
try {
  const tokenOf = (url) => new URL(url).hash.replace('#token=', '');
  const streamer = new RoomcastClient({ url: service.wsUrl, token: tokenOf(service.consoleUrl), WebSocket });
  clients.push(streamer);
  await streamer.connect();
  await streamer.join('lobby');
  const viewer = async (uid) => {
    const { token } = await (await fetch(`${service.wsUrl.replace(/^ws/, 'http').replace(/\/ws$/, '')}/dev/token?uid=${uid}`)).json();
    const client = new RoomcastClient({ url: service.wsUrl, token, WebSocket });
    clients.push(client);
    await client.connect();
    await client.join('lobby');
    return client;
  };
  const [ana, ben, chloe] = await Promise.all(['ana', 'ben', 'chloe'].map(viewer));
  await streamer.send('lobby', 'Welcome in! Tonight: the speedrun attempt, any% glitchless.', { kind: 'streamer' });
  await ana.send('lobby', 'hi everyone o/');
  await ben.send('lobby', 'first time catching this live');
  await service.api('POST', '/v1/rooms/lobby/messages', { kind: 'gift', uid: 'chloe', text: 'chloe sent a rocket', data: { gift: 'rocket', count: 3 } });
  await chloe.send('lobby', 'lets gooo');
  await ana.send('lobby', 'the new route skips the whole water level?');
  const pinnedAck = await ben.send('lobby', 'reminder: be nice in chat, spoilers behind a delay');
  await service.api('POST', '/v1/rooms/lobby/messages', { kind: 'system', text: 'Stream starts in 2 minutes' });
  await chloe.send('lobby', '<img src=x onerror=alert(1)> is just text here');
  await ben.send('lobby', 'gg');
  await streamer.pin('lobby', pinnedAck.seq);

  for (const [name, size] of Object.entries(SIZES)) {
    const context = await browser.newContext({ viewport: size, deviceScaleFactor: name === 'phone' ? 2 : 1 });
    const page = await context.newPage();
    await page.goto(service.viewerUrl);
    await page.waitForSelector('#state[data-state="live"]');
    await page.waitForSelector('#pinned:not([hidden])');
    await page.waitForFunction(() => document.querySelectorAll('#messages li.msg').length >= 10);
    await page.fill('#text', 'see you at the boss fight');
    await page.screenshot({ path: `${DOCS}viewer-${name}.png` });
    await page.goto(service.consoleUrl);
    await page.waitForSelector('#state[data-state="live"]');
    await page.waitForFunction(() => document.getElementById('stat-seq')?.textContent !== '–');
    await page.waitForFunction(() => document.querySelectorAll('#messages li.msg').length >= 10);
    await page.screenshot({ path: `${DOCS}console-${name}.png` });
    await context.close();
  }
  console.log(`wrote ${Object.keys(SIZES).map((name) => `docs/viewer-${name}.png docs/console-${name}.png`).join(' ')}`);
} finally {
  for (const client of clients) client.close();
  await browser.close();
  await service.stop();
}
