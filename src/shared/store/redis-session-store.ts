/**
 * The online registry on Redis.
 *
 * Key layout (`rc:` is the default prefix; `{uid}` is the Redis Cluster hash tag):
 *
 *   rc:user:{<uid>}:online   HASH  "<gatewayId>/<connId>" → DeviceSession (codec record)
 *   rc:gateways              HASH  gatewayId → GatewayInfo (codec record); void after its expiresAtMs
 *
 * Sessions carry no TTL (a gateway does no per-connection work on its heartbeat): readers ignore the
 * sessions of gateways that are unknown or whose heartbeat expired, and delete them on the way,
 * without waiting for the deletion.
 */
import type { Result } from 'ioredis';
import type { RedisConnection } from './redis-client.js';
import { asBuffer, DEFAULT_KEY_PREFIX } from './redis-commands.js';
import { decodeRecord, encodeRecord } from '../codec/codec.js';
import type { Uid } from '../protocol/frames.js';
import type { GatewayId } from '../protocol/bus-messages.js';
import type { ConnId, DeviceSession, GatewayInfo, SessionStore } from './session-store.js';


declare module 'ioredis' {
  interface RedisCommander<Context> {
    roomcastHdelIfUnchanged(key: string, field: string, expected: Buffer): Result<number, Context>;
  }
}

/**
 * Deletes a hash field only if it still holds the value the caller read: a gateway that heartbeats
 * between our read and the deletion must not be forgotten (its sessions would then be deleted too).
 */
const HDEL_IF_UNCHANGED_LUA = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`;

export interface RedisSessionStoreOptions {
  /** The connection belongs to the caller, who also closes it. */
  redis: RedisConnection;
  /** Prefix of every key; `rc:` by default. */
  keyPrefix?: string;
}

export class RedisSessionStore implements SessionStore {
  private readonly redis: RedisConnection;
  private readonly keyPrefix: string;
  private readonly gatewaysKey: string;

  constructor(options: RedisSessionStoreOptions) {
    this.redis = options.redis;
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.gatewaysKey = `${this.keyPrefix}gateways`;
    this.redis.defineCommand('roomcastHdelIfUnchanged', { numberOfKeys: 1, lua: HDEL_IF_UNCHANGED_LUA });
  }

  async register(session: DeviceSession): Promise<void> {
    await this.redis.hset(this.onlineKey(session.uid), deviceField(session.gatewayId, session.connId), asBuffer(encodeRecord(session)));
  }

  async unregister(uid: Uid, gatewayId: GatewayId, connId: ConnId): Promise<void> {
    await this.redis.hdel(this.onlineKey(uid), deviceField(gatewayId, connId));
  }

  async heartbeatGateway(info: GatewayInfo): Promise<void> {
    await this.redis.hset(this.gatewaysKey, info.gatewayId, asBuffer(encodeRecord(info)));
  }

  async removeGateway(gatewayId: GatewayId): Promise<void> {
    await this.redis.hdel(this.gatewaysKey, gatewayId);
  }

  async lookup(uids: readonly Uid[], nowMs: number): Promise<Map<Uid, DeviceSession[]>> {
    if (uids.length === 0) return new Map();
    // Separate commands, not a pipeline: the client's auto-pipelining writes them together with every
    // other command of this tick (the lookups of many sends at once).
    const [gatewaysReply, ...onlineReplies] = await Promise.all([
      this.redis.hgetallBuffer(this.gatewaysKey),
      ...uids.map((uid) => this.redis.hgetallBuffer(this.onlineKey(uid))),
    ]);
    const live = this.liveGatewaysOf(gatewaysReply, nowMs);

    const found = new Map<Uid, DeviceSession[]>();
    uids.forEach((uid, i) => {
      const devices: DeviceSession[] = [];
      for (const [field, record] of Object.entries(onlineReplies[i]!)) {
        const session = decodeRecord(record) as DeviceSession;
        if (live.has(session.gatewayId)) devices.push(session);
        // Not awaited: cleaning up is not the caller's business, and a failed cleanup is retried by the next reader.
        else this.redis.hdel(this.onlineKey(uid), field).catch(() => undefined);
      }
      if (devices.length > 0) found.set(uid, devices);
    });
    return found;
  }

  async liveGateways(nowMs: number): Promise<GatewayInfo[]> {
    const reply = await this.redis.hgetallBuffer(this.gatewaysKey);
    return [...this.liveGatewaysOf(reply, nowMs).values()];
  }

  /** The connection belongs to whoever made it; there is nothing else to release. */
  async close(): Promise<void> {}

  /** Decodes the gateways hash, keeping live gateways and deleting expired ones on the way (not awaited). */
  private liveGatewaysOf(records: Record<GatewayId, Buffer>, nowMs: number): Map<GatewayId, GatewayInfo> {
    const live = new Map<GatewayId, GatewayInfo>();
    for (const [gatewayId, record] of Object.entries(records)) {
      const info = decodeRecord(record) as GatewayInfo;
      if (info.expiresAtMs > nowMs) live.set(gatewayId, info);
      else this.redis.roomcastHdelIfUnchanged(this.gatewaysKey, gatewayId, record).catch(() => undefined);
    }
    return live;
  }

  private onlineKey(uid: Uid): string {
    return `${this.keyPrefix}user:{${uid}}:online`;
  }
}

function deviceField(gatewayId: GatewayId, connId: ConnId): string {
  return `${gatewayId}/${connId}`;
}


