/**
 * The viewer page under a hot room: a Chromium viewer page receives `--rate` chat messages a second
 * (default 100, sent by 10 SDK clients) for `--seconds` (default 60) from a local all-in-one, and the
 * script reports the page's main-thread busy share (Chrome's TaskDuration over the wall time, and
 * long tasks), its DOM size and its JS heap at the end. Measured, never asserted:
 *
 *   npm run build && node bench/pages/viewer-load.mjs [--rate 100] [--seconds 60]
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { RoomcastClient } from '../../dist/src/client/roomcast-client.js';
import { launchChromium, startAllInOne } from './all-in-one.mjs';

const { values } = parseArgs({ options: { rate: { type: 'string', default: '100' }, seconds: { type: 'string', default: '60' }, senders: { type: 'string', default: '10' } } });
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const senderCount = Number(values.senders);

// No room budget (every message reaches the page) and sends fast enough for the senders.
const service = await startAllInOne({
  ROOMCAST_ROOM_BUDGET_PER_SEC: '0', ROOMCAST_SEND_RATE_PER_SEC: String(rate), ROOMCAST_SEND_BURST: String(rate),
  ROOMCAST_FRAME_RATE_PER_SEC: String(rate * 2), ROOMCAST_FRAME_BURST: String(rate * 2),
});
const browser = await launchChromium();
const senders = [];
try {
  const httpBase = service.wsUrl.replace(/^ws/, 'http').replace(/\/ws$/, '');
  for (let i = 0; i < senderCount; i++) {
    const { token } = await (await fetch(`${httpBase}/dev/token?uid=sender-${i}`)).json();
    const client = new RoomcastClient({ url: service.wsUrl, token, WebSocket });
    await client.connect();
    await client.join('lobby');
    senders.push(client);
  }
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable', { timeDomain: 'timeTicks' });
  await page.goto(service.viewerUrl);
  await page.waitForSelector('#state[data-state="live"]');
  await page.evaluate(() => {
    const state = { longTasks: 0, longTaskMs: 0, rows: 0 };
    window.benchState = state;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) { state.longTasks++; state.longTaskMs += entry.duration; }
    }).observe({ type: 'longtask' });
    new MutationObserver((records) => { for (const record of records) state.rows += record.addedNodes.length; })
      .observe(document.getElementById('messages'), { childList: true });
  });

  const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  const before = await metrics();
  const startedAt = Date.now();
  let sent = 0;
  let failed = 0;
  const words = ['gg', 'lol', 'that jump!', 'no way', 'pog', 'hello from the back row', 'what is the route here', 'clean', 'W', 'chat is moving fast'];
  // Paced by the schedule, not by a fixed sleep: each tick sends what is due by now.
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const elapsedMs = Date.now() - startedAt;
      const due = Math.min(Math.floor((elapsedMs / 1000) * rate), seconds * rate);
      while (sent < due) {
        const sender = senders[sent % senders.length];
        sender.send('lobby', `${words[sent % words.length]} #${sent}`).catch(() => { failed++; });
        sent++;
      }
      if (elapsedMs >= seconds * 1000) { clearInterval(tick); resolve(); }
    }, 10);
  });
  const last = `#${sent - 1}`;
  await page.waitForFunction((suffix) => document.querySelector('#messages li.msg:last-child .text')?.textContent?.endsWith(suffix), last, { timeout: 30_000 });
  const wallS = (Date.now() - startedAt) / 1000;
  const after = await metrics();
  await cdp.send('HeapProfiler.collectGarbage');
  const afterGc = await metrics();
  const page_ = await page.evaluate(() => ({
    ...window.benchState,
    elements: document.getElementsByTagName('*').length,
    rowsNow: document.querySelectorAll('#messages li').length,
  }));
  const busyS = after.TaskDuration - before.TaskDuration;
  const report = {
    rate, seconds, sent, failedSends: failed, wallS: Number(wallS.toFixed(1)),
    mainThreadBusyShare: Number((busyS / wallS).toFixed(3)),
    scriptShare: Number(((after.ScriptDuration - before.ScriptDuration) / wallS).toFixed(3)),
    layoutAndStyleShare: Number(((after.LayoutDuration - before.LayoutDuration + after.RecalcStyleDuration - before.RecalcStyleDuration) / wallS).toFixed(3)),
    longTasks: page_.longTasks, longTaskMs: Math.round(page_.longTaskMs),
    rowsAddedToDom: page_.rows, rowsInDomAtEnd: page_.rowsNow,
    domElementsAtEnd: page_.elements, domNodesAtEnd: afterGc.Nodes,
    jsHeapUsedMB: Number((after.JSHeapUsedSize / 2 ** 20).toFixed(1)),
    jsHeapUsedAfterGcMB: Number((afterGc.JSHeapUsedSize / 2 ** 20).toFixed(1)),
    jsHeapTotalMB: Number((afterGc.JSHeapTotalSize / 2 ** 20).toFixed(1)),
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  for (const client of senders) client.close();
  await browser.close();
  await service.stop();
}
