/**
 * Reads a V8 .cpuprofile (written by `node --cpu-prof`) and ranks functions by self time: where the
 * profiled process spent its CPU, not counting the functions it called.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

/**
 * @param {string} path a .cpuprofile
 * @param {number} limit
 * @param {Array<[number, number]> | null} windowsUs only samples inside these [from, to) times count;
 *   V8 stamps samples with CLOCK_MONOTONIC microseconds, the harness's clock (clock.mjs)
 * @returns {Array<{ function: string, location: string, selfMs: number, selfShare: number }>}
 */
export function topSelfTime(path, limit = 15, windowsUs = null) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  // Self time per node from the sample timeline (timeDeltas[i] is the gap before samples[i]).
  const selfUs = new Map();
  let atUs = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    atUs += profile.timeDeltas[i] ?? 0;
    if (windowsUs && !windowsUs.some(([from, to]) => atUs >= from && atUs < to)) continue;
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  const byFunction = new Map();
  let total = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const name = frame.functionName || '(anonymous)';
    // Waiting is not work: shares are of the time the process was busy.
    if (name === '(idle)') continue;
    const file = frame.url ? frame.url.replace(/^file:\/\//, '') : '';
    const location = file ? `${file.startsWith('/') ? relative(process.cwd(), file) : file}:${frame.lineNumber + 1}` : '';
    const key = `${name} ${location}`;
    const entry = byFunction.get(key) ?? { function: name, location, selfUs: 0 };
    entry.selfUs += us;
    byFunction.set(key, entry);
    total += us;
  }
  return [...byFunction.values()]
    .sort((a, b) => b.selfUs - a.selfUs)
    .slice(0, limit)
    .map((entry) => ({ function: entry.function, location: entry.location, selfMs: Math.round(entry.selfUs / 1000), selfShare: total ? entry.selfUs / total : 0 }));
}
