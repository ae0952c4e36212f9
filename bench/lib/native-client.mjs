/**
 * The native load client (bench/native/loadclient.c): built with the machine's `cc -O2` into
 * bench/native/build/ when its source is newer than the binary, started pinned like the Node
 * workers, and driven over stdin / stdout lines. `NativeHandle#request` answers the same commands
 * with the same fields as a Node load worker (load-worker.mjs), so the scenarios drive both alike.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createHistogram, serialize } from './hdr-histogram.mjs';
import { signToken } from './token.mjs';

const SOURCE = fileURLToPath(new URL('../native/loadclient.c', import.meta.url));
const BUILD_DIR = fileURLToPath(new URL('../native/build/', import.meta.url));
const BINARY = `${BUILD_DIR}loadclient`;

let built;

/**
 * The client's binary, built if missing or older than its source; null when the machine has no C
 * compiler (the harness then falls back to the Node workers and says so). `reason` says why not.
 */
export function nativeClient() {
  if (built !== undefined) return built;
  try {
    if (!existsSync(BINARY) || statSync(BINARY).mtimeMs < statSync(SOURCE).mtimeMs) {
      mkdirSync(BUILD_DIR, { recursive: true });
      execFileSync('cc', ['-O2', '-o', BINARY, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] });
    }
    built = { binary: BINARY, reason: null };
  } catch (error) {
    const reason = error.code === 'ENOENT' ? 'no C compiler (cc) on the PATH' : `cc failed: ${String(error.stderr ?? error.message).trim().split('\n').slice(0, 3).join(' ')}`;
    built = { binary: null, reason };
  }
  return built;
}

/** The replies each command ends with: answers are matched by them, in order. */
const REPLY_OF = {
  connect: 'connected', send: 'sent', answers: 'answers', 'measure-start': 'measure-started', 'measure-end': 'measured', total: 'total',
  latency: 'latency', storm: 'stormed', audit: 'audited', record: 'recording', 'record-stop': 'recorded', close: 'closed',
};

/** Its histograms have HdrHistogram's buckets ([valueUs, count] pairs): rebuilt into the harness's histogram type. */
function rebuildHistogram(values) {
  const histogram = createHistogram();
  for (const [valueUs, count] of values) histogram.recordValueWithCount(valueUs, count);
  const encoded = serialize(histogram);
  histogram.destroy?.();
  return encoded;
}

export class NativeHandle {
  /**
   * @param {import('./processes.mjs').ProcessGroup} group
   * @param {string} name
   * @param {object} config  the same config a Node worker gets in `init` (load-worker.mjs)
   * @param {string} cpu
   */
  constructor(group, name, config, cpu) {
    this.name = name;
    this.config = config;
    this.waiting = new Map(Object.values(REPLY_OF).map((ev) => [ev, []]));
    this.failed = null;
    const socketio = config.protocol === 'socketio';
    // The tokens go in a file (one per line, in connection order), read once at start-up. The
    // Socket.IO peer takes none.
    this.tokensFile = socketio ? null : `${tmpdir()}/roomcast-bench-tokens-${process.pid}-${name}.txt`;
    if (this.tokensFile) {
      const lines = [];
      for (let i = 0; i < config.count; i++) lines.push(signToken(config.secret, `${config.uidPrefix}${config.startIndex + i}`));
      writeFileSync(this.tokensFile, `${lines.join('\n')}\n`);
    }
    const args = [
      '--host', config.host, '--port', String(config.port), ...(this.tokensFile ? ['--tokens', this.tokensFile] : []),
      '--start-index', String(config.startIndex), '--count', String(config.count),
      '--room-prefix', config.rooms.prefix, '--room-count', String(config.rooms.count),
      '--per-address', String(config.perAddress), '--concurrency', String(config.connectConcurrency),
      '--track-seqs', config.trackSeqs ? '1' : '0', '--sampled', config.sampled.join(',') || '-',
      '--uid-prefix', config.uidPrefix, '--mode', config.mode, '--track-answers', config.trackAnswers ? '1' : '0',
      ...(config.group ? ['--group', config.group] : []),
      ...(socketio ? ['--socketio', '1'] : []),
      ...(config.pollUs ? ['--poll-us', String(config.pollUs)] : []),
      // Several Socket.IO nodes: connection i goes to ports[i % n].
      ...(config.ports?.length > 1 ? ['--ports', config.ports.join(',')] : []),
    ];
    this.ready = new Promise((resolve, reject) => { this.waiting.set('ready', [{ resolve, reject }]); });
    this.child = group.spawn(name, nativeClient().binary, args, { cpu, stdin: true, onLine: (line) => this.onLine(line) });
    this.child.on('exit', (code, signal) => {
      this.failed = `${name} exited (${code ?? signal}):\n${this.child.outputTail ?? ''}`;
      for (const queue of this.waiting.values()) for (const waiter of queue.splice(0)) waiter.reject(new Error(this.failed));
    });
    this.ready.finally(() => {
      if (!this.tokensFile) return;
      try { unlinkSync(this.tokensFile); } catch { /* gone */ }
    }).catch(() => undefined);
  }

  onLine(line) {
    if (!line.startsWith('{"ev"')) return; // its stderr (start-up errors) stays in outputTail
    const reply = JSON.parse(line);
    if (reply.ev === 'failed') {
      for (const queue of this.waiting.values()) for (const waiter of queue.splice(0)) waiter.reject(new Error(`${this.name}: ${reply.error}`));
      return;
    }
    this.waiting.get(reply.ev)?.shift()?.resolve(reply);
  }

  /** Sends one command line and resolves with its reply, shaped like a Node worker's. */
  async request(cmd, fields = {}) {
    if (cmd === 'init') return this.ready;
    if (this.failed) throw new Error(this.failed);
    await this.ready;
    let line;
    switch (cmd) {
      case 'connect': line = `connect ${fields.timeoutMs}`; break;
      // No deadline (0) where the caller times no answers (the reconnect storm).
      case 'send': line = `send ${fields.rate} ${fields.durationMs} ${fields.textBytes} ${fields.answerDeadlineMs ?? 0}`; break;
      case 'measure-start': line = `measure-start ${Math.floor(fields.fromUs)} ${Math.ceil(fields.toUs)}`; break;
      case 'storm': line = `storm ${fields.windowMs} ${fields.timeoutMs}`; break;
      case 'audit': {
        // Room number r is `${prefix}${r}` (or the prefix itself for one room).
        const { prefix, count } = this.config.rooms;
        const seqs = Array.from({ length: count }, (_, r) => fields.finalSeqs[count === 1 ? prefix : `${prefix}${r}`] ?? -1);
        line = `audit ${count} ${seqs.join(' ')}`;
        break;
      }
      case 'record': line = `record ${fields.path} ${fields.first} ${fields.count}`; break;
      case 'measure-end': case 'total': case 'latency': case 'answers': case 'record-stop': case 'close': line = cmd; break;
      default: throw new Error(`${this.name}: the native client does not do '${cmd}'`);
    }
    // It exits right after answering `close`, maybe before the harness stops it.
    if (cmd === 'close') this.child.expectedExit = true;
    const reply = await new Promise((resolve, reject) => {
      this.waiting.get(REPLY_OF[cmd]).push({ resolve, reject });
      this.child.stdin.write(`${line}\n`);
    });
    if (cmd === 'answers') {
      const { values, ...counts } = reply;
      return { ...counts, histogram: rebuildHistogram(values) };
    }
    if (cmd !== 'latency') return reply;
    return {
      ev: 'latency', totalMessages: reply.totalMessages, sampledMessages: reply.sampledMessages,
      histogram: rebuildHistogram(reply.values), serverTsHistogram: rebuildHistogram(reply.tsValues),
      ...(reply.storedValues ? { ackHistogram: rebuildHistogram(reply.storedValues) } : {}),
    };
  }
}
