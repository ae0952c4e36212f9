/**
 * `roomcast migrate` on data written in the single-primary layout (keys as the releases before the
 * cluster layout wrote them): after it, the new stores read everything back, refuse what the old state
 * refused, go on with the right seqs, and a second run changes nothing. The built CLI migrates a
 * single Redis (dry run first); the same function migrates a 3-primary cluster.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { encodeRecord } from '../../src/shared/codec/codec.js';
import { silentLogger } from '../../src/shared/log.js';
import type { RedisConnection } from '../../src/shared/store/redis-client.js';
import { RedisGroupStore } from '../../src/shared/store/redis-group-store.js';
import { RedisInboxStore } from '../../src/shared/store/redis-inbox-store.js';
import { migrateChatLayout, type MigrationReport } from '../../src/shared/store/redis-migration.js';
import { useContractRedis } from '../helpers/contract-redis.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const NOW = 1_700_000_000_000;
const RETENTION = { count: 100, maxAgeMs: 3_600_000, dedupTtlMs: 600_000 };
const RATE = { ratePerSec: 1, burst: 5 };

const contractRedis = useContractRedis();

/** What the old send script wrote for `texts` between alice and bob, alternating senders, plus blocks, a dedup id and buckets. */
async function writeOldLayout(redis: RedisConnection): Promise<void> {
  const conv = 'alice/bob';
  let aliceSeq = 0;
  let bobSeq = 0;
  const texts = ['one', 'two', 'three'];
  for (const [i, text] of texts.entries()) {
    const from = i % 2 === 0 ? 'alice' : 'bob';
    const to = from === 'alice' ? 'bob' : 'alice';
    const ts = NOW + i;
    const ref = `${ts}:${i + 1}:${conv}`;
    aliceSeq++;
    bobSeq++;
    await redis.rpush('rc:user:{alice}:inbox', ref);
    await redis.rpush('rc:user:{bob}:inbox', ref);
    const fseq = from === 'alice' ? aliceSeq : bobSeq;
    const rseq = from === 'alice' ? bobSeq : aliceSeq;
    await redis.rpush(`rc:conv:{${conv}}:log`, Buffer.concat([Buffer.from(`${ts}:${fseq}:${rseq}:`), Buffer.from(encodeRecord({ from, to, text, cid: `c${i}` }))]));
  }
  await redis.set(`rc:conv:{${conv}}:seq`, texts.length);
  await redis.set('rc:user:{alice}:iseq', aliceSeq);
  await redis.set('rc:user:{bob}:iseq', bobSeq);
  for (const uid of ['alice', 'bob']) await redis.zadd(`rc:user:{${uid}}:convs`, NOW + 2, conv);
  await redis.hset('rc:user:{alice}:read', conv, 3);
  // carol blocks dave; alice's id c0 is remembered; alice's private and group buckets are empty.
  await redis.sadd('rc:user:{carol}:block', 'dave');
  await redis.set('rc:user:{alice}:pdedup:c0', `1 ${NOW + 600_000} ${conv}`, 'PX', 600_000);
  await redis.hset('rc:user:{alice}:crl', 'tokens', 0, 'ts', NOW);
  await redis.pexpire('rc:user:{alice}:crl', 60_000);
  await redis.hset('rc:user:{alice}:grl', 'tokens', 0, 'ts', NOW);
  await redis.pexpire('rc:user:{alice}:grl', 60_000);
}

async function expectMigrated(redis: RedisConnection): Promise<void> {
  const inbox = new RedisInboxStore({ redis, retention: RETENTION });
  const groups = new RedisGroupStore({ redis, limits: { ...RETENTION, maxMembers: 100 } });
  const bobPage = await inbox.sync('bob', 'web', undefined, 100, NOW);
  expect(bobPage.msgs.map((m) => [m.seq, m.cseq, m.from, m.text])).toEqual([[1, 1, 'alice', 'one'], [2, 2, 'bob', 'two'], [3, 3, 'alice', 'three']]);
  expect((await inbox.history('alice', 'bob', undefined, 10, NOW)).msgs.map((m) => m.text)).toEqual(['one', 'two', 'three']);
  expect((await inbox.conversations('alice', 10)).map((c) => [c.peer, c.lastSeq, c.readSeq])).toEqual([['bob', 3, 3]]);
  // The block, the remembered id and the empty buckets hold as before.
  expect(await inbox.isBlocked('carol', 'dave')).toBe(true);
  expect(await inbox.send({ from: 'dave', to: 'carol', cid: 'x', text: 'hi', nowMs: NOW, rate: RATE })).toEqual({ status: 'rejected', code: 'blocked' });
  const retried = await inbox.send({ from: 'alice', to: 'bob', cid: 'c0', text: 'one', nowMs: NOW + 10, rate: RATE });
  expect(retried).toMatchObject({ status: 'duplicate', message: { cseq: 1, text: 'one' } });
  expect(await inbox.send({ from: 'alice', to: 'bob', cid: 'new', text: 'four', nowMs: NOW + 10, rate: RATE })).toEqual({ status: 'rejected', code: 'rate_limited' });
  expect(await groups.send({ group: 'team', from: 'alice', cid: 'g', text: 'hi', nowMs: NOW + 10, rate: RATE })).toEqual({ status: 'rejected', code: 'rate_limited' });
  // Once the bucket refills, a new message takes the next seqs, and the inboxes get only it.
  const later = NOW + 2_000;
  const sent = await inbox.send({ from: 'alice', to: 'bob', cid: 'new', text: 'four', nowMs: later, rate: RATE });
  if (sent.status !== 'stored') throw new Error(`expected stored, got ${sent.status}`);
  expect(sent.message.cseq).toBe(4);
  expect(await inbox.deliver(sent.message, later)).toEqual({ senderSeq: 4, recipientSeq: 4 });
  expect((await inbox.sync('bob', 'web', 3, 100, later)).msgs.map((m) => [m.seq, m.text])).toEqual([[4, 'four']]);
  expect((await groups.send({ group: 'team', from: 'alice', cid: 'g', text: 'hi', nowMs: later, rate: RATE })).status).toBe('stored');
}

const NOTHING_LEFT: Omit<MigrationReport, 'conversations'> = { blocks: 0, dedupIds: 0, privateBuckets: 0, groupBuckets: 0 };

describe('roomcast migrate', () => {
  beforeEach(async () => {
    await contractRedis.flushAll();
  });

  it('migrates a single Redis with the CLI: a dry run changes nothing, a second run nothing more', async () => {
    if (!existsSync(CLI)) throw new Error('dist/src/cli.js is missing: run `npm run build` (npm test does)');
    // An operator runs the migration as Redis's default user.
    const redis = contractRedis.admin();
    await new RedisGroupStore({ redis, limits: { ...RETENTION, maxMembers: 100 } }).create('team', 'alice', ['bob'], NOW);
    await writeOldLayout(redis);
    const { port, password } = redis.options as { port: number; password?: string };
    const url = `redis://${password ? `default:${encodeURIComponent(password)}@` : ''}127.0.0.1:${port}`;
    // The report is the last line of the output, after the JSON log lines.
    const cli = async (...args: string[]) => {
      const { stdout } = await run(process.execPath, [CLI, 'migrate', '--redis-url', url, ...args]);
      return JSON.parse(stdout.trim().split('\n').pop()!) as MigrationReport;
    };
    const counts = { blocks: 1, dedupIds: 1, privateBuckets: 1, groupBuckets: 1, conversations: 1 };
    expect(await cli('--dry-run')).toEqual({ dryRun: true, ...counts });
    expect(await redis.exists('rc:user:{carol}:block', 'rc:user:{alice}:crl', 'rc:user:{alice}:pdedup:c0')).toBe(3);
    expect(await cli()).toEqual({ dryRun: false, ...counts });
    expect(await cli()).toEqual({ dryRun: false, ...NOTHING_LEFT, conversations: 1 });
    await expectMigrated(redis);
  });

  it('migrates a Redis Cluster, every primary', async () => {
    const redis = contractRedis.targets.find((target) => target.name === 'redis-cluster')!.redis();
    await new RedisGroupStore({ redis, limits: { ...RETENTION, maxMembers: 100 } }).create('team', 'alice', ['bob'], NOW);
    await writeOldLayout(redis);
    expect(await migrateChatLayout({ redis, log: silentLogger, dryRun: false })).toEqual({ blocks: 1, dedupIds: 1, privateBuckets: 1, groupBuckets: 1, conversations: 1 });
    expect(await migrateChatLayout({ redis, log: silentLogger, dryRun: false })).toEqual({ ...NOTHING_LEFT, conversations: 1 });
    await expectMigrated(redis);
  });
});
