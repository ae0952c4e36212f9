/**
 * Every process the harness starts goes through here: pinned to a core with taskset, with a raised
 * open-file limit, tracked, and killed when the harness ends — normally, on an error, or on Ctrl-C.
 */
import { spawn, fork, execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { setPriority } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';

/** Ports of developers' own servers (and the defaults of ours): never used by the harness. */
const RESERVED_PORTS = new Set([3000, 4222, 6222, 8222, 6379, 8080, 8081, 9090]);
const STOP_GRACE_MS = 5000;
const OUTPUT_TAIL_CHARS = 8000;

/** Whether `taskset` is on the PATH; without it processes run unpinned and the results say so. */
export const hasTaskset = (() => {
  try { execFileSync('taskset', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
})();

/** The hard open-file limit of this machine's processes: the ceiling for connections per process. */
export const hardNofile = (() => {
  try { return Number(execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || 1024; } catch { return 1024; }
})();

/** A TCP port that was free a moment ago on 127.0.0.1, never a standard one. */
export async function freePort() {
  for (;;) {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
    await new Promise((resolve) => server.close(resolve));
    if (!RESERVED_PORTS.has(port)) return port;
  }
}

/** Pins the harness itself (the coordinator) to `cpu`. */
export function pinSelf(cpu) {
  if (hasTaskset) execFileSync('taskset', ['-a', '-cp', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

/** The niceness of the load generators and the harness (`--load-nice`); 0 leaves them as they are. */
let loadNice = 0;

/**
 * The load shares its core with the room service, NATS and Redis. At the same priority a burst of
 * the clients' reads holds the services behind it in the run queue, and that wait shows up as the
 * services' latency; on machines of their own they would not have it. So the load runs nicer: the
 * services get the core first and the clients take what is left (their own waiting still counts
 * against them in "load core busy" and "CPU waited").
 */
export function setLoadNice(nice) {
  loadNice = nice;
  lowerLoadPriority(process.pid);
}

/** Gives every thread of a load process the load's niceness (Linux sets it per thread). */
export function lowerLoadPriority(pid) {
  if (loadNice === 0 || !pid) return;
  let threads;
  try { threads = readdirSync(`/proc/${pid}/task`).map(Number); } catch { threads = [pid]; }
  for (const thread of threads) {
    try { setPriority(thread, loadNice); } catch { /* the thread ended meanwhile */ }
  }
}

/**
 * The harness's environment without ROOMCAST_* settings: the services under test get exactly the
 * settings the harness chose (and they refuse unknown ones).
 */
function inheritedEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('ROOMCAST_')));
}

export class ProcessGroup {
  constructor() {
    /** @type {Set<import('node:child_process').ChildProcess>} */
    this.children = new Set();
    this.stopping = false;
    const killAll = () => { for (const child of this.children) child.kill('SIGKILL'); };
    process.on('exit', killAll);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.on(signal, () => {
        if (this.interrupted) return;
        this.interrupted = true;
        process.stderr.write(`\n${signal}: stopping every process the harness started\n`);
        this.stopAll().finally(() => process.exit(130));
      });
    }
  }

  /**
   * Starts `command args` pinned to `cpu`, with the open-file limit raised as far as allowed.
   * `onLine` sees each line of stdout and stderr (the tail is kept for error messages); `stdin`
   * gives the process a pipe to write commands to (the native load client).
   */
  spawn(name, command, args, { cpu, env = {}, onLine, stdin = false } = {}) {
    const pin = hasTaskset && cpu !== undefined ? `exec taskset -c ${cpu} "$@"` : 'exec "$@"';
    const child = spawn('bash', ['-c', `ulimit -n $(ulimit -Hn); ${pin}`, name, command, ...args], {
      stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: { ...inheritedEnv(), ...env },
    });
    this.track(name, child, onLine);
    return child;
  }

  /** Forks a Node module with an IPC channel (load generators), pinned like `spawn`. */
  fork(name, modulePath, { cpu, execArgv = [] } = {}) {
    const child = fork(modulePath, [], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv,
    });
    if (hasTaskset && cpu !== undefined && child.pid) execFileSync('taskset', ['-a', '-cp', String(cpu), String(child.pid)], { stdio: 'ignore' });
    this.track(name, child);
    return child;
  }

  track(name, child, onLine) {
    this.children.add(child);
    child.benchName = name;
    child.outputTail = '';
    const keep = (stream) => {
      let partial = '';
      stream.setEncoding('utf8').on('data', (chunk) => {
        child.outputTail = (child.outputTail + chunk).slice(-OUTPUT_TAIL_CHARS);
        if (!onLine) return;
        const lines = (partial + chunk).split('\n');
        partial = lines.pop();
        for (const line of lines) onLine(line);
      });
    };
    keep(child.stdout);
    keep(child.stderr);
    child.benchName = name;
    child.exited = once(child, 'exit').catch(() => undefined);
    child.on('exit', (code, signal) => {
      this.children.delete(child);
      if (!this.stopping && !child.expectedExit) {
        process.stderr.write(`bench: ${name} exited unexpectedly (${code ?? signal})\n${child.outputTail.slice(-2000)}\n`);
      }
    });
  }

  /** Stops one process: SIGTERM, then SIGKILL after a grace period. */
  async stop(child, graceMs = STOP_GRACE_MS) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.expectedExit = true;
    const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.kill('SIGTERM');
    await child.exited;
    clearTimeout(killer);
  }

  async stopAll() {
    this.stopping = true;
    await Promise.all([...this.children].map((child) => this.stop(child)));
    this.stopping = false;
  }
}

/** Polls `check` until it returns a truthy value; fails after `timeoutMs` with `what`. */
export async function waitFor(what, check, { timeoutMs = 15000, intervalMs = 50, child } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${what}: the process exited (${child.exitCode ?? child.signalCode}):\n${child.outputTail}`);
    }
    const result = await Promise.resolve().then(check).catch(() => undefined);
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${timeoutMs} ms${child ? `:\n${child.outputTail}` : ''}`);
    await delay(intervalMs);
  }
}
