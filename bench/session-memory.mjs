#!/usr/bin/env node
/**
 * Redis memory per online session: registers N device sessions through the real RedisSessionStore
 * (dist/, so `npm run build` first) under a key prefix of its own, with ids shaped like production
 * ones (a Kubernetes pod name as the gateway id, the gateway's connection ids), then reports
 * MEMORY USAGE summed over the session keys, and used_memory before and after, per session. The keys
 * are deleted again at the end; nothing else in the database is touched.
 *
 *   node bench/session-memory.mjs --redis-url redis://default:pw@127.0.0.1:6379 [--sessions 5000] [--devices 1]
 *
 * Compare redis.conf settings by running it against servers started with them, e.g.
 * `redis-server --port 16379 --save '' --hash-max-listpack-value 64` and `... 256`.
 */
import { parseArgs } from 'node:util';
import { RedisSessionStore } from '../dist/src/shared/store/redis-session-store.js';
import { connectRedis } from '../dist/src/shared/store/redis-client.js';
import { silentLogger } from '../dist/src/shared/log.js';

const { values } = parseArgs({
  options: {
    'redis-url': { type: 'string' },
    sessions: { type: 'string', default: '5000' },
    devices: { type: 'string', default: '1' },
  },
});
if (!values['redis-url']) {
  console.error('usage: node bench/session-memory.mjs --redis-url <url> [--sessions N] [--devices D]');
  process.exit(2);
}
const sessions = Number(values.sessions);
const devicesPerUser = Number(values.devices);
const PREFIX = 'rcmem:';
const GATEWAYS = ['roomcast-gateway-7d9f8c6b5d-x2x4q', 'roomcast-gateway-7d9f8c6b5d-9kq7z', 'roomcast-gateway-7d9f8c6b5d-mt5wp'];

const redis = await connectRedis(values['redis-url'], silentLogger);
const store = new RedisSessionStore({ redis, keyPrefix: PREFIX });
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);

const before = await usedMemory();
const users = Math.ceil(sessions / devicesPerUser);
let registered = 0;
for (let user = 0; user < users && registered < sessions; user++) {
  const pending = [];
  for (let device = 0; device < devicesPerUser && registered < sessions; device++, registered++) {
    const gatewayId = GATEWAYS[registered % GATEWAYS.length];
    pending.push(store.register({
      uid: `u${(1_000_000 + user).toString()}`, gatewayId, connId: `${gatewayId}-${(registered + 40_000).toString(36)}`,
      device: ['web', 'ios', 'android'][device % 3], connectedAtMs: Date.now(),
    }));
  }
  await Promise.all(pending);
}
const after = await usedMemory();

let keyBytes = 0;
let keys = 0;
const encodings = new Map();
let cursor = '0';
do {
  const [next, batch] = await redis.scan(cursor, 'MATCH', `${PREFIX}user:*`, 'COUNT', 1000);
  cursor = next;
  for (const key of batch) {
    keyBytes += Number(await redis.memory('USAGE', key, 'SAMPLES', 0));
    const encoding = await redis.object('ENCODING', key);
    encodings.set(encoding, (encodings.get(encoding) ?? 0) + 1);
    keys++;
  }
} while (cursor !== '0');

const [, listpackValue] = await redis.config('GET', 'hash-max-listpack-value').catch(() => [null, '?']);
console.log(JSON.stringify({
  sessions: registered, users, devicesPerUser, keys,
  hashMaxListpackValue: listpackValue,
  encodings: Object.fromEntries(encodings),
  memoryUsageBytesPerSession: Math.round(keyBytes / registered),
  usedMemoryBytesPerSession: Math.round((after - before) / registered),
}));

// Clean up our keys only.
cursor = '0';
do {
  const [next, batch] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
  cursor = next;
  if (batch.length > 0) await redis.del(...batch);
} while (cursor !== '0');
await redis.quit();
