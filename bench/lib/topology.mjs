/**
 * The systems under test, each as real processes: nats-server and redis-server, then Roomcast's
 * gateway (pinned alone to its core) and room service; or one of the peers (bench/peers/) on the
 * gateway's core. Ports are free ones, never the standard ones.
 */
import { createConnection } from 'node:net';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseAllDocuments } from 'yaml';
import { freePort, waitFor } from './processes.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = `${ROOT}dist/src/cli.js`;
const PEERS = fileURLToPath(new URL('../peers/', import.meta.url));
const GATEWAY_MANIFEST = `${ROOT}deploy/k8s/base/gateway.yaml`;

export const BENCH_SECRET = 'bench-secret-that-is-long-enough-for-hs256';
export const BENCH_API_KEY = 'bench-api-key';

/** Limits raised so the load is not refused by the per-user and per-connection rate limits. */
export const LOAD_SETTINGS = {
  ROOMCAST_SEND_RATE_PER_SEC: '10000',
  ROOMCAST_SEND_BURST: '100000',
  ROOMCAST_FRAME_RATE_PER_SEC: '1000000',
  ROOMCAST_FRAME_BURST: '1000000',
};

/** The ROOMCAST_* settings this build knows (from `roomcast --help`): the service refuses any other. */
export function knownSettings() {
  const help = execFileSync('node', [CLI, '--help'], { encoding: 'utf8' });
  return new Set(help.match(/ROOMCAST_[A-Z0-9_]+/g) ?? []);
}

/**
 * The V8 options the gateway is deployed with (NODE_OPTIONS of its container in the Kubernetes
 * manifest), so that the bench measures the gateway's memory and CPU as it runs in production.
 */
export function gatewayNodeOptions() {
  for (const document of parseAllDocuments(readFileSync(GATEWAY_MANIFEST, 'utf8'))) {
    const containers = document.toJS()?.spec?.template?.spec?.containers ?? [];
    const option = containers.find((container) => container.name === 'gateway')?.env?.find((variable) => variable.name === 'NODE_OPTIONS');
    if (option) return option.value.split(/\s+/).filter(Boolean);
  }
  throw new Error(`${GATEWAY_MANIFEST}: no NODE_OPTIONS for the gateway container`);
}

export async function startNats(group, cpu) {
  const port = await freePort();
  const monitorPort = await freePort();
  const child = group.spawn('nats-server', 'nats-server', ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort)], { cpu });
  await waitFor('nats-server', async () => {
    const response = await fetch(`http://127.0.0.1:${monitorPort}/varz`);
    return response.ok && (await response.json()).port === port;
  }, { child });
  return { url: `nats://127.0.0.1:${port}`, child };
}

export async function startRedis(group, cpu) {
  const port = await freePort();
  const child = group.spawn('redis-server', 'redis-server', ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(port)], { cpu });
  await waitFor('redis-server', () => redisAnswersAs(port, child.pid), { child });
  return { url: `redis://127.0.0.1:${port}`, child };
}

const CLUSTER_PRIMARIES = 3;

/**
 * A 3-primary Redis Cluster: three redis-servers in cluster mode (client and cluster-bus ports free
 * ones, node files in a temporary folder), joined by `redis-cli --cluster create`, ready once every
 * node reports `cluster_state:ok`. Each is named redis-server, so the steps sum their CPU as Redis's.
 */
async function startRedisCluster(group, cpu) {
  const dir = mkdtempSync(`${tmpdir()}/roomcast-bench-cluster-`);
  const nodes = [];
  for (let i = 0; i < CLUSTER_PRIMARIES; i++) {
    const port = await freePort();
    const child = group.spawn('redis-server', 'redis-server', [
      '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(port), '--dir', dir,
      '--cluster-enabled', 'yes', '--cluster-port', String(await freePort()), '--cluster-config-file', `nodes-${port}.conf`,
    ], { cpu });
    await waitFor('redis-server', () => redisAnswersAs(port, child.pid), { child });
    nodes.push({ port, child });
  }
  const addresses = nodes.map(({ port }) => `127.0.0.1:${port}`);
  execFileSync('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
  await waitFor('redis cluster', () => nodes.every(({ port }) => execFileSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' }).includes('cluster_state:ok')), { timeoutMs: 20000 });
  return { url: `redis-cluster://${addresses.join(',')}`, children: nodes.map(({ child }) => child), dir };
}

async function startRedisOf(kind, group, cpu) {
  if (kind === 'cluster') return startRedisCluster(group, cpu);
  const redis = await startRedis(group, cpu);
  return { url: redis.url, children: [redis.child] };
}

/** Whether redis-server on `port` is the process `pid` (a server that is not ours must not be used). */
function redisAnswersAs(port, pid) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(1000, () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(false));
    socket.once('connect', () => socket.write('INFO server\r\n'));
    socket.setEncoding('utf8').on('data', (chunk) => {
      reply += chunk;
      const match = /\r\nprocess_id:(\d+)\r\n/.exec(reply);
      if (reply.startsWith('-') || match) { socket.destroy(); resolve(match ? Number(match[1]) === pid : false); }
    });
  });
}

/** Collects the JSON log lines of a Roomcast process and resolves the first whose `msg` matches. */
function logWatcher() {
  const waiting = [];
  const seen = [];
  return {
    onLine(line) {
      if (!line.startsWith('{')) return;
      let record;
      try { record = JSON.parse(line); } catch { return; }
      seen.push(record);
      for (const waiter of waiting) if (record.msg === waiter.msg) waiter.resolve(record);
    },
    find(msg) { return seen.find((record) => record.msg === msg); },
  };
}

function profileFlags(dir) {
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}

/**
 * Starts Roomcast distributed: nats-server, Redis (`redis`: one redis-server, or a 3-primary
 * `cluster`) and the room service on `otherCpu`, the gateway on `gatewayCpu`. `profileDir` runs the
 * gateway under `node --cpu-prof`, and the room service too (into its `room-service/` subdirectory).
 */
export async function startRoomcast(group, { gatewayCpu, otherCpu, serviceCpu = otherCpu, redis: redisKind = 'single', env = {}, profileDir = null }) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const known = knownSettings();
  const unknown = Object.keys(env).filter((name) => !known.has(name));
  if (unknown.length) throw new Error(`this build does not know ${unknown.join(', ')} (see node dist/src/cli.js --help)`);
  const nats = await startNats(group, otherCpu);
  const redis = await startRedisOf(redisKind, group, otherCpu);
  const baseEnv = {
    ROOMCAST_NATS_URL: nats.url,
    ROOMCAST_REDIS_URL: redis.url,
    ROOMCAST_JWT_SECRET: BENCH_SECRET,
    ROOMCAST_API_KEYS: BENCH_API_KEY,
    ROOMCAST_WS_HOST: '127.0.0.1',
    ROOMCAST_API_HOST: '127.0.0.1',
    ROOMCAST_WS_PORT: '0',
    ROOMCAST_GATEWAY_HTTP_PORT: '0',
    ROOMCAST_API_PORT: '0',
    ROOMCAST_API_METRICS_PORT: '0',
    // The load comes from a few loopback addresses: no per-address connection cap.
    ROOMCAST_MAX_CONNECTIONS_PER_IP: '0',
    ROOMCAST_LOG_LEVEL: 'info',
    ...Object.fromEntries(Object.entries(LOAD_SETTINGS).filter(([name]) => known.has(name))),
    ...env,
  };
  const serviceLog = logWatcher();
  const serviceFlags = profileDir ? profileFlags(`${profileDir}room-service/`) : [];
  const roomService = group.spawn('room-service', 'node', [...serviceFlags, CLI, 'room-service'], { cpu: serviceCpu, env: baseEnv, onLine: serviceLog.onLine });
  const serviceStarted = await waitFor('room service', () => serviceLog.find('room service listening'), { child: roomService, timeoutMs: 30000 });
  const apiUrl = serviceStarted.api.replace(/\/v1\/rooms$/, '');

  const gatewayLog = logWatcher();
  const nodeFlags = [...gatewayNodeOptions(), ...(profileDir ? profileFlags(profileDir) : [])];
  const gateway = group.spawn('gateway', 'node', [...nodeFlags, CLI, 'gateway'], { cpu: gatewayCpu, env: baseEnv, onLine: gatewayLog.onLine });
  const gatewayStarted = await waitFor('gateway', () => gatewayLog.find('gateway listening'), { child: gateway, timeoutMs: 30000 });
  const wsUrl = new URL(gatewayStarted.url);
  return {
    name: 'roomcast',
    protocol: 'roomcast',
    host: wsUrl.hostname,
    port: Number(wsUrl.port),
    apiUrl,
    metricsUrl: gatewayStarted.metrics,
    server: gateway,
    /** Processes whose CPU is the service's cost besides the gateway (on the other core). */
    helpers: [roomService, nats.child, ...redis.children],
    async createRoom(room) {
      const response = await fetch(`${apiUrl}/v1/rooms/${room}`, {
        method: 'PUT', headers: { authorization: `Bearer ${BENCH_API_KEY}`, 'content-type': 'application/json' }, body: '{}',
      });
      if (response.status !== 200 && response.status !== 201) throw new Error(`PUT /v1/rooms/${room}: HTTP ${response.status} ${await response.text()}`);
    },
    async lastSeq(room) {
      const response = await fetch(`${apiUrl}/v1/rooms/${room}`, { headers: { authorization: `Bearer ${BENCH_API_KEY}` } });
      if (!response.ok) throw new Error(`GET /v1/rooms/${room}: HTTP ${response.status}`);
      const body = await response.json();
      return body.lastSeq ?? body.seq ?? 0;
    },
    async stop() {
      // The gateway first, so its connections close before the bus and stores go away (and its profile is written).
      await group.stop(gateway, 20000);
      // The room service before NATS and Redis: its shutdown drains the bus (and writes its profile).
      await group.stop(roomService, 20000);
      await Promise.all([nats.child, ...redis.children].map((child) => group.stop(child)));
      if (redis.dir) rmSync(redis.dir, { recursive: true, force: true });
    },
  };
}

/** The limit peer, alone (`limit`) or also taking the senders' sends (`limit-sends`): see limit-peer.mjs. */
export const LIMIT_PEERS = ['limit', 'limit-sends'];

export function isLimitPeer(name) {
  return LIMIT_PEERS.includes(name);
}

/**
 * Starts a peer server from bench/peers/ on `cpu`. The Socket.IO peer with `nodes` 2 runs two
 * servers joined by its Redis adapter (redis-server on `otherCpu`); clients are split between them.
 */
export async function startPeer(group, peer, { cpu, otherCpu, nodes = 1 }) {
  const script = `${PEERS}${{ ws: 'ws-peer.mjs', limit: 'limit-peer.mjs', 'limit-sends': 'limit-peer.mjs', socketio: 'socketio-peer.mjs' }[peer]}`;
  const limit = isLimitPeer(peer);
  const redis = peer === 'socketio' && nodes > 1 ? await startRedis(group, otherCpu) : null;
  const servers = [];
  for (let i = 0; i < nodes; i++) {
    let port = 0;
    const child = group.spawn(`${peer}-peer-${i}`, 'node', [script], {
      cpu,
      env: { BENCH_PEER_PORT: '0', ...(redis ? { BENCH_PEER_REDIS_URL: redis.url } : {}), ...(peer === 'limit-sends' ? { BENCH_LIMIT_ACK_SENDS: '1' } : {}) },
      onLine: (line) => { const match = /^listening (\d+)$/.exec(line.trim()); if (match) port = Number(match[1]); },
    });
    await waitFor(`${peer} peer`, () => port, { child });
    servers.push({ child, port });
  }
  return {
    name: nodes > 1 ? `${peer}×${nodes}` : peer,
    // The limit peer speaks the ws peer's subset of Roomcast's protocol.
    protocol: peer === 'socketio' ? 'socketio' : 'ws-peer',
    host: '127.0.0.1',
    port: servers[0].port,
    ports: servers.map((server) => server.port),
    metricsUrl: null,
    server: servers[0].child,
    servers: servers.map((server) => server.child),
    helpers: redis ? [redis.child] : [],
    /** Every peer but `limit` takes the senders' sends (`limit-sends` acks them while it publishes Roomcast's frames). */
    takesSends: peer !== 'limit',
    async createRoom() { /* peers create rooms on first join */ },
    /**
     * The limit peer publishes by itself (see limit-peer.mjs): recorded step `step` of Roomcast's
     * frames, or else `rate` msg/s over the rooms, batched every `windowMs` into frames of at most
     * `maxMessages`, for `durationMs`; resolves when done.
     */
    drive: !limit ? undefined : async ({ rate, windowMs, maxMessages, durationMs, textBytes, rooms, step }) => {
      const query = step === undefined
        ? new URLSearchParams({ rate, windowMs, maxMessages, durationMs, textBytes, rooms: rooms.prefix, roomCount: rooms.count })
        : new URLSearchParams({ step });
      const response = await fetch(`http://127.0.0.1:${servers[0].port}/drive?${query}`, { method: 'POST', signal: AbortSignal.timeout(durationMs + 60000) });
      if (!response.ok) throw new Error(`limit peer /drive: HTTP ${response.status} ${await response.text()}`);
      return response.json();
    },
    /** The limit peer replays these recorded frames of Roomcast's (see limit-peer.mjs, POST /replay). */
    replay: !limit ? undefined : async ({ files, stepStartsUs }) => {
      const response = await fetch(`http://127.0.0.1:${servers[0].port}/replay`, { method: 'POST', body: JSON.stringify({ files, stepStartsUs }), signal: AbortSignal.timeout(120000) });
      if (!response.ok) throw new Error(`limit peer /replay: HTTP ${response.status} ${await response.text()}`);
      return response.json();
    },
    async lastSeq(room) {
      // Each peer server tells a room's last seq on GET /seq?room=R; with several nodes, the highest.
      let best = 0;
      for (const server of servers) {
        const response = await fetch(`http://127.0.0.1:${server.port}/seq?room=${encodeURIComponent(room)}`);
        best = Math.max(best, Number(await response.text()));
      }
      return best;
    },
    async stop() {
      await Promise.all([...servers.map((server) => group.stop(server.child)), ...(redis ? [group.stop(redis.child)] : [])]);
    },
  };
}

/** The gateway's two drop counters: per message, and per message × connection (sampled, backpressure). */
const DROP_METRICS = ['roomcast_gateway_dropped_messages_total{', 'roomcast_gateway_dropped_deliveries_total{'];

/** Sums the gateway's dropped messages and deliveries by reason (and priority) from its /metrics. */
export async function scrapeDrops(metricsUrl) {
  if (!metricsUrl) return {};
  const text = await (await fetch(metricsUrl)).text();
  const drops = {};
  for (const line of text.split('\n')) {
    if (!DROP_METRICS.some((name) => line.startsWith(name))) continue;
    const labels = line.slice(line.indexOf('{') + 1, line.indexOf('}'));
    const reason = /reason="([^"]*)"/.exec(labels)?.[1] ?? 'unknown';
    const priority = /priority="([^"]*)"/.exec(labels)?.[1];
    const key = priority === undefined ? reason : `${reason}/prio${priority}`;
    drops[key] = (drops[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return drops;
}

/** How many gateway → room service requests of each operation the gateway has made (its request histogram's counts). */
export async function scrapeRequestCounts(metricsUrl) {
  if (!metricsUrl) return {};
  const text = await (await fetch(metricsUrl)).text();
  const counts = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('roomcast_gateway_request_seconds_count{')) continue;
    const op = /op="([^"]*)"/.exec(line)?.[1] ?? 'unknown';
    counts[op] = (counts[op] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return counts;
}

/** `after - before` per key, leaving out zeros. */
export function diffCounts(before, after) {
  const result = {};
  for (const [key, value] of Object.entries(after)) {
    const delta = value - (before[key] ?? 0);
    if (delta !== 0) result[key] = delta;
  }
  return result;
}
