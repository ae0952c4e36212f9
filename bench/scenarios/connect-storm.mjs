/**
 * connect-storm: a flash crowd. N new viewers connect and join one room as fast as the load client
 * allows (at most 200 handshakes in flight per load process). Measures the time until all are
 * joined, connections per second, and the server's CPU per connect + join (from /proc, over the
 * storm only), for Roomcast's gateway and for the limit peer (bare uWS.js answering the same
 * welcome and join), the machine's bare figure.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { setupPhases, startFleet } from '../lib/load-fleet.mjs';
import { cpuTimesUs } from '../lib/proc-stats.mjs';
import { BENCH_SECRET, diffCounts, scrapeRequestCounts } from '../lib/topology.mjs';
import { connectionsAllowed } from './limits.mjs';
import { runOrder, startSystem } from './systems.mjs';

const ROOM = 'crowd';
const CONNECT_TIMEOUT_MS = 120000;
/** The fleet's processes settle before the storm, so their start-up is not counted. */
const SETTLE_MS = 2000;

export const connectStorm = {
  name: 'connect-storm',
  defaults: { targets: ['roomcast', 'limit'], connections: 10000 },
  async run({ group, options, progress }) {
    const allowed = connectionsAllowed();
    const connections = Math.min(options.connections, allowed);
    if (connections < options.connections) progress(`connect-storm: limited to ${connections} viewers by the open-file limit`);
    const targets = [];
    for (const target of runOrder(options.targets)) {
      if (target !== 'roomcast' && target !== 'limit') { progress(`connect-storm: skipping ${target} (roomcast and limit only)`); continue; }
      progress(`connect-storm: ${target}, ${connections} new viewers into one room`);
      const system = await startSystem(group, target, options);
      try {
        await system.createRoom(ROOM);
        const pids = (system.servers ?? [system.server]).map((child) => child.pid);
        const serverCpu = () => pids.map(cpuTimesUs).reduce((sum, t) => ({ userUs: sum.userUs + t.userUs, systemUs: sum.systemUs + t.systemUs }), { userUs: 0, systemUs: 0 });
        const fleet = await startFleet(group, {
          target: system, secret: BENCH_SECRET, sampleCount: 0, cpu: options.loadCpu, client: options.loadClient,
          shares: [{ role: 'viewer', count: connections, workers: options.workers, rooms: { prefix: ROOM, count: 1 } }],
        });
        progress(`  load clients: ${fleet.client === 'native' ? 'native (bench/native/)' : 'Node workers'}${fleet.clientNote ? ` (${fleet.clientNote})` : ''}`);
        await delay(SETTLE_MS);
        const requestsBefore = await scrapeRequestCounts(system.metricsUrl).catch(() => ({}));
        const cpuBefore = serverCpu();
        const started = Date.now();
        const connected = await fleet.all('connect', { timeoutMs: CONNECT_TIMEOUT_MS });
        const seconds = (Date.now() - started) / 1000;
        const cpuAfter = serverCpu();
        const userUs = cpuAfter.userUs - cpuBefore.userUs;
        const systemUs = cpuAfter.systemUs - cpuBefore.systemUs;
        const cpuUs = userUs + systemUs;
        const joined = connected.reduce((sum, reply) => sum + reply.joined, 0);
        // The gateway's requests to the room service during the storm: logins batched per tick, join rules once per room.
        const requests = diffCounts(requestsBefore, await scrapeRequestCounts(system.metricsUrl).catch(() => ({})));
        const storm = {
          loadClient: fleet.client,
          viewers: connections,
          joined,
          failures: Object.assign({}, ...connected.map((reply) => reply.failures)),
          timeToAllJoinedS: seconds,
          connectionsPerS: Math.round(joined / seconds),
          serverCpuSeconds: cpuUs / 1e6,
          /** Server CPU (user + system, one clock tick of resolution) per connect + welcome + join. */
          serverCpuPerJoinUs: joined ? Math.round(cpuUs / joined) : null,
          /** The same, split: user space (JavaScript, uWS, V8) and kernel (accept, reads, writes, epoll). */
          serverUserCpuPerJoinUs: joined ? Math.round(userUs / joined) : null,
          serverSystemCpuPerJoinUs: joined ? Math.round(systemUs / joined) : null,
          setupPhases: setupPhases(connected),
          gatewayRequests: requests,
        };
        progress(`  ${joined}/${connections} joined in ${seconds.toFixed(2)} s (${storm.connectionsPerS}/s); server CPU ${storm.serverCpuSeconds.toFixed(2)} s = ${storm.serverCpuPerJoinUs} µs per connect + join (user ${storm.serverUserCpuPerJoinUs}, kernel ${storm.serverSystemCpuPerJoinUs})`);
        if (system.metricsUrl) progress(`  gateway → room service requests: ${JSON.stringify(requests)}`);
        progress(`  set-up phases (p50/p99 ms): ${Object.entries(storm.setupPhases).map(([name, p]) => `${name.replace('Ms', '')} ${p.p50}/${p.p99}`).join(', ')}`);
        targets.push({ target: system.name, storm });
        await fleet.stop();
      } finally {
        await system.stop();
      }
    }
    const limit = targets.find((t) => t.target === 'limit')?.storm;
    const markdown = [
      '| system | viewers joined | time to all joined | connections/s | server CPU / connect + join | user / kernel | × limit peer | welcome → joined p50 / p99 |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      ...targets.map(({ target, storm: s }) => `| ${target} | ${s.joined}/${s.viewers} | ${s.timeToAllJoinedS.toFixed(2)} s | ${s.connectionsPerS} |` +
        ` ${s.serverCpuPerJoinUs ?? '–'} µs | ${s.serverUserCpuPerJoinUs} / ${s.serverSystemCpuPerJoinUs} µs | ${limit?.serverCpuPerJoinUs && s.serverCpuPerJoinUs ? (s.serverCpuPerJoinUs / limit.serverCpuPerJoinUs).toFixed(2) : '–'} |` +
        ` ${s.setupPhases.joinMs ? `${s.setupPhases.joinMs.p50} / ${s.setupPhases.joinMs.p99} ms` : '–'} |`),
    ];
    return { targets, markdown };
  },
};
