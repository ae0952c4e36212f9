/**
 * The load-generator processes of one run: forks them (pinned), hands each its share of the
 * connections, and sends them commands over IPC, in parallel, awaiting every answer.
 */
import { fileURLToPath } from 'node:url';
import { NativeHandle, nativeClient } from './native-client.mjs';
import { hardNofile, lowerLoadPriority } from './processes.mjs';

const WORKER = fileURLToPath(new URL('./load-worker.mjs', import.meta.url));
/** Connections per 127.0.0.x source address: under the ephemeral-port range of one address. */
const PER_SOURCE_ADDRESS = 25000;
const CONNECT_CONCURRENCY = 200;
/** Descriptors a native client keeps besides its sockets (stdio, epoll, the tokens file). */
const NATIVE_FD_MARGIN = 16;

/** How many cores a taskset core list names (`0`, `0,2-5`). */
export function coreCount(list) {
  return String(list).split(',').reduce((sum, part) => {
    const [from, to = from] = part.split('-').map(Number);
    return sum + (to - from + 1);
  }, 0);
}

/**
 * Which client drives a run, viewers and senders alike, for every target (Roomcast, ws, limit and
 * Socket.IO): the native one (bench/native/) unless asked for `node` or the machine has no C
 * compiler. Returns `{ kind: 'native' | 'node', why }`, `why` saying why not native.
 */
export function loadClient(requested) {
  if (requested === 'node') return { kind: 'node', why: '--load-client node' };
  const native = nativeClient();
  if (!native.binary) return { kind: 'node', why: `native client unavailable (${native.reason}): Node workers instead` };
  return { kind: 'native', why: null };
}

/** p50 / p99 / max of each connection set-up phase over every worker's `connect` reply, in ms. */
export function setupPhases(replies) {
  const result = {};
  for (const phase of ['handshakeMs', 'welcomeMs', 'joinMs']) {
    const values = replies.flatMap((reply) => reply.phases?.[phase] ?? []).sort((a, b) => a - b);
    if (values.length === 0) continue;
    const at = (p) => Math.round(values[Math.min(values.length - 1, Math.floor(p * values.length))] * 10) / 10;
    result[phase] = { p50: at(0.5), p99: at(0.99), max: Math.round(values.at(-1) * 10) / 10 };
  }
  return result;
}

class WorkerHandle {
  constructor(child, name) {
    this.child = child;
    this.name = name;
    this.nextId = 0;
    this.pending = new Map();
    child.on('message', (message) => {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.ev === 'failed') waiter.reject(new Error(`${name}: ${message.error}`));
      else waiter.resolve(message);
    });
    // Send failures are reported to the request that made them.
    child.on('error', () => undefined);
    child.on('exit', (code, signal) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${name} exited (${code ?? signal}):\n${child.outputTail ?? ''}`));
      this.pending.clear();
    });
  }

  request(cmd, fields = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.child.connected) { reject(new Error(`${this.name} is gone`)); return; }
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, cmd, ...fields }, (error) => {
        if (!error) return;
        this.pending.delete(id);
        reject(error);
      });
    });
  }
}

/**
 * @param {import('./processes.mjs').ProcessGroup} group
 * @param {object} spec
 * @param {{ protocol: string, host: string, port: number, ports?: number[] }} spec.target
 * @param {string} spec.secret
 * @param {Array<{ role: string, count: number, rooms: { prefix: string, count: number } }>} spec.shares
 *   groups of connections; each is split over `workers` processes (a share with `workers: 1` stays in one)
 * @param {number} spec.sampleCount  connections decoded fully, spread evenly over all connections
 * @param {boolean} [spec.trackSeqs]
 * @param {'room'|'pm'|'gm'} [spec.mode]   `pm`: private-message pairs instead of rooms; `gm`: members of `spec.group`
 * @param {string} [spec.group]
 * @param {string} [spec.uidPrefix]
 * @param {string | null} [spec.profileDir] profile the load generators into this directory
 * @param {'native'|'node'} [spec.client] what drives every share (see loadClient): one native process
 *   per load core and share, or `workers` Node processes per share
 * @param {number} spec.cpu
 */
export async function startFleet(group, spec) {
  const total = spec.shares.reduce((sum, share) => sum + share.count, 0);
  const sampleStep = total / Math.max(1, Math.min(spec.sampleCount, total));
  const sampled = new Set();
  for (let position = sampleStep / 2; position < total && sampled.size < spec.sampleCount; position += sampleStep) sampled.add(Math.floor(position));

  const workers = [];
  let index = 0;
  const client = loadClient(spec.client);
  for (const share of spec.shares) {
    const native = client.kind === 'native';
    // One native process per load core (a single epoll loop keeps a core busy by itself), and
    // more when one process may not open that many sockets (the open-file limit).
    const nativeProcesses = Math.max(coreCount(spec.cpu), Math.ceil(share.count / (hardNofile - NATIVE_FD_MARGIN)));
    const processes = Math.max(1, Math.min(native ? nativeProcesses : share.workers, share.count));
    const base = Math.floor(share.count / processes);
    for (let w = 0; w < processes; w++) {
      const count = base + (w < share.count % processes ? 1 : 0);
      const startIndex = index;
      index += count;
      const name = `load-${share.role}-${w}`;
      const ports = spec.target.ports ?? [spec.target.port];
      const config = {
        protocol: spec.target.protocol,
        host: spec.target.host,
        // Several peer nodes: each Node worker talks to one of them, in turn. A native viewer
        // process spreads its connections over all of them (one process may hold every viewer);
        // senders stay on one node, as the Node sender worker does: senders on two nodes would
        // have the room's messages arrive out of seq order (each node emits its own sends at once,
        // the other's after a Redis round trip), which the seq audit counts as missing + extra.
        port: ports[workers.length % ports.length],
        ...(native && share.role !== 'sender' && ports.length > 1 ? { ports } : {}),
        secret: spec.secret,
        startIndex,
        count,
        rooms: share.rooms,
        sampled: [...sampled].filter((i) => i >= startIndex && i < startIndex + count),
        trackSeqs: spec.trackSeqs ?? false,
        // Only Roomcast answers room sends (`ack` or `error`); the peers do not.
        trackAnswers: share.role === 'sender' && spec.target.protocol === 'roomcast' && (spec.mode ?? 'room') === 'room',
        connectConcurrency: CONNECT_CONCURRENCY,
        perAddress: PER_SOURCE_ADDRESS,
        uidPrefix: spec.uidPrefix ?? (share.role === 'sender' ? 's' : 'v'),
        mode: spec.mode ?? 'room',
        ...(spec.group ? { group: spec.group } : {}),
        // Viewers only: senders already wake when their sends are due (--load-poll-us).
        ...(share.role !== 'sender' && spec.pollUs ? { pollUs: spec.pollUs } : {}),
      };
      if (native) {
        const handle = new NativeHandle(group, `native-${share.role}-${w}`, config, spec.cpu);
        handle.role = share.role;
        handle.count = count;
        await handle.request('init');
        lowerLoadPriority(handle.child.pid);
        workers.push(handle);
        continue;
      }
      const child = group.fork(name, WORKER, { cpu: spec.cpu, execArgv: spec.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${spec.profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [] });
      const handle = new WorkerHandle(child, name);
      handle.role = share.role;
      handle.count = count;
      await handle.request('init', { config });
      lowerLoadPriority(child.pid);
      workers.push(handle);
    }
  }

  const all = (cmd, fields, filter = () => true) => Promise.all(workers.filter(filter).map((worker) => worker.request(cmd, fields)));
  // Processes that only receive (not the senders; all of them in private chat, where every process does both).
  const receivers = workers.some((worker) => worker.role !== 'sender') ? workers.filter((worker) => worker.role !== 'sender') : workers;
  return {
    /** The load processes; `all` answers in this order. */
    workers,
    client: client.kind,
    clientNote: client.why,
    receiverPids: receivers.map((worker) => worker.child.pid),
    isReceiver: (worker) => receivers.includes(worker),
    /** Processes that send (in private chat all of them, which receive too). */
    senderPids: workers.filter((worker) => worker.role === 'sender').map((worker) => worker.child.pid),
    total,
    sampledCount: sampled.size,
    pids: workers.map((worker) => worker.child.pid),
    all,
    senders: () => workers.filter((worker) => worker.role === 'sender'),
    async stop() {
      await all('close', {}).catch(() => undefined);
      await Promise.all(workers.map((worker) => group.stop(worker.child, 3000)));
    },
  };
}
