#!/usr/bin/env node
// Completes package-lock.json with the other platforms' optional packages (rollup, msgpackr-extract,
// ...) when the registry this lock was made against could not resolve them: without those entries
// `npm ci` refuses the lock as out of sync. npm skips the entries on install by their os/cpu/libc.
// Run after `npm install` changed the lock: node .ci/complete-lock.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const OSES = ['darwin', 'linux', 'win32', 'freebsd', 'openbsd', 'netbsd', 'android', 'openharmony', 'sunos', 'aix'];
const CPUS = ['x64', 'arm64', 'arm', 'ia32', 'ppc64', 'riscv64', 's390x', 'loong64', 'mips64el'];
const ARM_ABIS = ['eabi', 'gnueabihf', 'musleabihf'];

function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const os = parts.find((part) => OSES.includes(part));
  const cpu = parts.find((part) => CPUS.includes(part)) ?? (parts.some((part) => ARM_ABIS.includes(part)) ? 'arm' : undefined);
  if (!os || !cpu) return null;
  const musl = parts.includes('musl') || parts.includes('musleabihf');
  const glibc = parts.includes('gnu') || parts.includes('gnueabihf');
  return { os: [os], cpu: [cpu], ...(os === 'linux' && (musl || glibc) ? { libc: [musl ? 'musl' : 'glibc'] } : {}) };
}

let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, range] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${path ? `${path}/` : ''}node_modules/${name}`;
    const hoisted = `node_modules/${name}`;
    if (lock.packages[nested] || lock.packages[hoisted]) continue;
    const platform = platformOf(name);
    if (!platform) {
      console.error(`${name}: cannot tell its platform from its name; add its lock entry by hand`);
      process.exitCode = 1;
      continue;
    }
    lock.packages[hoisted] = { version: String(range).replace(/^[\^~=]/, ''), optional: true, ...platform };
    added++;
  }
}
const [root, ...rest] = Object.entries(lock.packages);
lock.packages = Object.fromEntries([root, ...rest.sort(([a], [b]) => a.localeCompare(b))]);
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: ${added} platform entries added`);
