/**
 * reconnect-storm: N clients in one room while messages keep flowing; every client drops its TCP
 * connection at a random moment within the storm window, reconnects at once and rejoins with its
 * lastSeq. Measures the time until every client is back in the room, and — every client reading
 * every seq — how many seqs were missed or delivered twice.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { startFleet } from '../lib/load-fleet.mjs';
import { cpuTimesUs } from '../lib/proc-stats.mjs';
import { BENCH_SECRET, diffCounts, scrapeDrops } from '../lib/topology.mjs';
import { connectionsAllowed } from './limits.mjs';
import { startSystem } from './systems.mjs';

const ROOM = 'storm';
const SENDERS = 2;
const CONNECT_TIMEOUT_MS = 120000;
/** Messages keep flowing this long after the storm window, so recovery happens under traffic. */
const TAIL_MS = 5000;
const DRAIN_MS = 3000;

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const reconnectStorm = {
  name: 'reconnect-storm',
  defaults: { targets: ['roomcast'], connections: 10000, rates: [50] },
  async run({ group, options, progress }) {
    const allowed = connectionsAllowed();
    const connections = Math.min(options.connections, allowed - SENDERS);
    if (connections < options.connections) progress(`reconnect-storm: limited to ${connections} clients by the open-file limit`);
    const rate = options.rates[0];
    const windowMs = options.stormWindowS * 1000;
    const targets = [];
    for (const target of options.targets) {
      if (target !== 'roomcast') { progress(`reconnect-storm: skipping ${target} (peers have no rejoin with lastSeq)`); continue; }
      progress(`reconnect-storm: ${connections} clients in one room, ${rate} msg/s, all reconnect within ${options.stormWindowS} s`);
      const system = await startSystem(group, target, options);
      try {
        await system.createRoom(ROOM);
        const fleet = await startFleet(group, {
          target: system, secret: BENCH_SECRET, sampleCount: options.sample, cpu: options.loadCpu, trackSeqs: true, client: options.loadClient,
          shares: [
            { role: 'sender', count: SENDERS, workers: 1, rooms: { prefix: ROOM, count: 1 } },
            { role: 'viewer', count: connections, workers: options.workers, rooms: { prefix: ROOM, count: 1 } },
          ],
        });
        progress(`  load clients: ${fleet.client === 'native' ? 'native (bench/native/)' : 'Node workers'}${fleet.clientNote ? ` (${fleet.clientNote})` : ''}`);
        const connected = await fleet.all('connect', { timeoutMs: CONNECT_TIMEOUT_MS });
        const joined = connected.reduce((sum, reply) => sum + reply.joined, 0);
        progress(`  ${joined}/${fleet.total} joined; sending ${rate} msg/s, storm in 2 s`);
        const dropsBefore = await scrapeDrops(system.metricsUrl).catch(() => ({}));
        const sending = Promise.all(fleet.senders().map((worker) => worker.request('send', {
          rate: rate / SENDERS, durationMs: 2000 + windowMs + TAIL_MS, textBytes: options.textBytes,
        })));
        sending.catch(() => undefined); // awaited below
        await delay(2000);
        const cpuBefore = cpuTimesUs(system.server.pid);
        const started = Date.now();
        const storms = await fleet.all('storm', { windowMs, timeoutMs: CONNECT_TIMEOUT_MS }, (worker) => worker.role === 'viewer');
        const stormS = (Date.now() - started) / 1000;
        const cpuAfter = cpuTimesUs(system.server.pid);
        const gatewayUserUs = cpuAfter.userUs - cpuBefore.userUs;
        const gatewaySystemUs = cpuAfter.systemUs - cpuBefore.systemUs;
        const gatewayCpuS = (gatewayUserUs + gatewaySystemUs) / 1e6;
        const recoverMs = storms.flatMap((reply) => reply.recoverMs).sort((a, b) => a - b);
        const recovered = recoverMs.length;
        const rejoinMs = storms.flatMap((reply) => reply.rejoinMs).sort((a, b) => a - b);
        const allBackS = recoverMs.length ? recoverMs.at(-1) / 1000 : null;
        // The storm's CPU covers the messages flowing meanwhile too: it is an upper bound per reconnect.
        const perReconnectUs = recovered ? Math.round((gatewayUserUs + gatewaySystemUs) / recovered) : null;
        progress(`  ${recovered}/${joined - SENDERS} recovered; all back ${allBackS?.toFixed(2)} s after the storm began,` +
          ` ${allBackS === null ? '–' : Math.max(0, allBackS - options.stormWindowS).toFixed(2)} s after the ${options.stormWindowS} s window closed;` +
          ` drop → rejoined p50 ${percentile(rejoinMs, 50)?.toFixed(0)} ms, p99 ${percentile(rejoinMs, 99)?.toFixed(0)} ms;` +
          ` gateway CPU ${gatewayCpuS.toFixed(2)} s = ${perReconnectUs} µs per reconnect (user ${recovered ? Math.round(gatewayUserUs / recovered) : '–'}, kernel ${recovered ? Math.round(gatewaySystemUs / recovered) : '–'})`);
        await sending;
        await delay(DRAIN_MS);
        const finalSeqs = { [ROOM]: await system.lastSeq(ROOM) };
        const audits = await fleet.all('audit', { finalSeqs });
        const storm = {
          loadClient: fleet.client,
          clients: joined - SENDERS,
          windowS: options.stormWindowS,
          rateMsgPerS: rate,
          recovered,
          failed: storms.reduce((sum, reply) => sum + reply.failed, 0),
          failures: Object.assign({}, ...storms.map((reply) => reply.failures)),
          timeToAllRecoveredS: allBackS,
          /** From the end of the storm window until the last client had rejoined (0 when all were back within it). */
          allBackAfterWindowS: allBackS === null ? null : Math.max(0, allBackS - options.stormWindowS),
          /** From a client's drop to its `joined`: reconnect, handshake, welcome, rejoin with the missed messages. */
          rejoinP50Ms: percentile(rejoinMs, 50),
          rejoinP99Ms: percentile(rejoinMs, 99),
          rejoinMaxMs: rejoinMs.at(-1) ?? null,
          stormSeconds: stormS,
          gatewayCpuSeconds: gatewayCpuS,
          /** Gateway CPU (user + kernel) over the storm and until all were back, per reconnect, messages to the room included. */
          gatewayCpuPerReconnectUs: perReconnectUs,
          gatewayUserCpuPerReconnectUs: recovered ? Math.round(gatewayUserUs / recovered) : null,
          gatewaySystemCpuPerReconnectUs: recovered ? Math.round(gatewaySystemUs / recovered) : null,
          missingSeqs: audits.reduce((sum, a) => sum + a.missing, 0),
          duplicateSeqs: audits.reduce((sum, a) => sum + a.extra, 0),
          reportedGapSeqs: audits.reduce((sum, a) => sum + a.reportedGapSeqs, 0),
          notJoinedAtEnd: audits.reduce((sum, a) => sum + a.notJoined, 0),
          finalSeq: finalSeqs[ROOM],
          serverDrops: diffCounts(dropsBefore, await scrapeDrops(system.metricsUrl).catch(() => ({}))),
        };
        progress(`  audit: ${storm.missingSeqs} missing seqs, ${storm.duplicateSeqs} duplicates, ${storm.reportedGapSeqs} reported as gaps; server drops ${JSON.stringify(storm.serverDrops)}`);
        targets.push({ target: system.name, storm });
        await fleet.stop();
      } finally {
        await system.stop();
      }
    }
    const markdown = [
      '| system | clients | window | msg/s | recovered | all back after the window closed (from the storm start) | drop → rejoined p50 / p99 / max | missing seqs | duplicates (dropped by clients) | gaps reported | gateway CPU | per reconnect (user / kernel) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...targets.map(({ target, storm: s }) => `| ${target} | ${s.clients} | ${s.windowS} s | ${s.rateMsgPerS} | ${s.recovered} (${s.failed} failed) |` +
        ` ${s.allBackAfterWindowS?.toFixed(2) ?? '–'} s (${s.timeToAllRecoveredS?.toFixed(2) ?? '–'} s) | ${s.rejoinP50Ms?.toFixed(0)} / ${s.rejoinP99Ms?.toFixed(0)} / ${s.rejoinMaxMs?.toFixed(0)} ms | ${s.missingSeqs} | ${s.duplicateSeqs} | ${s.reportedGapSeqs} |` +
        ` ${s.gatewayCpuSeconds.toFixed(2)} s | ${s.gatewayCpuPerReconnectUs ?? '–'} µs (${s.gatewayUserCpuPerReconnectUs ?? '–'} / ${s.gatewaySystemCpuPerReconnectUs ?? '–'}) |`),
    ];
    return { targets, markdown };
  },
};
