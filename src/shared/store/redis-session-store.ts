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
 * Sessions carry no TTL (a gateway does no per-connection work on its heartbeat): readers ignore the
 * sessions of gateway instances that are over, and delete them on the way without waiting.
 */
import type { RedisConnection } from './redis-client.js';
import { DEFAULT_KEY_PREFIX } from './redis-commands.js';
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

export class RedisSessionStore implements SessionStore {
  private readonly redis: RedisConnection;
  private readonly keyPrefix: string;

  constructor(options: RedisSessionStoreOptions) {
    this.redis = options.redis;
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  }

  async register(session: DeviceSession): Promise<void> {
    await this.redis.hset(this.onlineKey(session.uid), deviceField(session.gatewayId, session.connId), `${session.epoch}:${session.connectedAtMs}:${session.device}`);
  }

  async unregister(uid: Uid, gatewayId: GatewayId, connId: ConnId): Promise<void> {
    await this.redis.hdel(this.onlineKey(uid), deviceField(gatewayId, connId));
  }

  async lookup(uids: readonly Uid[], isLive: InstanceLiveness): Promise<Map<Uid, DeviceSession[]>> {
    if (uids.length === 0) return new Map();
    // Separate commands, not a pipeline: the client's auto-pipelining writes them together with every
    // other command of this tick (the lookups of many sends at once).
    const replies = await Promise.all(uids.map((uid) => this.redis.hgetall(this.onlineKey(uid))));
    const found = new Map<Uid, DeviceSession[]>();
    uids.forEach((uid, i) => {
      const devices: DeviceSession[] = [];
      for (const [field, value] of Object.entries(replies[i]!)) {
        const session = parseSession(uid, field, value);
        if (session && isLive(session)) devices.push(session);
        // Not awaited: cleaning up is not the caller's business, and a failed cleanup is retried by the next reader.
        else this.redis.hdel(this.onlineKey(uid), field).catch(() => undefined);
      }
      if (devices.length > 0) found.set(uid, devices);
    });
    return found;
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
