/**
 * idle: as many connections as one server process may hold here, each joined to one of a hundred
 * quiet rooms, then held: memory per connection in the server (RSS) and in the kernel (TCP buffer
 * pages, both ends of each loopback connection), and whether every connection survives the hold
 * (heartbeats answered, nothing closed). The connections come in two halves: the server's RSS growth
 * over all of them, divided by their number, also counts what grows once and not per connection (V8's
 * young generation grows from 1 to 16 MiB semi-spaces under the first connect storm); the growth over
 * the second half alone, divided by its size, is the marginal cost of a connection.
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
        const half = Math.floor(connections / 2);
        // Users of their own per half: one user's second connection would replace the first (device policy).
        const fleetOf = (count, uidPrefix) => startFleet(group, {
          target: system, secret: BENCH_SECRET, sampleCount: 0, cpu: options.loadCpu, client: options.loadClient, uidPrefix,
          shares: [{ role: 'viewer', count, workers: options.workers, rooms: { prefix: ROOM_PREFIX, count: ROOMS } }],
        });
        const fleets = [await fleetOf(half, 'a'), await fleetOf(connections - half, 'b')];
        progress(`  load clients: ${fleets[0].client === 'native' ? 'native (bench/native/)' : 'Node workers'}${fleets[0].clientNote ? ` (${fleets[0].clientNote})` : ''}`);
        await delay(SETTLE_MS);
        const before = { rss: rss(), tcp: tcpSocketMemory(), slab: socketSlabBytes() };
        const started = Date.now();
        const firstHalf = await fleets[0].all('connect', { timeoutMs: CONNECT_TIMEOUT_MS });
        await delay(SETTLE_MS);
        const middle = { rss: rss(), joined: firstHalf.reduce((sum, reply) => sum + reply.joined, 0) };
        const secondHalf = await fleets[1].all('connect', { timeoutMs: CONNECT_TIMEOUT_MS });
        const connected = [...firstHalf, ...secondHalf];
        const joined = connected.reduce((sum, reply) => sum + reply.joined, 0);
        const connectS = (Date.now() - started) / 1000 - SETTLE_MS / 1000;
        await delay(SETTLE_MS);
        const after = { rss: rss(), tcp: tcpSocketMemory(), slab: socketSlabBytes() };
        progress(`  ${system.name}: ${joined} joined in ${connectS.toFixed(1)} s; server RSS +${fmtBytes(after.rss - before.rss)} = ${fmtBytes((after.rss - before.rss) / joined)}/connection;` +
          ` the second half's ${joined - middle.joined}: +${fmtBytes(after.rss - middle.rss)} = ${fmtBytes((after.rss - middle.rss) / (joined - middle.joined))}/connection`);
        progress(`  set-up phases (p50/p99 ms): ${Object.entries(setupPhases(connected)).map(([name, p]) => `${name.replace('Ms', '')} ${p.p50}/${p.p99}`).join(', ')}`);
        progress(`  holding for ${options.holdS} s`);
        await delay(options.holdS * 1000);
        const held = { rss: rss(), tcp: tcpSocketMemory() };
        const open = (await Promise.all(fleets.map((fleet) => fleet.all('measure-end', {})))).flat().reduce((sum, reply) => sum + reply.open, 0);
        const perConnection = (bytes) => (joined ? Math.round(bytes / joined) : null);
        const secondHalfJoined = joined - middle.joined;
        const perSecondHalfConnection = (bytes) => (secondHalfJoined > 0 ? Math.round(bytes / secondHalfJoined) : null);
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
          serverRssAtHalfBytes: middle.rss,
          serverRssMarginalPerConnectionBytes: perSecondHalfConnection(after.rss - middle.rss),
          serverRssMarginalPerConnectionAfterHoldBytes: perSecondHalfConnection(held.rss - middle.rss),
          // Both ends of each loopback connection are counted by the kernel figures.
          kernelTcpMemPerConnectionBytes: perConnection(after.tcp.memBytes - before.tcp.memBytes),
          kernelSocketSlabPerConnectionBytes: before.slab === null || after.slab === null ? null : perConnection(after.slab - before.slab),
          tcpSocketsInUse: after.tcp.inuse,
          openAfterHold: open,
        };
        progress(`  after ${options.holdS} s: ${open}/${joined} still open; server RSS ${fmtBytes(memory.serverRssPerConnectionAfterHoldBytes ?? 0)}/connection` +
          ` (marginal ${fmtBytes(memory.serverRssMarginalPerConnectionAfterHoldBytes ?? 0)});` +
          ` kernel TCP buffers ${fmtBytes(memory.kernelTcpMemPerConnectionBytes ?? 0)}/connection` +
          `${memory.kernelSocketSlabPerConnectionBytes === null ? '' : `, socket slabs ${fmtBytes(memory.kernelSocketSlabPerConnectionBytes)}/connection`} (both ends)`);
        targets.push({ target: system.name, memory });
        for (const fleet of fleets) await fleet.stop();
      } finally {
        await system.stop();
      }
    }
    const marginal = (m) => m.serverRssMarginalPerConnectionAfterHoldBytes;
    const limit = targets.find((t) => t.target === 'limit')?.memory ?? null;
    for (const { target, memory: m } of targets) {
      const held = m.serverRssPerConnectionAfterHoldBytes;
      progress(`idle: ${target}: ${held === null ? '–' : `${(held / 1024).toFixed(2)} KiB (${held} B)`} of server RSS per connection at ${m.connections} connections,` +
        ` marginal ${marginal(m) === null ? '–' : `${(marginal(m) / 1024).toFixed(2)} KiB`}` +
        `${target === 'roomcast' && limit && marginal(limit) ? `, ${(marginal(m) / marginal(limit)).toFixed(2)}× the limit peer's marginal ${(marginal(limit) / 1024).toFixed(2)} KiB` : ''}`);
    }
    const verdict = (m) => {
      const bytes = m.serverRssPerConnectionAfterHoldBytes ?? Infinity;
      return bytes <= IDLE_TARGET_BYTES_PER_CONNECTION ? 'met' : `missed by ${fmtBytes(bytes - IDLE_TARGET_BYTES_PER_CONNECTION)}`;
    };
    const markdown = [
      `| system | connections | set-up rate | server RSS / connection | after hold | marginal (second half) after hold | kernel TCP buffers / connection (both ends) | socket slabs / connection (both ends) | open after hold | target (≤ ${fmtBytes(IDLE_TARGET_BYTES_PER_CONNECTION)} after hold) |`,
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
      ...targets.map(({ target, memory: m }) => `| ${target} | ${m.connections} | ${m.connectionsPerS}/s | ${fmtBytes(m.serverRssPerConnectionBytes ?? 0)} | ${fmtBytes(m.serverRssPerConnectionAfterHoldBytes ?? 0)} (${m.serverRssPerConnectionAfterHoldBytes} B) |` +
        ` ${marginal(m) === null ? '–' : `${fmtBytes(marginal(m))} (${marginal(m)} B)`} |` +
        ` ${fmtBytes(m.kernelTcpMemPerConnectionBytes ?? 0)} | ${m.kernelSocketSlabPerConnectionBytes === null ? '–' : fmtBytes(m.kernelSocketSlabPerConnectionBytes)} | ${m.openAfterHold} |` +
        ` ${target === 'roomcast' ? verdict(m) : ''} |`),
    ];
    return { targets, markdown };
  },
};
