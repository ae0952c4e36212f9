/**
 * What the kernel says about a process and about socket memory: CPU time from /proc/<pid>/stat,
 * resident memory from /proc/<pid>/status, TCP buffer pages from /proc/net/sockstat.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const CLOCK_TICKS_PER_S = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; }
})();
const PAGE_BYTES = (() => {
  try { return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096; } catch { return 4096; }
})();

/** User and system (kernel) CPU time of a process, apart, in microseconds (resolution: one clock tick). */
export function cpuTimesUs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { userUs: (Number(fields[11]) / CLOCK_TICKS_PER_S) * 1e6, systemUs: (Number(fields[12]) / CLOCK_TICKS_PER_S) * 1e6 };
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** TCP sockets in use and the memory of their buffers (the "mem" pages of /proc/net/sockstat), in bytes. */
export function tcpSocketMemory() {
  const sockstat = readFileSync('/proc/net/sockstat', 'utf8');
  const match = /^TCP: inuse (\d+) orphan \d+ tw (\d+) alloc (\d+) mem (\d+)/m.exec(sockstat);
  if (!match) return { inuse: 0, timeWait: 0, alloc: 0, memBytes: 0 };
  return { inuse: Number(match[1]), timeWait: Number(match[2]), alloc: Number(match[3]), memBytes: Number(match[4]) * PAGE_BYTES };
}

/** Kernel slab memory for sockets and TCP (what sockstat "mem" does not count), in bytes, when readable. */
export function socketSlabBytes() {
  try {
    const slab = readFileSync('/proc/slabinfo', 'utf8');
    let total = 0;
    for (const line of slab.split('\n')) {
      const [name, active, , objectSize] = line.trim().split(/\s+/);
      if (/^(TCP|tcp_bind_bucket|sock_inode_cache|request_sock_TCP|skbuff_head_cache|dentry|filp|eventpoll_epi)$/.test(name ?? '')) {
        total += Number(active) * Number(objectSize);
      }
    }
    return total;
  } catch {
    return null;
  }
}

export function machineInfo() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const memTotalKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  let kernel = 'unknown';
  try { kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(); } catch { /* not Linux */ }
  return { cpuModel: model, nproc: cores, memoryGiB: Math.round(memTotalKb / 1024 / 1024), kernel, node: process.version };
}

/**
 * Time the process's main thread spent runnable but waiting for a CPU, in microseconds
 * (/proc/<pid>/schedstat): high values mean other processes took the core, so the figures of
 * that step say more about the machine than about the system under test.
 */
export function runQueueWaitUs(pid) {
  try {
    const [, waitNs] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ');
    return Number(waitNs) / 1000;
  } catch {
    return 0;
  }
}

/**
 * Busy and total time of the listed cores since boot, in clock ticks (/proc/stat): the difference
 * of two readings over a step is how busy those cores were, whoever ran on them.
 * @param {string} cpuList a taskset core list (`0`, `0,2-5`)
 */
export function coreTimes(cpuList) {
  const wanted = new Set();
  for (const part of String(cpuList).split(',')) {
    const [from, to = from] = part.split('-').map(Number);
    for (let cpu = from; cpu <= to; cpu++) wanted.add(cpu);
  }
  let busy = 0; let total = 0;
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const match = /^cpu(\d+) (.*)$/.exec(line);
    if (!match || !wanted.has(Number(match[1]))) continue;
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const [user, nice, system, idle, iowait, irq, softirq, steal] = match[2].trim().split(/\s+/).map(Number);
    busy += user + nice + system + irq + softirq + (steal ?? 0);
    total += user + nice + system + idle + iowait + irq + softirq + (steal ?? 0);
  }
  return { busy, total };
}
