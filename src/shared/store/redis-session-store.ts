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
 * A lookup reads many users' hashes with one script call (a command per uid on a Cluster).
 *
 * Sessions carry no TTL (a gateway does no per-connection work on its heartbeat): readers ignore the
 * sessions of gateway instances that are over, and delete them on the way without waiting.
 */
import type { RedisConnection } from './redis-client.js';
import type { Result } from 'ioredis';
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
    roomcastOnlineRead(...args: Arg[]): Result<string[][], Context>;
  }
}

const SCRIPTS = {
  // KEYS (as many as the first argument says): online hashes. Each one's HGETALL, flat.
  roomcastOnlineRead: {
    lua: `
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out`,
  },
} as const;

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
    const replies = await this.read(uids);
    uids.forEach((uid, i) => {
      const flat = replies[i]!;
      const devices: DeviceSession[] = [];
      for (let j = 0; j < flat.length; j += 2) {
        const session = parseSession(uid, flat[j]!, flat[j + 1]!);
        if (session && isLive(session)) devices.push(session);
        // Not awaited: cleaning up is not the caller's business, and a failed cleanup is retried by the next reader.
        else this.redis.hdel(this.onlineKey(uid), flat[j]!).catch(() => undefined);
      }
      if (devices.length > 0) found.set(uid, devices);
    });
    return found;
  }

  /**
   * Each uid's online hash, flat. One Redis: one script call for all of them, so a group message's
   * lookup of a thousand members is one command and its cost is Redis's, not the client's. A Cluster
   * spreads the hashes over the slots: a command per uid there, which auto-pipelining writes together
   * per node.
   */
  private async read(uids: readonly Uid[]): Promise<string[][]> {
    if (!this.redis.isCluster) return this.redis.roomcastOnlineRead(uids.length, ...uids.map((uid) => this.onlineKey(uid)));
    const hashes = await Promise.all(uids.map((uid) => this.redis.hgetall(this.onlineKey(uid))));
    return hashes.map((hash) => Object.entries(hash).flat());
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
