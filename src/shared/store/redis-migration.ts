/**
 * `roomcast migrate`: rewrites the private and group chat state of the single-primary layout into the
 * cluster layout (every script in one slot), in place, on one Redis or on a cluster (each primary is
 * scanned). What moves:
 *
 *   rc:user:{<uid>}:block (SET of targets)     → rc:conv:{<conv>}:block gets uid, for each target
 *   rc:user:{<uid>}:pdedup:<cid>               → rc:conv:{<conv>}:dedup:<len>:<uid>:<cid> (same remaining TTL)
 *   rc:user:{<uid>}:crl (private send bucket)  → rc:conv:{<conv>}:rl:<uid> for each conversation of uid
 *   rc:user:{<uid>}:grl (group send bucket)    → rc:group:{<g>}:rl:<uid> for each group of uid
 *   rc:conv:{<conv>}:seq                       → rc:user:{<uid>}:delivered[conv] = seq, for both users (the old
 *                                                send appended both inboxes in the same step, so they hold it all)
 *
 * The old key is deleted once its contents are written, so a re-run (after a crash, or to pick up what
 * an old room service wrote meanwhile) redoes only what is left; every write is idempotent (set members,
 * a bucket copied only where none exists, the delivered mark raised to a maximum). Inbox references,
 * conversation logs (read in both record formats) and group keys keep their layout.
 */
import type { Logger } from '../log.js';
import { conversationOf } from './inbox-store.js';
import { DEFAULT_KEY_PREFIX } from './redis-commands.js';
import { primariesOf, type RedisConnection } from './redis-client.js';

const SCAN_COUNT = 1000;

export interface MigrationReport {
  blocks: number;
  dedupIds: number;
  privateBuckets: number;
  groupBuckets: number;
  conversations: number;
}

export interface MigrationOptions {
  redis: RedisConnection;
  log: Logger;
  /** Count what would change, write nothing. */
  dryRun: boolean;
  keyPrefix?: string;
}

/** Sets a hash field to max(current, value). */
const MAX_FIELD_LUA = `
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 0
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1`;

export async function migrateChatLayout(options: MigrationOptions): Promise<MigrationReport> {
  const { redis, log, dryRun } = options;
  const prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  const report: MigrationReport = { blocks: 0, dedupIds: 0, privateBuckets: 0, groupBuckets: 0, conversations: 0 };
  const userKey = new RegExp(`^${escape(prefix)}user:\\{([^}]+)\\}:(block|crl|grl|pdedup:(.+))$`);
  const convSeqKey = new RegExp(`^${escape(prefix)}conv:\\{([^}]+)\\}:seq$`);
  const convKey = (conv: string, name: string) => `${prefix}conv:{${conv}}:${name}`;

  const migrateKey = async (key: string): Promise<void> => {
    const seq = convSeqKey.exec(key);
    if (seq) {
      const conv = seq[1]!;
      const last = await redis.get(key);
      report.conversations++;
      if (dryRun || !last) return;
      await Promise.all(conv.split('/').map((uid) => redis.eval(MAX_FIELD_LUA, 1, `${prefix}user:{${uid}}:delivered`, conv, last)));
      return;
    }
    const user = userKey.exec(key);
    if (!user) return;
    const [, uid, kind, cid] = user as unknown as [string, string, string, string | undefined];
    if (kind === 'block') {
      const targets = await redis.smembers(key);
      report.blocks += targets.length;
      if (dryRun) return;
      await Promise.all(targets.map((target) => redis.sadd(convKey(conversationOf(uid, target), 'block'), uid)));
    } else if (cid !== undefined) {
      const [value, ttlMs] = await Promise.all([redis.get(key), redis.pttl(key)]);
      const match = value ? /^(\d+) (\d+) (.+)$/.exec(value) : null;
      if (!match || ttlMs <= 0) return;
      report.dedupIds++;
      if (dryRun) return;
      const [, cseq, untilMs, conv] = match;
      await redis.set(convKey(conv!, `dedup:${uid.length}:${uid}:${cid}`), `${cseq} ${untilMs}`, 'PX', ttlMs, 'NX');
    } else {
      // A bucket protects every conversation (or group) of the user in the old layout: each gets a copy.
      const isPrivate = kind === 'crl';
      const [bucket, ttlMs, owners] = await Promise.all([
        redis.hgetall(key), redis.pttl(key),
        isPrivate ? redis.zrange(`${prefix}user:{${uid}}:convs`, 0, -1) : redis.smembers(`${prefix}user:{${uid}}:groups`),
      ]);
      if (!bucket.tokens || ttlMs <= 0) return;
      if (isPrivate) report.privateBuckets += owners.length;
      else report.groupBuckets += owners.length;
      if (dryRun) return;
      await Promise.all(owners.map(async (owner) => {
        const target = isPrivate ? convKey(owner, `rl:${uid}`) : `${prefix}group:{${owner}}:rl:${uid}`;
        if (await redis.hsetnx(target, 'tokens', bucket.tokens!)) await redis.hset(target, 'ts', bucket.ts ?? '0');
        await redis.pexpire(target, ttlMs);
      }));
    }
    await redis.del(key);
  };

  for (const node of primariesOf(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', SCAN_COUNT);
      await Promise.all(keys.map(migrateKey));
      cursor = next;
    } while (cursor !== '0');
  }
  log.info(dryRun ? 'migration dry run: what would be rewritten' : 'migration done', { ...report });
  return report;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
