/**
 * The online registry on Redis.
 *
 * Key layout (`rc:` is the default prefix; `{uid}` is the Redis Cluster hash tag):
 *
 *   rc:user:{<uid>}:online   HASH  "<gatewayId>/<connId>" → "<epoch>:<connectedAtMs>:<device>"
 *
 * The value is a short string, not a record: uid, gateway and connection are already in the key and
 * field, and a device session is the registry's largest population (one per online connection).
 *
 * A lookup reads many users' hashes with one script call; on a Cluster, one per primary, allowed to
 * read across the slots that primary serves.
 *
 * Sessions carry no TTL (a gateway does no per-connection work on its heartbeat): readers ignore the
 * sessions of gateway instances that are over, and delete them on the way without waiting.
 */
import type { RedisConnection } from './redis-client.js';
import type { Cluster, Redis, Result } from 'ioredis';
import { slotOfTag } from './key-slot.js';
import { defineScripts, DEFAULT_KEY_PREFIX, type RedisArg as Arg } from './redis-commands.js';
import type { Uid } from '../protocol/frames.js';
import type { GatewayId } from '../protocol/bus-messages.js';
import type { ConnId, DeviceSession, InstanceLiveness, SessionStore } from './session-store.js';

export interface RedisSessionStoreOptions {
  /** The connection belongs to the caller, who also closes it. */
  redis: RedisConnection;
  /** Prefix of every key; `rc:` by default. */
  keyPrefix?: string;
}

const SESSION_VALUE_PATTERN = /^(\d+):(\d+):(.*)$/s;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    roomcastOnlineRead(...args: Arg[]): Result<Array<number | string>, Context>;
  }
}

// Lua `online_read(keys)`: every entry of the online hashes `keys` as a triple: the key's position
// (from 1), the field, the value. Keys with no entry (offline users, often most of a group) add
// nothing to the reply.
const ONLINE_READ_LUA = `
local function online_read(keys)
  local out, n = {}, 0
  for i, key in ipairs(keys) do
    local hash = redis.call('HGETALL', key)
    for j = 1, #hash, 2 do
      out[n + 1], out[n + 2], out[n + 3] = i, hash[j], hash[j + 1]
      n = n + 3
    end
  end
  return out
end
`;

/**
 * The same read on one Cluster primary, over keys of several of the slots it serves (Redis 7's
 * script flags). The keys come as arguments: declared keys must share one slot, while keys a
 * script reaches at run time may be in any slot of the node it runs on (else the call fails).
 */
const CROSS_SLOT_ONLINE_READ = `#!lua flags=no-writes,allow-cross-slot-keys${ONLINE_READ_LUA}return online_read(ARGV)`;

const SCRIPTS = {
  roomcastOnlineRead: { lua: `${ONLINE_READ_LUA}return online_read(KEYS)` },
} as const;

/**
 * The positions of `uids` grouped by the primary that serves their online hash's slot, by the
 * client's slot map; positions whose primary is unknown (the map not loaded yet) under `null`.
 */
function byPrimary(cluster: Cluster, uids: readonly Uid[]): Map<Redis | null, number[]> {
  const primaries = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
  const groups = new Map<Redis | null, number[]>();
  uids.forEach((uid, at) => {
    const node = primaries.get(cluster.slots[slotOfTag(uid)]?.[0] ?? '') ?? null;
    const group = groups.get(node);
    if (group) group.push(at);
    else groups.set(node, [at]);
  });
  return groups;
}

export class RedisSessionStore implements SessionStore {
  private readonly redis: RedisConnection;
  private readonly keyPrefix: string;

  constructor(options: RedisSessionStoreOptions) {
    this.redis = options.redis;
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    defineScripts(this.redis, SCRIPTS);
  }

  async register(session: DeviceSession): Promise<void> {
    await this.redis.hset(this.onlineKey(session.uid), deviceField(session.gatewayId, session.connId), `${session.epoch}:${session.connectedAtMs}:${session.device}`);
  }

  async unregister(uid: Uid, gatewayId: GatewayId, connId: ConnId): Promise<void> {
    await this.redis.hdel(this.onlineKey(uid), deviceField(gatewayId, connId));
  }

  async lookup(uids: readonly Uid[], isLive: InstanceLiveness): Promise<Map<Uid, DeviceSession[]>> {
    const found = new Map<Uid, DeviceSession[]>();
    if (uids.length === 0) return found;
    const entries = await this.read(uids);
    for (let i = 0; i < entries.length; i += 3) {
      const uid = uids[(entries[i] as number) - 1]!;
      const field = entries[i + 1] as string;
      const session = parseSession(uid, field, entries[i + 2] as string);
      if (session && isLive(session)) {
        const devices = found.get(uid);
        if (devices) devices.push(session);
        else found.set(uid, [session]);
      } else {
        // Not awaited: cleaning up is not the caller's business, and a failed cleanup is retried by the next reader.
        this.redis.hdel(this.onlineKey(uid), field).catch(() => undefined);
      }
    }
    return found;
  }

  /**
   * Every entry of the uids' online hashes, flat: the uid's position in `uids` (from 1), the field,
   * the value. One Redis: one script call for all of them, so a group message's lookup of a thousand
   * members is one command, and members with no device add nothing to its reply. A Cluster spreads
   * the hashes over the slots: one script call per primary for the uids whose slots it serves.
   */
  private async read(uids: readonly Uid[]): Promise<Array<number | string>> {
    if (!this.redis.isCluster) return this.redis.roomcastOnlineRead(uids.length, ...uids.map((uid) => this.onlineKey(uid)));
    const groups = byPrimary(this.redis as Cluster, uids);
    const parts = await Promise.all([...groups].map(([node, positions]) => this.readOnPrimary(node, uids, positions)));
    return parts.flat();
  }

  /**
   * The entries of the uids at `positions` (from 0), all in slots of `node` by the client's slot map.
   * When the map is stale (a slot moved) or the node refuses the script, each hash is read on its own,
   * through the Cluster client, which follows MOVED and ASK; one at a time, because an auto-pipelined
   * batch that meets a moved slot fails whole.
   */
  private async readOnPrimary(node: Redis | null, uids: readonly Uid[], positions: number[]): Promise<Array<number | string>> {
    if (node) {
      try {
        const entries = await node.eval(CROSS_SLOT_ONLINE_READ, 0, ...positions.map((at) => this.onlineKey(uids[at]!))) as Array<number | string>;
        for (let i = 0; i < entries.length; i += 3) entries[i] = positions[(entries[i] as number) - 1]! + 1;
        return entries;
      } catch {
        // Read one by one below.
      }
    }
    const entries: Array<number | string> = [];
    for (const at of positions) {
      for (const [field, value] of Object.entries(await this.redis.hgetall(this.onlineKey(uids[at]!)))) entries.push(at + 1, field, value);
    }
    return entries;
  }

  /** The connection belongs to whoever made it; there is nothing else to release. */
  async close(): Promise<void> {}

  private onlineKey(uid: Uid): string {
    return `${this.keyPrefix}user:{${uid}}:online`;
  }
}

function deviceField(gatewayId: GatewayId, connId: ConnId): string {
  return `${gatewayId}/${connId}`;
}

/** Null for an entry this version cannot read (an older layout): the caller deletes it. */
function parseSession(uid: Uid, field: string, value: string): DeviceSession | null {
  const slash = field.indexOf('/');
  const match = SESSION_VALUE_PATTERN.exec(value);
  if (slash < 0 || !match) return null;
  return {
    uid, gatewayId: field.slice(0, slash), connId: field.slice(slash + 1),
    epoch: Number(match[1]), connectedAtMs: Number(match[2]), device: match[3]!,
  };
}
