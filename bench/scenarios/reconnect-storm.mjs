/**
 * reconnect-storm: N clients in one room while messages keep flowing; every client drops its TCP
 * connection at a random moment within the storm window, reconnects at once and rejoins with its
 * lastSeq. Measures the time until every client is back in the room, and — every client reading
 * every seq — how many seqs were missed or delivered twice.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { startFleet } from '../lib/load-fleet.mjs';
import { cpuTimeUs } from '../lib/proc-stats.mjs';
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
        const cpuBefore = cpuTimeUs(system.server.pid);
        const started = Date.now();
        const storms = await fleet.all('storm', { windowMs, timeoutMs: CONNECT_TIMEOUT_MS }, (worker) => worker.role === 'viewer');
        const stormS = (Date.now() - started) / 1000;
        const gatewayCpuS = (cpuTimeUs(system.server.pid) - cpuBefore) / 1e6;
        const recoverMs = storms.flatMap((reply) => reply.recoverMs).sort((a, b) => a - b);
        const recovered = recoverMs.length;
        const rejoinMs = storms.flatMap((reply) => reply.rejoinMs).sort((a, b) => a - b);
        progress(`  ${recovered}/${joined - SENDERS} recovered; all back ${((recoverMs.at(-1) ?? 0) / 1000).toFixed(2)} s after the storm began` +
          ` (window ${options.stormWindowS} s); drop → rejoined p50 ${percentile(rejoinMs, 50)?.toFixed(0)} ms, p99 ${percentile(rejoinMs, 99)?.toFixed(0)} ms; gateway CPU ${gatewayCpuS.toFixed(2)} s`);
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
          timeToAllRecoveredS: recoverMs.length ? recoverMs.at(-1) / 1000 : null,
          /** From a client's drop to its `joined`: reconnect, handshake, welcome, rejoin with the missed messages. */
          rejoinP50Ms: percentile(rejoinMs, 50),
          rejoinP99Ms: percentile(rejoinMs, 99),
          rejoinMaxMs: rejoinMs.at(-1) ?? null,
          stormSeconds: stormS,
          gatewayCpuSeconds: gatewayCpuS,
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
      '| system | clients | window | msg/s | recovered | time to all recovered (from the storm start) | drop → rejoined p50 / p99 / max | missing seqs | duplicates (dropped by clients) | gaps reported | gateway CPU |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...targets.map(({ target, storm: s }) => `| ${target} | ${s.clients} | ${s.windowS} s | ${s.rateMsgPerS} | ${s.recovered} (${s.failed} failed) |` +
        ` ${s.timeToAllRecoveredS?.toFixed(2) ?? '–'} s | ${s.rejoinP50Ms?.toFixed(0)} / ${s.rejoinP99Ms?.toFixed(0)} / ${s.rejoinMaxMs?.toFixed(0)} ms | ${s.missingSeqs} | ${s.duplicateSeqs} | ${s.reportedGapSeqs} | ${s.gatewayCpuSeconds.toFixed(2)} s |`),
    ];
    return { targets, markdown };
  },
};
