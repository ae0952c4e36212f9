/**
 * A server's socket syscalls over a measured window, from `perf stat` on the kernel's syscall
 * tracepoints: counted in the kernel, with none of strace's cost, so the server runs as it would.
 * Writes per delivery are a cost figure that does not move with the machine's speed (a VM that is
 * three times slower one day still makes the same writes), and the kernel floor is one write per
 * frame written. Null where perf or the tracepoints are missing (not root, no perf): the report then
 * leaves the figures out.
 */
import { spawn, spawnSync } from 'node:child_process';

/** What each tracepoint counts towards. */
const EVENTS = {
  'syscalls:sys_enter_sendto': 'writes',
  'syscalls:sys_enter_write': 'writes',
  'syscalls:sys_enter_writev': 'writes',
  'syscalls:sys_enter_recvfrom': 'reads',
  'syscalls:sys_enter_read': 'reads',
  'syscalls:sys_enter_epoll_pwait': 'polls',
  'syscalls:sys_enter_epoll_wait': 'polls',
};

/** `perf stat` counting every tracepoint above, comma-separated; the target (a command or `-p`) follows. */
const PERF_STAT = ['stat', '-x', ',', '-e', Object.keys(EVENTS).join(',')];

let available;

/** Whether `perf stat` can count the tracepoints here (checked once). */
function syscallCountingAvailable() {
  available ??= spawnSync('perf', [...PERF_STAT, 'true'], { stdio: 'ignore' }).status === 0;
  return available;
}

/**
 * Starts counting the syscalls of `pids`; `stop()` ends the count and resolves to
 * `{writes, reads, polls}`, or null when counting is not possible or failed.
 */
export function countSyscalls(pids) {
  if (!syscallCountingAvailable() || pids.length === 0) return { stop: async () => null };
  const perf = spawn('perf', [...PERF_STAT, '-p', pids.join(',')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  perf.stderr.on('data', (chunk) => { output += chunk; });
  const exited = new Promise((resolve) => { perf.on('close', resolve); perf.on('error', () => resolve(null)); });
  return {
    async stop() {
      perf.kill('SIGINT');
      await exited;
      return parsePerfStat(output);
    },
  };
}

/** `perf stat -x ,` output (one `count,unit,event,...` line per event) summed into writes, reads and polls; null without them. */
export function parsePerfStat(output) {
  const counts = { writes: 0, reads: 0, polls: 0 };
  let seen = 0;
  for (const line of output.split('\n')) {
    const [count, , event] = line.split(',');
    const kind = EVENTS[event?.trim()];
    const value = Number(count);
    if (!kind || !Number.isFinite(value) || count === '') continue;
    counts[kind] += value;
    seen++;
  }
  return seen > 0 ? counts : null;
}
