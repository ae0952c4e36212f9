/**
 * idle: as many connections as one server process may hold here, each joined to one of a hundred
 * quiet rooms, then held: memory per connection in the server (RSS) and in the kernel (TCP buffer
 * pages, both ends of each loopback connection), and whether every connection survives the hold
 * (heartbeats answered, nothing closed).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { setupPhases, startFleet } from '../lib/load-fleet.mjs';
import { hardNofile } from '../lib/processes.mjs';
import { rssBytes, socketSlabBytes, tcpSocketMemory } from '../lib/proc-stats.mjs';
import { IDLE_TARGET_BYTES_PER_CONNECTION } from '../lib/report.mjs';
import { BENCH_SECRET } from '../lib/topology.mjs';
import { fmtBytes } from './load-steps.mjs';
import { connectionsAllowed } from './limits.mjs';
import { startSystem } from './systems.mjs';

const ROOMS = 100;
const ROOM_PREFIX = 'idle';
const CONNECT_TIMEOUT_MS = 120000;
const SETTLE_MS = 3000;

export const idle = {
  name: 'idle',
  // The limit peer (bare uWS.js, one topic per connection) beside Roomcast: what uWS itself holds.
  defaults: { targets: ['roomcast', 'limit'], holdS: 30 },
  async run({ group, options, progress }) {
    const allowed = connectionsAllowed();
    const wanted = options.connections ?? allowed;
    const connections = Math.min(wanted, allowed);
    if (connections < wanted) progress(`idle: ${wanted} connections exceed what one server process may open here (open-file limit ${hardNofile}); holding ${connections}`);
    const targets = [];
    for (const target of options.targets) {
      progress(`idle: ${target}, ${connections} connections in ${ROOMS} rooms, from ${Math.ceil(connections / 25000)} source address(es)`);
      const system = await startSystem(group, target, options);
      try {
        for (let i = 0; i < ROOMS; i++) await system.createRoom(`${ROOM_PREFIX}${i}`);
        const pids = (system.servers ?? [system.server]).map((child) => child.pid);
        const rss = () => pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
        const fleet = await startFleet(group, {
          target: system, secret: BENCH_SECRET, sampleCount: 0, cpu: options.loadCpu, client: options.loadClient,
          shares: [{ role: 'viewer', count: connections, workers: options.workers, rooms: { prefix: ROOM_PREFIX, count: ROOMS } }],
        });
        progress(`  load clients: ${fleet.client === 'native' ? 'native (bench/native/)' : 'Node workers'}${fleet.clientNote ? ` (${fleet.clientNote})` : ''}`);
        await delay(SETTLE_MS);
        const before = { rss: rss(), tcp: tcpSocketMemory(), slab: socketSlabBytes() };
        const started = Date.now();
        const connected = await fleet.all('connect', { timeoutMs: CONNECT_TIMEOUT_MS });
        const joined = connected.reduce((sum, reply) => sum + reply.joined, 0);
        const connectS = (Date.now() - started) / 1000;
        await delay(SETTLE_MS);
        const after = { rss: rss(), tcp: tcpSocketMemory(), slab: socketSlabBytes() };
        progress(`  ${system.name}: ${joined} joined in ${connectS.toFixed(1)} s; server RSS +${fmtBytes(after.rss - before.rss)} = ${fmtBytes((after.rss - before.rss) / joined)}/connection`);
        progress(`  set-up phases (p50/p99 ms): ${Object.entries(setupPhases(connected)).map(([name, p]) => `${name.replace('Ms', '')} ${p.p50}/${p.p99}`).join(', ')}`);
        progress(`  holding for ${options.holdS} s`);
        await delay(options.holdS * 1000);
        const held = { rss: rss(), tcp: tcpSocketMemory() };
        const open = (await fleet.all('measure-end', {})).reduce((sum, reply) => sum + reply.open, 0);
        const perConnection = (bytes) => (joined ? Math.round(bytes / joined) : null);
        const memory = {
          connections: joined,
          connectSeconds: connectS,
          connectionsPerS: Math.round(joined / connectS),
          setupPhases: setupPhases(connected),
          connectFailures: Object.assign({}, ...connected.map((reply) => reply.failures)),
          serverRssBeforeBytes: before.rss,
          serverRssAfterBytes: after.rss,
          serverRssAfterHoldBytes: held.rss,
          serverRssPerConnectionBytes: perConnection(after.rss - before.rss),
          serverRssPerConnectionAfterHoldBytes: perConnection(held.rss - before.rss),
          // Both ends of each loopback connection are counted by the kernel figures.
          kernelTcpMemPerConnectionBytes: perConnection(after.tcp.memBytes - before.tcp.memBytes),
          kernelSocketSlabPerConnectionBytes: before.slab === null || after.slab === null ? null : perConnection(after.slab - before.slab),
          tcpSocketsInUse: after.tcp.inuse,
          openAfterHold: open,
        };
        progress(`  after ${options.holdS} s: ${open}/${joined} still open; server RSS ${fmtBytes(memory.serverRssPerConnectionAfterHoldBytes ?? 0)}/connection;` +
          ` kernel TCP buffers ${fmtBytes(memory.kernelTcpMemPerConnectionBytes ?? 0)}/connection` +
          `${memory.kernelSocketSlabPerConnectionBytes === null ? '' : `, socket slabs ${fmtBytes(memory.kernelSocketSlabPerConnectionBytes)}/connection`} (both ends)`);
        targets.push({ target: system.name, memory });
        await fleet.stop();
      } finally {
        await system.stop();
      }
    }
    const limit = targets.find((t) => t.target === 'limit')?.memory.serverRssPerConnectionAfterHoldBytes ?? null;
    for (const { target, memory: m } of targets) {
      const held = m.serverRssPerConnectionAfterHoldBytes;
      progress(`idle: ${target}: ${held === null ? '–' : `${(held / 1024).toFixed(2)} KiB (${held} B)`} of server RSS per connection at ${m.connections} connections` +
        `${target === 'roomcast' && limit ? `, ${(held / limit).toFixed(2)}× the limit peer's ${(limit / 1024).toFixed(2)} KiB` : ''}`);
    }
    const markdown = [
      '| system | connections | set-up rate | server RSS / connection | after hold | kernel TCP buffers / connection (both ends) | socket slabs / connection (both ends) | open after hold | target (≤ 3 KiB user space at 50k) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|',
      ...targets.map(({ target, memory: m }) => `| ${target} | ${m.connections} | ${m.connectionsPerS}/s | ${fmtBytes(m.serverRssPerConnectionBytes ?? 0)} | ${fmtBytes(m.serverRssPerConnectionAfterHoldBytes ?? 0)} (${m.serverRssPerConnectionAfterHoldBytes} B) |` +
        ` ${fmtBytes(m.kernelTcpMemPerConnectionBytes ?? 0)} | ${m.kernelSocketSlabPerConnectionBytes === null ? '–' : fmtBytes(m.kernelSocketSlabPerConnectionBytes)} | ${m.openAfterHold} |` +
        ` ${target === 'roomcast' ? ((m.serverRssPerConnectionAfterHoldBytes ?? Infinity) <= IDLE_TARGET_BYTES_PER_CONNECTION ? 'met' : `missed by ${fmtBytes((m.serverRssPerConnectionAfterHoldBytes ?? 0) - IDLE_TARGET_BYTES_PER_CONNECTION)}`) + (m.connections < 50000 ? ` (measured at ${m.connections}, not 50k)` : '') : ''} |`),
    ];
    return { targets, markdown };
  },
};
