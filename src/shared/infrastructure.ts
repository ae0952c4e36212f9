/**
 * Builds the bus and the stores a process runs on: NATS and Redis when their addresses are
 * configured, the in-process bus and in-memory stores otherwise (all-in-one). The rest of the code
 * only sees the seams.
 */
import type { Bus } from './bus/bus.js';
import { MemoryBus } from './bus/memory-bus.js';
import { NatsBus } from './bus/nats-bus.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { GroupStore, GroupStoreLimits } from './store/group-store.js';
import type { ChatRetention, InboxStore } from './store/inbox-store.js';
import { MemoryGroupStore } from './store/memory-group-store.js';
import { MemoryInboxStore } from './store/memory-inbox-store.js';
import { MemoryRoomStore } from './store/memory-room-store.js';
import { MemorySessionStore } from './store/memory-session-store.js';
import { connectRedis } from './store/redis-client.js';
import { RedisGroupStore } from './store/redis-group-store.js';
import { RedisInboxStore } from './store/redis-inbox-store.js';
import { RedisRoomStore } from './store/redis-room-store.js';
import { RedisSessionStore } from './store/redis-session-store.js';
import type { RoomStore, RoomStoreLimits } from './store/room-store.js';
import type { SessionStore } from './store/session-store.js';

export interface Infrastructure {
  bus: Bus;
  roomStore: RoomStore;
  sessionStore: SessionStore;
  /** Private chat: conversations, inboxes, cursors. */
  inboxStore: InboxStore;
  /** Group chat: members, group logs, member cursors. */
  groupStore: GroupStore;
  /** 'embedded' or 'distributed', for the start-up log. */
  mode: 'embedded' | 'distributed';
  close(): Promise<void>;
}

export function roomStoreLimits(config: Config): RoomStoreLimits {
  return { historyLimit: config.historyLimit, dedupTtlMs: config.dedupTtlMs, roomIdleTtlMs: config.roomIdleTtlMs };
}

export function chatRetention(config: Config): ChatRetention {
  return { count: config.chatRetentionCount, maxAgeMs: config.chatRetentionMs, dedupTtlMs: config.dedupTtlMs };
}

export function groupStoreLimits(config: Config): GroupStoreLimits {
  return { ...chatRetention(config), maxMembers: config.maxGroupMembers };
}

export async function connectInfrastructure(config: Config, name: string, log: Logger): Promise<Infrastructure> {
  const limits = roomStoreLimits(config);
  const bus: Bus = config.natsUrl
    ? await NatsBus.connect({
      servers: config.natsUrl.split(',').map((url) => url.trim()), name, user: config.natsUser, password: config.natsPassword,
      log: log.child({ component: 'bus' }),
    })
    : new MemoryBus({ onError: (error) => log.error('bus handler failed', { error }) });
  if (!config.redisUrl) {
    return {
      bus, roomStore: new MemoryRoomStore(limits), sessionStore: new MemorySessionStore(),
      inboxStore: new MemoryInboxStore(chatRetention(config)),
      groupStore: new MemoryGroupStore(groupStoreLimits(config)),
      mode: config.natsUrl ? 'distributed' : 'embedded',
      close: () => bus.close(),
    };
  }
  const redis = await connectRedis(config.redisUrl, log.child({ component: 'redis' }), { sentinelPassword: config.redisSentinelPassword })
    .catch(async (error: unknown) => {
      await bus.close();
      throw error;
    });
  return {
    bus,
    roomStore: new RedisRoomStore({ redis, limits }),
    sessionStore: new RedisSessionStore({ redis }),
    inboxStore: new RedisInboxStore({ redis, retention: chatRetention(config), outboxSlotsPerVisit: config.chatRepairSlotsPerSec }),
    groupStore: new RedisGroupStore({ redis, limits: groupStoreLimits(config) }),
    mode: 'distributed',
    close: async () => {
      await bus.close();
      await redis.quit();
    },
  };
}
