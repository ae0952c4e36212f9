/**
 * Roomcast's benchmark harness: `npm run bench -- --scenario hot-room [flags]` (see bench/README.md).
 *
 * Starts the real topology (nats-server, redis-server, room service, and the gateway pinned alone
 * to its core) or a peer server, drives it from load-generator processes on the other core, and
 * writes bench/results/<date>-<scenario>.json, <date>-summary.md and SVG charts.
 */
import { parseArgs } from 'node:util';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { ProcessGroup, hardNofile, hasTaskset, pinSelf, setLoadNice } from './lib/processes.mjs';

/** The load clients yield the load core to the services that share it (see setLoadNice). */
const DEFAULT_LOAD_NICE = 10;
import { machineInfo } from './lib/proc-stats.mjs';
import { topSelfTime } from './lib/cpu-profile.mjs';
import { efficiency, fmtRatio, roomcastStepsOfRound, sustainedRatios, writeResults } from './lib/report.mjs';
import { knownSettings } from './lib/topology.mjs';
import { TARGETS } from './scenarios/systems.mjs';
import { hotRoom } from './scenarios/hot-room.mjs';
import { manyRooms } from './scenarios/many-rooms.mjs';
import { idle } from './scenarios/idle.mjs';
import { reconnectStorm } from './scenarios/reconnect-storm.mjs';
import { privateChat } from './scenarios/private-chat.mjs';
import { groupChat } from './scenarios/group-chat.mjs';
import { connectStorm } from './scenarios/connect-storm.mjs';

const SCENARIOS = Object.fromEntries([hotRoom, manyRooms, idle, connectStorm, reconnectStorm, privateChat, groupChat].map((scenario) => [scenario.name, scenario]));
const progress = (line) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

const USAGE = `npm run bench -- --scenario NAME [flags]

Scenarios: ${Object.keys(SCENARIOS).join(', ')}

Flags (defaults depend on the scenario; see bench/README.md):
  --scenario NAME         which scenario to run (required)
  --targets LIST          systems to measure, comma separated: ${TARGETS.join(', ')} (default: all for
                          hot-room and many-rooms, roomcast for the others)
  --viewers N|max         hot-room: viewers in the room (default 10000); max: as many as one server
                          process may hold here (the open-file limit's connections − senders)
  --senders N             hot-room, group-chat: sending connections (default 4)
  --members N             group-chat: members of the group (default 1000)
  --rooms N               many-rooms: rooms (default 1000)
  --viewers-per-room N    many-rooms: viewers per room (default 20)
  --connections N         idle: connections (default: as many as the open-file limit allows);
                          connect-storm, reconnect-storm: clients (default 10000); private-chat: users, in pairs (default 2000);
                          group-chat: online members (default 500)
  --rates LIST            offered message rates in msg/s, comma separated, ramped in order
  --step-s S              measured seconds per rate (default 5)
  --warmup-s S            seconds at each rate before measuring (default 2)
  --load-poll-us US       hot-room, many-rooms, chat, native client: a viewer process waits at least US µs
                          between two looks at its sockets (default 0: it wakes for every arrival), so that one
                          wake-up takes an interval's frames, as a NIC coalesces interrupts; arrivals are seen
                          up to US µs late (bench/README.md)
  --settle-s S            hot-room, many-rooms, chat: seconds more at the first rate before its measurement
                          (default 0), so that the steps measure the steady state: V8 optimizing the hot
                          paths, the set-up's garbage collected and keepalive pings begun (bench/README.md)
  --p99-bound-ms MS       the ramp stops when p99 passes this (default 100)
  --overload-step         hot-room, many-rooms: after the ramp, one more step for Roomcast at 2× the highest
                          rate within bounds (2× the first rate if none), whatever its p99, with a PASS/FAIL
                          verdict: every send answered (ack or overloaded) within 1 s, none lost after an ack
  --workers N             Node load-generator processes for viewers (default 3; the native client runs
                          one process per load core instead)
  --load-client KIND      native (default: bench/native/, built with cc; Node workers when there is no
                          compiler) or node (the Node workers), for viewers and senders alike, on every
                          target
  --sample N              connections fully decoded for latency and seq checks (default 64)
  --text-bytes N          message text length (default 48)
  --socketio-nodes N      Socket.IO peer nodes, joined by its Redis adapter when 2 (default 1)
  --hold-s S              idle: how long the connections are held before memory is read again (default 30)
  --storm-window-s S      reconnect-storm: every client reconnects within this window (default 5)
  --server-cpu LIST       core(s) of the gateway / peer server, as taskset takes them (default 1)
  --load-cpu LIST         core(s) of load generators, room service, NATS, Redis (default 0; e.g. 0,2-5
                          on a larger machine so the clients keep up)
  --service-cpu LIST      core(s) of the room service (default: the load cores); NATS and Redis stay there
  --redis single|cluster  Roomcast's Redis: one redis-server (default) or a 3-primary Redis Cluster
                          (three redis-servers on the load cores; their CPU is summed as redis-server)
  --load-nice N           niceness of the load clients and the harness (default 10; 0: none), so the room
                          service, NATS and Redis on the load core get the CPU before the clients
  --room-budget N         ROOMCAST_ROOM_BUDGET_PER_SEC for the gateway: chat a room delivers per second
                          before it is sampled (default 0: never sampled, so the raw fan-out is measured;
                          give the production value to measure the overload policy instead)
  --env K=V,...           more ROOMCAST_* settings for the room service and gateway
  --profile               run the gateway under node --cpu-prof (profile in the temporary directory)
                          and list its top self-time functions in the summary
  --profile-load          also profile the Node load generators (to check they are not the limit); the summary
                          lists the top self-time functions of one Node viewer generator (--load-client node)
  --rounds N              run the whole scenario N times, every system once per round in the order above
                          (default 1); the summary adds each efficiency ratio's median over the rounds and
                          their range, as one run's ratio moves with the machine (bench/README.md)
  --tag NAME              added to the result files' names (<date>-<scenario>-<tag>.json), to keep
                          several variants of a scenario from one day apart
  --out DIR               results directory (default bench/results)
  --help
`;

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      targets: { type: 'string' },
      viewers: { type: 'string' },
      senders: { type: 'string' },
      rooms: { type: 'string' },
      'viewers-per-room': { type: 'string' },
      members: { type: 'string' },
      connections: { type: 'string' },
      rates: { type: 'string' },
      'step-s': { type: 'string', default: '5' },
      'warmup-s': { type: 'string', default: '2' },
      'settle-s': { type: 'string', default: '0' },
      'load-poll-us': { type: 'string', default: '0' },
      'p99-bound-ms': { type: 'string', default: '100' },
      'overload-step': { type: 'boolean', default: false },
      workers: { type: 'string', default: '3' },
      'load-client': { type: 'string', default: 'native' },
      sample: { type: 'string', default: '64' },
      'text-bytes': { type: 'string', default: '48' },
      'socketio-nodes': { type: 'string', default: '1' },
      'storm-window-s': { type: 'string', default: '5' },
      'hold-s': { type: 'string' },
      'server-cpu': { type: 'string', default: '1' },
      'load-cpu': { type: 'string', default: '0' },
      'service-cpu': { type: 'string' },
      redis: { type: 'string', default: 'single' },
      'load-nice': { type: 'string' },
      'room-budget': { type: 'string', default: '0' },
      env: { type: 'string', default: '' },
      profile: { type: 'boolean', default: false },
      'profile-load': { type: 'boolean', default: false },
      out: { type: 'string', default: RESULTS_DIR },
      tag: { type: 'string' },
      rounds: { type: 'string', default: '1' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) { process.stdout.write(USAGE); process.exit(0); }
  const scenario = SCENARIOS[values.scenario ?? ''];
  if (!scenario) throw new Error(`--scenario must be one of ${Object.keys(SCENARIOS).join(', ')}\n\n${USAGE}`);
  const problems = [];
  const int = (name, fallback, min = 0) => {
    const raw = values[name] ?? fallback;
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min) problems.push(`--${name} must be a number ≥ ${min} (got ${raw})`);
    return value;
  };
  // taskset's core lists: `1`, `0,2`, `2-5`.
  const cpuList = (name) => {
    const raw = values[name];
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(raw)) problems.push(`--${name} takes a core or a list of cores (0, 0,2, 2-5); got ${raw}`);
    return raw;
  };
  const defaults = scenario.defaults;
  const targets = (values.targets ?? defaults.targets?.join(',') ?? TARGETS.join(',')).split(',').map((t) => t.trim()).filter(Boolean);
  for (const target of targets) if (!TARGETS.includes(target)) problems.push(`unknown target '${target}' (use ${TARGETS.join(', ')})`);
  const rates = (values.rates ?? defaults.rates?.join(',') ?? '').split(',').filter(Boolean).map(Number);
  if (rates.some((rate) => !(rate > 0))) problems.push('--rates must be positive numbers');
  if (!['single', 'cluster'].includes(values.redis)) problems.push(`--redis takes single or cluster (got ${values.redis})`);
  const options = {
    scenario: scenario.name,
    targets,
    // `max`: as many as the open-file limit lets one server process hold (hot-room).
    viewers: values.viewers === 'max' ? Infinity : int('viewers', defaults.viewers, 1),
    senders: int('senders', defaults.senders, 1),
    rooms: int('rooms', defaults.rooms, 1),
    viewersPerRoom: int('viewers-per-room', defaults.viewersPerRoom, 1),
    members: int('members', defaults.members, 1),
    connections: int('connections', defaults.connections, 1),
    rates,
    stepS: int('step-s', undefined, 0.5),
    warmupS: int('warmup-s', undefined, 0),
    settleS: int('settle-s', undefined, 0),
    loadPollUs: int('load-poll-us', undefined, 0),
    p99BoundMs: int('p99-bound-ms', undefined, 1),
    overloadStep: values['overload-step'],
    workers: int('workers', undefined, 1),
    loadClient: values['load-client'],
    sample: int('sample', undefined, 0),
    textBytes: int('text-bytes', undefined, 16),
    socketioNodes: int('socketio-nodes', undefined, 1),
    stormWindowS: int('storm-window-s', undefined, 0),
    holdS: int('hold-s', defaults.holdS ?? 30, 0),
    serverCpu: cpuList('server-cpu'),
    loadCpu: cpuList('load-cpu'),
    serviceCpu: values['service-cpu'] === undefined ? cpuList('load-cpu') : cpuList('service-cpu'),
    redis: values.redis,
    loadNice: int('load-nice', DEFAULT_LOAD_NICE, 0),
    profile: values.profile,
    profileLoad: values['profile-load'],
    outDir: values.out.endsWith('/') ? values.out : `${values.out}/`,
    tag: values.tag ?? null,
    rounds: int('rounds', undefined, 1),
  };
  options.env = {};
  for (const pair of values.env.split(',').filter(Boolean)) {
    const [name, ...rest] = pair.split('=');
    if (!name.startsWith('ROOMCAST_') || rest.length === 0) problems.push(`--env takes ROOMCAST_NAME=value pairs (got '${pair}')`);
    else options.env[name] = rest.join('=');
  }
  const budget = int('room-budget', undefined, 0);
  if (!('ROOMCAST_ROOM_BUDGET_PER_SEC' in options.env) && targets.includes('roomcast') && knownSettings().has('ROOMCAST_ROOM_BUDGET_PER_SEC')) {
    options.env.ROOMCAST_ROOM_BUDGET_PER_SEC = String(budget);
  }
  if (!['native', 'node'].includes(options.loadClient)) problems.push(`--load-client takes native or node (got ${options.loadClient})`);
  if (options.tag !== null && !/^[A-Za-z0-9_-]{1,40}$/.test(options.tag)) problems.push('--tag takes letters, digits, - and _ (at most 40)');
  if (problems.length) throw new Error(problems.join('\n'));
  return { scenario, options };
}

async function main() {
  const { scenario, options } = parseOptions(process.argv.slice(2));
  const stamp = new Date().toISOString().slice(0, 10);
  // Profiles are large: they stay in the temporary directory, and the summary lists their top functions.
  options.profileDir = options.profile ? `${tmpdir()}/roomcast-bench-profiles/${stamp}-${options.scenario}-${process.pid}/` : null;
  options.loadProfileDir = options.profileLoad ? `${tmpdir()}/roomcast-bench-profiles/${stamp}-${options.scenario}-${process.pid}-load/` : null;
  if (!existsSync(fileURLToPath(new URL('../dist/src/cli.js', import.meta.url))) && options.targets.includes('roomcast')) {
    throw new Error('dist/src/cli.js is missing: `npm run bench` builds first; with plain node, run `npm run build`');
  }
  const group = new ProcessGroup();
  process.on('unhandledRejection', (error) => {
    // While stopping (Ctrl-C), requests to load generators fail by design.
    if (group.stopping || group.interrupted) return;
    process.stderr.write(`bench: ${error?.stack ?? error}\n`);
    group.stopAll().finally(() => process.exit(1));
  });
  pinSelf(options.loadCpu);
  setLoadNice(Math.min(19, options.loadNice));
  const environment = {
    ...machineInfo(),
    taskset: hasTaskset,
    openFileLimit: hardNofile,
    pinning: !hasTaskset ? 'none (taskset missing)' : options.serviceCpu === options.loadCpu
      ? `server on core ${options.serverCpu}; load, room service, NATS, Redis on core ${options.loadCpu}`
      : `server on core ${options.serverCpu}; room service on core ${options.serviceCpu}; load, NATS, Redis on core ${options.loadCpu}`,
    loadNice: Math.min(19, options.loadNice),
  };
  progress(`${scenario.name} on ${environment.nproc} × ${environment.cpuModel}, node ${environment.node}; ${environment.pinning}${environment.loadNice ? `, load at nice ${environment.loadNice}` : ""}; open-file limit ${hardNofile}`);
  if (!hasTaskset) progress('warning: taskset is not installed (apt-get install util-linux): processes are not pinned');

  const startedAt = new Date().toISOString();
  // Each round runs every system once; the last round's figures are the tables, each round's efficiency goes to the summary.
  const rounds = [];
  try {
    for (let round = 1; round <= options.rounds; round++) {
      if (options.rounds > 1) progress(`round ${round} of ${options.rounds}`);
      rounds.push(await scenario.run({ group, options, progress }));
    }
  } finally {
    await group.stopAll();
  }
  const result = rounds.at(-1);
  if (rounds.length > 1) result.rounds = rounds.map((round) => ({ efficiency: efficiency(round), ratios: sustainedRatios(round), roomcastSteps: roomcastStepsOfRound(round) }));
  if (options.profileDir) {
    const windows = (result.targets ?? []).filter((target) => target.target === 'roomcast').flatMap((target) => (target.steps ?? []).map((step) => step.windowUs));
    result.profile = latestProfile(options.profileDir, windows, 'gateway');
    result.serviceProfile = latestProfile(`${options.profileDir}room-service/`, windows, 'room service');
  }
  if (options.loadProfileDir && existsSync(options.loadProfileDir)) {
    const viewer = readdirSync(options.loadProfileDir).find((file) => file.startsWith('load-viewer-0'));
    if (viewer) {
      const file = `${options.loadProfileDir}${viewer}`;
      // Each system's fleet writes the same names: the file is the last system's; cut it to its steps.
      const last = (result.targets ?? []).filter((target) => target.steps?.length).at(-1);
      const windows = last ? last.steps.map((step) => step.windowUs) : null;
      result.loadProfile = { file, system: last?.target ?? null, top: topSelfTime(file, 15, windows) };
      progress(`load generator profile ${file}${last ? ` (${last.target}, measured steps only)` : ''}; top self time:`);
      for (const entry of result.loadProfile.top.slice(0, 10)) progress(`  ${(entry.selfShare * 100).toFixed(1).padStart(5)} %  ${entry.function}  ${entry.location}`);
    }
  }
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`;
  const full = { stamp, scenario: scenario.name, tag: options.tag, startedAt, finishedAt: new Date().toISOString(), command, environment, options, ...result };
  const files = writeResults(full, options.outDir);
  for (const row of full.efficiencyOverRounds ?? []) {
    progress(`efficiency at ${row.rateMsgPerS} msg/s over ${row.ratios.length} rounds: median ${fmtRatio(row.ratio?.median)} (${fmtRatio(row.ratio?.min)}–${fmtRatio(row.ratio?.max)})` +
      `${row.ratioToLimitSends ? `; to the limit peer + sends ${fmtRatio(row.ratioToLimitSends.median)} (${fmtRatio(row.ratioToLimitSends.min)}–${fmtRatio(row.ratioToLimitSends.max)})` : ''}`);
  }
  for (const row of full.efficiency ?? []) {
    progress(`efficiency at ${row.rateMsgPerS} msg/s: Roomcast ${row.roomcastNsPerDelivery} ns/delivery, limit peer ${row.limitNsPerDelivery} ns/delivery` +
      ` → ${fmtRatio(row.ratio)}` +
      `${row.limitSendsNsPerDelivery !== undefined ? `; limit peer + sends ${row.limitSendsNsPerDelivery} ns/delivery → ${fmtRatio(row.ratioToLimitSends)}` : ''}` +
      `${row.saturated ? ' (load core saturated)' : ''}`);
  }
  for (const file of files) progress(`wrote ${file}`);
  // The verdict last, where it is seen.
  for (const target of full.targets ?? []) if (target.overload) progress(`${target.target}: ${target.overload.line}`);
  const differing = (full.targets ?? []).find((target) => target.frameIdentity && !target.frameIdentity.identical);
  if (differing) throw new Error(`the limit peer's frames were not byte-identical to Roomcast's: ${differing.frameIdentity.difference}`);
}

/** The newest profile in `dir`: its top self time overall and during the measured `windows`. */
function latestProfile(dir, windows, name) {
  if (!existsSync(dir)) return undefined;
  const latest = readdirSync(dir).filter((file) => file.endsWith('.cpuprofile')).sort().at(-1);
  if (!latest) return undefined;
  const file = `${dir}${latest}`;
  const profile = { file, top: topSelfTime(file), topDuringSteps: windows.length ? topSelfTime(file, 15, windows) : null };
  progress(`${name} profile ${file}; top self time${profile.topDuringSteps ? ' during the measured steps' : ''}:`);
  for (const entry of (profile.topDuringSteps ?? profile.top).slice(0, 10)) progress(`  ${(entry.selfShare * 100).toFixed(1).padStart(5)} %  ${entry.function}  ${entry.location}`);
  return profile;
}

main().then(() => process.exit(0), (error) => {
  process.stderr.write(`bench: ${error?.stack ?? error}\n`);
  process.exit(1);
});
