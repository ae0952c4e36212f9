/**
 * Configuration, loaded once from environment variables and command-line flags (flags win), checked
 * at start-up with every problem reported at once, and deep-frozen. Each setting has one row in
 * SETTINGS: its key, variable, default, check and help; the flag is derived from the variable.
 * settings.ts does the loading; the README's configuration table is generated from these rows
 * (`npm run docs:settings`).
 */
import { ConfigError } from './errors.js';
import { LOG_LEVELS, type LogLevel } from './log.js';
import { deepFreeze, readSettings, settingRow, type DeepReadonly, type Parser } from './settings.js';
import { parseRedisUrl } from './store/redis-url.js';

export type { Parsed, Parser } from './settings.js';
export { parseFlags } from './settings.js';

export const DEFAULT_WS_PORT = 8080;
export const DEFAULT_GATEWAY_HTTP_PORT = 9090;
export const DEFAULT_API_PORT = 8081;
export const DEFAULT_API_METRICS_PORT = 9091;
export const DEFAULT_MAX_PENDING_REQUESTS = 2000;
export const DEFAULT_MAX_LOOP_LAG_MS = 250;
export const DEFAULT_API_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_API_MAX_CONNECTIONS = 1000;
export const DEFAULT_JWT_MAX_LIFETIME_S = 7 * 24 * 3600;
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 256;
export const DEFAULT_BATCH_WINDOW_MS = 50;
/**
 * A request's fixed cost (the wake-ups of NATS, the room service and Redis, and the gateway's own) is
 * most of a message's write path at chat rates. A 20 ms window shares it among twice as many
 * messages as 10 ms did: in many small rooms the write path fell by 15–30 % and the gateway's CPU per
 * message by 10–12 %, for p50 +6 ms under load; a message still waits at most 20 ms, inside a small
 * room's 50 ms batch window (bench/README.md, "Latest results").
 */
export const DEFAULT_SEND_BATCH_WINDOW_MS = 20;
/**
 * 150 ms at 10,000 viewers: a latency p99 of about 210 ms there (the window, the send window and the
 * ~10,000 writes of a flush) with the gateway at about half its core (bench/README.md, "Results of
 * 2026-12-04, a Xeon VM").
 */
export const DEFAULT_BATCH_WINDOW_PER_1000_VIEWERS_MS = 15;
export const DEFAULT_BATCH_MAX_MESSAGES = 200;
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024;
export const DEFAULT_MAX_TEXT_LENGTH = 500;
export const DEFAULT_MAX_ROOMS_PER_CONNECTION = 5;
export const DEFAULT_RECENT_MESSAGES = 20;
export const DEFAULT_HISTORY_LIMIT = 1000;
export const DEFAULT_HISTORY_PAGE_MAX = 100;
export const DEFAULT_IDLE_TIMEOUT_S = 60;
export const DEFAULT_VIEWER_INTERVAL_MS = 5000;
export const DEFAULT_REORDER_WINDOW_MS = 100;
export const DEFAULT_REQUEST_TIMEOUT_MS = 3000;
export const DEFAULT_SEND_RATE_PER_SEC = 2;
export const DEFAULT_SEND_BURST = 5;
export const DEFAULT_MAX_BACKPRESSURE_BYTES = 1024 * 1024;
export const DEFAULT_DEDUP_TTL_MS = 10 * 60 * 1000;
export const DEFAULT_ROOM_IDLE_TTL_MS = 7 * 24 * 3600 * 1000;
export const DEFAULT_BAD_FRAME_LIMIT = 10;
export const DEFAULT_FRAME_RATE_PER_SEC = 20;
export const DEFAULT_FRAME_BURST = 60;
export const DEFAULT_DEVICE_POLICY = 'one-per-type';
export const DEFAULT_CHAT_RATE_PER_SEC = 10;
export const DEFAULT_CHAT_BURST = 20;
export const DEFAULT_CHAT_RETENTION_COUNT = 1000;
/** A private send's inbox appends normally finish in milliseconds: still pending after this, they are repaired. */
export const DEFAULT_CHAT_REPAIR_GRACE_MS = 5000;
/** Per-slot outboxes (of 16384) a room service visits each second looking for sends to repair. */
export const DEFAULT_CHAT_REPAIR_SLOTS_PER_SEC = 256;
export const DEFAULT_CHAT_RETENTION_MS = 30 * 24 * 3600 * 1000;
export const DEFAULT_SYNC_PAGE = 100;
export const DEFAULT_LOGIN_PUSH = 20;
export const DEFAULT_MAX_GROUP_MEMBERS = 100_000;
export const DEFAULT_GROUP_CREATE = 'users';
export const DEFAULT_GROUP_INVITES = 'accept';
export const DEFAULT_ROOM_BUDGET_PER_SEC = 100;
export const DEFAULT_SLOW_CONSUMER_GRACE_MS = 5000;
export const DEFAULT_DRAIN_MS = 30_000;
export const DEFAULT_REBALANCE_INTERVAL_MS = 60_000;
export const DEFAULT_REGISTRY_HEARTBEAT_MS = 5000;

export interface Config {
  natsUrl: string | null;
  /** NATS user of this process's role (nats.conf grants each role its subjects); null: no auth. */
  natsUser: string | null;
  natsPassword: string | null;
  /** One of the forms of redis-url.ts: redis://, rediss:// or redis-sentinel://. */
  redisUrl: string | null;
  /** The sentinels' own password (redis-sentinel:// only). */
  redisSentinelPassword: string | null;
  gatewayId: string | null;
  wsHost: string;
  wsPort: number;
  /** The address clients use to reach this gateway (reported to the registry). */
  publicUrl: string | null;
  gatewayHttpPort: number;
  apiHost: string;
  apiPort: number;
  /** The room service's /metrics, /healthz and /readyz (not on the public API port). */
  apiMetricsPort: number;
  /** A request's headers and body must arrive within this; a trickling client is cut off. */
  apiRequestTimeoutMs: number;
  apiMaxConnections: number;
  jwtSecret: string | null;
  jwtPublicKey: string | null;
  /** Refuse tokens without `exp`. */
  jwtRequireExp: boolean;
  /** Longest token lifetime accepted (`exp` − `iat`, or − now without `iat`), in seconds; 0: no limit. */
  jwtMaxLifetimeS: number;
  jwtIssuer: string | null;
  jwtAudience: string | null;
  /** WebSocket connections one client address may hold on one gateway; 0: no limit. */
  maxConnectionsPerIp: number;
  /** Origins (scheme://host[:port]) whose pages may open WebSockets; empty: any. The gateway's own origin always may. */
  allowedOrigins: readonly string[];
  apiKeys: readonly string[];
  batchWindowMs: number;
  /** A big room's window grows by this per 1,000 viewers on the gateway (beyond batchWindowMs). */
  batchWindowPer1000ViewersMs: number;
  batchMaxMessages: number;
  maxFrameBytes: number;
  maxTextLength: number;
  maxRoomsPerConnection: number;
  recentMessages: number;
  historyLimit: number;
  historyPageMax: number;
  idleTimeoutS: number;
  viewerIntervalMs: number;
  reorderWindowMs: number;
  requestTimeoutMs: number;
  /** A gateway sends the room messages of this window to the room service in one request. */
  sendBatchWindowMs: number;
  /** Bus requests a room service replica works on at once; more are answered `overloaded`. */
  maxPendingRequests: number;
  /** A room service whose event loop runs later than this answers new requests `overloaded`; 0: never. */
  maxLoopLagMs: number;
  sendRatePerSec: number;
  sendBurst: number;
  maxBackpressureBytes: number;
  dedupTtlMs: number;
  roomIdleTtlMs: number;
  badFrameLimit: number;
  frameRatePerSec: number;
  frameBurst: number;
  autoCreateRooms: boolean;
  /** `one-per-type`: a new login kicks the older connection of the same device type; `many`: no limit. */
  devicePolicy: DevicePolicy;
  /** Private and group messages per second per user, and at once. */
  chatRatePerSec: number;
  chatBurst: number;
  /** Messages kept per inbox, conversation and group log; and their longest age. */
  chatRetentionCount: number;
  chatRetentionMs: number;
  /** Private sends whose inbox appends are pending this long are repaired from the outbox. */
  chatRepairGraceMs: number;
  /** Per-slot outboxes a room service visits each second (Redis). */
  chatRepairSlotsPerSec: number;
  /** Default inbox page of `sync`; also its largest. */
  syncPage: number;
  /** Newest unacknowledged inbox messages pushed to a device at login. */
  loginPush: number;
  maxGroupMembers: number;
  /** Who may create groups: any user, staff (streamer, moderator, admin), or only backends and admins. */
  groupCreate: GroupCreatePolicy;
  /** `accept`: a user added by another user is invited and joins when it accepts; `direct`: added at once. */
  groupInvites: GroupInvitePolicy;
  /** Chat messages per second a room delivers before chat is sampled; 0: no budget. */
  roomBudgetPerSec: number;
  slowConsumerGraceMs: number;
  drainMs: number;
  /** Share of its excess load a hot gateway moves per rebalancing round; 0: never. */
  shedFraction: number;
  rebalanceIntervalMs: number;
  /** How often a gateway announces itself alive (and its load) on the bus; it is forgotten when a heartbeat is half an interval (at least 1 s) late. */
  registryHeartbeatMs: number;
  /** Where the gateway finds the built pages; null: `<package root>/dist/web`. */
  pagesDir: string | null;
  /** The gateway signs viewer tokens for any uid at `GET /dev/token` (the viewer page's dev sign-in); all-in-one only. */
  devSignIn: boolean;
  logLevel: LogLevel;
}

export const optionalString: Parser<string | null> = (raw) => ({ value: raw === '' ? null : raw });
export const anyString: Parser<string> = (raw) => ({ value: raw });

export function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < min || value > max) return { problem: `must be an integer from ${min} to ${max}` };
    return { value };
  };
}

export function number(min: number, max: number): Parser<number> {
  return (raw) => {
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) return { problem: `must be a number from ${min} to ${max}` };
    return { value };
  };
}

export const boolean: Parser<boolean> = (raw) => {
  if (['1', 'true', 'yes'].includes(raw.toLowerCase())) return { value: true };
  if (['0', 'false', 'no'].includes(raw.toLowerCase())) return { value: false };
  return { problem: 'must be true or false' };
};

export const DEVICE_POLICIES = ['one-per-type', 'many'] as const;
export type DevicePolicy = (typeof DEVICE_POLICIES)[number];
const devicePolicy: Parser<DevicePolicy> = (raw) =>
  (DEVICE_POLICIES as readonly string[]).includes(raw) ? { value: raw as DevicePolicy } : { problem: `must be one of ${DEVICE_POLICIES.join(', ')}` };

/** Who may create groups; each step admits fewer principals (backends, API keys, may always). */
export const GROUP_CREATE_POLICIES = ['users', 'staff', 'backends'] as const;
export type GroupCreatePolicy = (typeof GROUP_CREATE_POLICIES)[number];
/** Whether a user added by another user is a member at once or only after accepting the invite. */
export const GROUP_INVITE_POLICIES = ['accept', 'direct'] as const;
export type GroupInvitePolicy = (typeof GROUP_INVITE_POLICIES)[number];

function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (raw) => ((values as readonly string[]).includes(raw) ? { value: raw as T } : { problem: `must be one of ${values.join(', ')}` });
}

const list: Parser<readonly string[]> = (raw) => ({ value: raw.split(',').map((item) => item.trim()).filter(Boolean) });

const url = (schemes: string[]): Parser<string | null> => (raw) => {
  if (raw === '') return { value: null };
  const allValid = raw.split(',').every((item) => schemes.includes(item.trim().split('://')[0] ?? '') && item.includes('://'));
  return allValid ? { value: raw } : { problem: `must be a URL starting with ${schemes.map((s) => `${s}://`).join(' or ')}` };
};

const redisUrl: Parser<string | null> = (raw) => {
  if (raw === '') return { value: null };
  const parsed = parseRedisUrl(raw);
  return 'problem' in parsed ? { problem: parsed.problem } : { value: raw };
};

export const logLevel: Parser<LogLevel> = (raw) =>
  (LOG_LEVELS as string[]).includes(raw) ? { value: raw as LogLevel } : { problem: `must be one of ${LOG_LEVELS.join(', ')}` };

const setting = settingRow<Config>();

const PORT = integer(0, 65535);

export const SETTINGS = [
  setting('natsUrl', 'ROOMCAST_NATS_URL', null, url(['nats', 'tls']), 'NATS servers, comma separated; empty: in-process bus (all-in-one only)'),
  setting('natsUser', 'ROOMCAST_NATS_USER', null, optionalString, 'NATS user of this process (`gateway` or `room-service`, section "NATS subjects"); empty: no credentials (or those in the URL)'),
  setting('natsPassword', 'ROOMCAST_NATS_PASSWORD', null, optionalString, 'its password; a refused user or password stops the process at start-up'),
  setting('redisUrl', 'ROOMCAST_REDIS_URL', null, redisUrl, 'Redis: `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS), `redis-sentinel://[user:password@]host1:port1,host2:port2/<master>[/db]` (the primary Sentinel names, followed across failovers; the password is the Redis nodes\'), or `redis-cluster://[user:password@]host1:port1,host2:port2` (a Redis Cluster\'s seed nodes; section "Redis keys"); empty: in-memory stores (all-in-one only)'),
  setting('redisSentinelPassword', 'ROOMCAST_REDIS_SENTINEL_PASSWORD', null, optionalString, 'the sentinels\' own password, if they have one (`redis-sentinel://` only)'),
  setting('gatewayId', 'ROOMCAST_GATEWAY_ID', null, optionalString, 'the gateway\'s id on the bus', { shownDefault: 'host name + random' }),
  setting('wsHost', 'ROOMCAST_WS_HOST', '0.0.0.0', anyString, 'address of the WebSocket listener'),
  setting('wsPort', 'ROOMCAST_WS_PORT', DEFAULT_WS_PORT, PORT, 'WebSocket port (`/ws`); 0 picks a free one'),
  setting('publicUrl', 'ROOMCAST_PUBLIC_URL', null, optionalString, 'the URL clients use to reach this gateway', { shownDefault: '`ws://host:port/ws`' }),
  setting('gatewayHttpPort', 'ROOMCAST_GATEWAY_HTTP_PORT', DEFAULT_GATEWAY_HTTP_PORT, PORT, 'gateway `/metrics`, `/healthz`, `/readyz`; 0 picks a free one'),
  setting('apiHost', 'ROOMCAST_API_HOST', '0.0.0.0', anyString, 'address of the room service\'s HTTP API'),
  setting('apiPort', 'ROOMCAST_API_PORT', DEFAULT_API_PORT, PORT, 'HTTP API port (also `/healthz`, `/readyz`); 0 picks a free one'),
  setting('apiMetricsPort', 'ROOMCAST_API_METRICS_PORT', DEFAULT_API_METRICS_PORT, PORT, 'room service `/metrics`, `/healthz`, `/readyz`, apart from the public API (the all-in-one serves metrics on the gateway\'s port); 0 picks a free one'),
  setting('apiRequestTimeoutMs', 'ROOMCAST_API_REQUEST_TIMEOUT_MS', DEFAULT_API_REQUEST_TIMEOUT_MS, integer(1000, 600_000), 'an HTTP API request\'s headers and body must arrive within this (slow, trickling clients are cut off)'),
  setting('apiMaxConnections', 'ROOMCAST_API_MAX_CONNECTIONS', DEFAULT_API_MAX_CONNECTIONS, integer(1, 1_000_000), 'open connections the HTTP API accepts; more are refused'),
  setting('jwtSecret', 'ROOMCAST_JWT_SECRET', null, optionalString, 'HS256 secret for tokens (≥ 32 characters); all-in-one makes one'),
  setting('jwtPublicKey', 'ROOMCAST_JWT_PUBLIC_KEY', null, optionalString, 'RS256/ES256 public key (PEM) instead of a secret'),
  setting('jwtRequireExp', 'ROOMCAST_JWT_REQUIRE_EXP', true, boolean, 'refuse tokens without `exp`'),
  setting('jwtMaxLifetimeS', 'ROOMCAST_JWT_MAX_LIFETIME_S', DEFAULT_JWT_MAX_LIFETIME_S, integer(0, 10 * 365 * 24 * 3600), 'longest token lifetime (`exp − iat`, or `exp − now` without `iat`); 0: no limit'),
  setting('jwtIssuer', 'ROOMCAST_JWT_ISSUER', null, optionalString, 'when set, tokens must carry this `iss`'),
  setting('jwtAudience', 'ROOMCAST_JWT_AUDIENCE', null, optionalString, 'when set, tokens must carry this `aud`'),
  setting('maxConnectionsPerIp', 'ROOMCAST_MAX_CONNECTIONS_PER_IP', DEFAULT_MAX_CONNECTIONS_PER_IP, integer(0, 10_000_000), 'WebSocket connections one client address may hold on a gateway (HTTP 429 beyond); 0: no limit. Behind a proxy every client has the proxy\'s address: set 0 there and cap at the proxy'),
  setting('allowedOrigins', 'ROOMCAST_ALLOWED_ORIGINS', [], list, 'origins whose web pages may connect, comma separated (HTTP 403 otherwise); empty: any. The gateway\'s own pages always may'),
  setting('apiKeys', 'ROOMCAST_API_KEYS', [], list, 'API keys of backends, comma separated; all-in-one makes one'),
  setting('batchWindowMs', 'ROOMCAST_BATCH_WINDOW_MS', DEFAULT_BATCH_WINDOW_MS, integer(1, 1000), 'a room\'s messages go out once per window'),
  setting('batchWindowPer1000ViewersMs', 'ROOMCAST_BATCH_WINDOW_PER_1000_VIEWERS_MS', DEFAULT_BATCH_WINDOW_PER_1000_VIEWERS_MS, number(0, 100_000), 'a room with many viewers on a gateway gets a longer window: this many ms per 1,000 of them, when that exceeds `ROOMCAST_BATCH_WINDOW_MS` (each flush is a socket write per viewer); 0: one window for all'),
  setting('batchMaxMessages', 'ROOMCAST_BATCH_MAX_MESSAGES', DEFAULT_BATCH_MAX_MESSAGES, integer(1, 10_000), 'a batch this large goes out at once'),
  setting('maxFrameBytes', 'ROOMCAST_MAX_FRAME_BYTES', DEFAULT_MAX_FRAME_BYTES, integer(256, 16 * 1024 * 1024), 'largest client frame; larger gets `frame_too_large` and close 1009'),
  setting('maxTextLength', 'ROOMCAST_MAX_TEXT_LENGTH', DEFAULT_MAX_TEXT_LENGTH, integer(1, 100_000), 'longest message, in characters'),
  setting('maxRoomsPerConnection', 'ROOMCAST_MAX_ROOMS', DEFAULT_MAX_ROOMS_PER_CONNECTION, integer(1, 1000), 'rooms one connection may be in'),
  setting('recentMessages', 'ROOMCAST_RECENT_MESSAGES', DEFAULT_RECENT_MESSAGES, integer(0, 1000), 'messages a join brings'),
  setting('historyLimit', 'ROOMCAST_HISTORY_LIMIT', DEFAULT_HISTORY_LIMIT, integer(10, 1_000_000), 'messages kept per room'),
  setting('historyPageMax', 'ROOMCAST_HISTORY_PAGE_MAX', DEFAULT_HISTORY_PAGE_MAX, integer(1, 10_000), 'largest history page'),
  setting('idleTimeoutS', 'ROOMCAST_IDLE_TIMEOUT_S', DEFAULT_IDLE_TIMEOUT_S, integer(8, 960), 'silent connections are closed with `idle_timeout` (4008); a silent connection is pinged between half and three quarters of it'),
  setting('viewerIntervalMs', 'ROOMCAST_VIEWER_INTERVAL_MS', DEFAULT_VIEWER_INTERVAL_MS, integer(100, 600_000), 'viewer counts are reported and pushed this often'),
  setting('reorderWindowMs', 'ROOMCAST_REORDER_WINDOW_MS', DEFAULT_REORDER_WINDOW_MS, integer(0, 10_000), 'wait for a missing seq before filling it from history'),
  setting('requestTimeoutMs', 'ROOMCAST_REQUEST_TIMEOUT_MS', DEFAULT_REQUEST_TIMEOUT_MS, integer(100, 60_000), 'gateway → room service request timeout'),
  setting('sendBatchWindowMs', 'ROOMCAST_SEND_BATCH_WINDOW_MS', DEFAULT_SEND_BATCH_WINDOW_MS, integer(0, 100), 'while messages keep coming, a gateway sends the room messages of this window to the room service in one request, and the chat frames of this window in one request per kind (after a quiet window a message leaves at once); 0: one request per event-loop turn'),
  setting('maxPendingRequests', 'ROOMCAST_MAX_PENDING_REQUESTS', DEFAULT_MAX_PENDING_REQUESTS, integer(1, 1_000_000), 'requests a room service replica works on at once (each message of a gateway\'s batch of sends counts; a batch is taken on or refused whole); more are answered `overloaded` with `retryAfterMs` at once'),
  setting('maxLoopLagMs', 'ROOMCAST_MAX_LOOP_LAG_MS', DEFAULT_MAX_LOOP_LAG_MS, integer(0, 60_000), 'a room service whose event loop runs this late (smoothed) answers new requests `overloaded`; 0: never'),
  setting('sendRatePerSec', 'ROOMCAST_SEND_RATE_PER_SEC', DEFAULT_SEND_RATE_PER_SEC, number(0.01, 10_000), 'messages per second per user per room'),
  setting('sendBurst', 'ROOMCAST_SEND_BURST', DEFAULT_SEND_BURST, integer(1, 100_000), 'messages a user may send at once'),
  setting('maxBackpressureBytes', 'ROOMCAST_MAX_BACKPRESSURE_BYTES', DEFAULT_MAX_BACKPRESSURE_BYTES, integer(16 * 1024, 1024 * 1024 * 1024), 'bytes buffered per connection before it counts as slow'),
  setting('dedupTtlMs', 'ROOMCAST_DEDUP_TTL_MS', DEFAULT_DEDUP_TTL_MS, integer(1000, 7 * 24 * 3600 * 1000), 'how long a client message id is remembered'),
  setting('roomIdleTtlMs', 'ROOMCAST_ROOM_IDLE_TTL_MS', DEFAULT_ROOM_IDLE_TTL_MS, integer(0, 365 * 24 * 3600 * 1000), 'a room without messages this long expires (Redis)', { shownDefault: '7 days' }),
  setting('badFrameLimit', 'ROOMCAST_BAD_FRAME_LIMIT', DEFAULT_BAD_FRAME_LIMIT, integer(1, 10_000), 'bad frames before a connection is closed (4000)'),
  setting('frameRatePerSec', 'ROOMCAST_FRAME_RATE_PER_SEC', DEFAULT_FRAME_RATE_PER_SEC, number(0.1, 1_000_000), 'frames per second a connection may send on average (more: `rate_limited`)'),
  setting('frameBurst', 'ROOMCAST_FRAME_BURST', DEFAULT_FRAME_BURST, integer(1, 1_000_000), 'frames a connection may send at once'),
  setting('autoCreateRooms', 'ROOMCAST_AUTO_CREATE_ROOMS', false, boolean, 'create rooms on first join instead of `unknown_room`'),
  setting('devicePolicy', 'ROOMCAST_DEVICE_POLICY', DEFAULT_DEVICE_POLICY, devicePolicy, 'a new login of the same device type replaces the older connection (close 4010); `many`: no limit'),
  setting('chatRatePerSec', 'ROOMCAST_CHAT_RATE_PER_SEC', DEFAULT_CHAT_RATE_PER_SEC, number(0.01, 100_000), 'private (and, separately, group) messages per second per user'),
  setting('chatBurst', 'ROOMCAST_CHAT_BURST', DEFAULT_CHAT_BURST, integer(1, 1_000_000), 'private / group messages a user may send at once'),
  setting('chatRetentionCount', 'ROOMCAST_CHAT_RETENTION_COUNT', DEFAULT_CHAT_RETENTION_COUNT, integer(10, 10_000_000), 'messages kept per inbox, conversation and group'),
  setting('chatRetentionMs', 'ROOMCAST_CHAT_RETENTION_MS', DEFAULT_CHAT_RETENTION_MS, integer(60_000, 10 * 365 * 24 * 3600 * 1000), 'older inbox, conversation and group messages are trimmed', { shownDefault: '30 days' }),
  setting('chatRepairGraceMs', 'ROOMCAST_CHAT_REPAIR_GRACE_MS', DEFAULT_CHAT_REPAIR_GRACE_MS, integer(100, 3_600_000), 'a private message stored but not yet in both inboxes after this long (a crash between the two steps) is appended, pushed and settled by the repair'),
  setting('chatRepairSlotsPerSec', 'ROOMCAST_CHAT_REPAIR_SLOTS_PER_SEC', DEFAULT_CHAT_REPAIR_SLOTS_PER_SEC, integer(16, 16_384), 'per-slot outboxes (of 16 384) each room service checks for such messages every second: all of them in about a minute'),
  setting('syncPage', 'ROOMCAST_SYNC_PAGE', DEFAULT_SYNC_PAGE, integer(1, 10_000), 'inbox / group messages per sync page (default and largest)'),
  setting('loginPush', 'ROOMCAST_LOGIN_PUSH', DEFAULT_LOGIN_PUSH, integer(0, 1000), 'newest unacknowledged inbox messages pushed at login'),
  setting('maxGroupMembers', 'ROOMCAST_MAX_GROUP_MEMBERS', DEFAULT_MAX_GROUP_MEMBERS, integer(2, 10_000_000), 'most members of one group'),
  setting('groupCreate', 'ROOMCAST_GROUP_CREATE', DEFAULT_GROUP_CREATE, oneOf(GROUP_CREATE_POLICIES), 'who may create groups (WebSocket and HTTP): `users` (any token), `staff` (streamer, moderator and admin tokens), `backends` (API keys and admin tokens); API keys always may'),
  setting('groupInvites', 'ROOMCAST_GROUP_INVITES', DEFAULT_GROUP_INVITES, oneOf(GROUP_INVITE_POLICIES), '`accept`: a user added to a group by another user is invited, and becomes a member only when it accepts (`group_join`); `direct`: added users are members at once. API keys and admin tokens always add members directly'),
  setting('roomBudgetPerSec', 'ROOMCAST_ROOM_BUDGET_PER_SEC', DEFAULT_ROOM_BUDGET_PER_SEC, number(0, 1_000_000), 'messages per second a room delivers before ordinary chat is sampled (the same chat on every gateway); 0: never'),
  setting('slowConsumerGraceMs', 'ROOMCAST_SLOW_CONSUMER_GRACE_MS', DEFAULT_SLOW_CONSUMER_GRACE_MS, integer(100, 600_000), 'a connection still behind this long after losing its chat is closed (4009)'),
  setting('drainMs', 'ROOMCAST_DRAIN_MS', DEFAULT_DRAIN_MS, integer(0, 3_600_000), 'on SIGTERM the gateway moves its connections to other gateways over this time, then exits'),
  setting('shedFraction', 'ROOMCAST_SHED_FRACTION', 0, number(0, 1), 'a gateway 20% above the mean load, while another is 20% below, asks this share of its excess to reconnect (through dispatch, to the light ones); 0: never'),
  setting('rebalanceIntervalMs', 'ROOMCAST_REBALANCE_INTERVAL_MS', DEFAULT_REBALANCE_INTERVAL_MS, integer(1000, 3_600_000), 'how often a gateway compares its load with the others\' reports'),
  setting('registryHeartbeatMs', 'ROOMCAST_REGISTRY_HEARTBEAT_MS', DEFAULT_REGISTRY_HEARTBEAT_MS, integer(100, 600_000), 'how often a gateway announces itself alive, ready or not, and its load on `fleet.gateway.<id>` (what dispatch and shedding read); it is forgotten when a heartbeat is half an interval (at least 1 s) late'),
  setting('pagesDir', 'ROOMCAST_PAGES_DIR', null, optionalString, 'the built viewer page and console the gateway serves on its WebSocket port (read once at start-up)', { shownDefault: '`dist/web` of the package' }),
  setting('devSignIn', 'ROOMCAST_DEV_SIGN_IN', false, boolean, 'the viewer page offers a sign-in as any uid (`GET /dev/token?uid=` signs a 24 h viewer token); only all-in-one may turn it on', { shownDefault: '`false`; all-in-one: `true`' }),
  setting('logLevel', 'ROOMCAST_LOG_LEVEL', 'info', logLevel, 'debug, info, warn, error, silent'),
] as const;

export type ProcessRole = 'gateway' | 'room-service' | 'all-in-one';

/**
 * Builds the configuration for a process role from the environment and flags. Throws ConfigError
 * listing every problem.
 */
export function loadConfig(role: ProcessRole, env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []): DeepReadonly<Config> {
  const { values, problems, unknownVariables } = readSettings<Config>(SETTINGS, env, argv);
  problems.push(...crossChecks(role, values), ...unknownVariables.map((name) => `unknown variable ${name}`));
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(values);
}

function crossChecks(role: ProcessRole, config: Config): string[] {
  const problems: string[] = [];
  if (role !== 'all-in-one') {
    if (!config.natsUrl) problems.push(`ROOMCAST_NATS_URL is required for the ${role} (the in-process bus only works in all-in-one)`);
    if (!config.redisUrl) problems.push(`ROOMCAST_REDIS_URL is required for the ${role} (in-memory stores only work in all-in-one)`);
  }
  if (role !== 'all-in-one' && !config.jwtSecret && !config.jwtPublicKey && (role === 'gateway' || config.apiKeys.length === 0)) {
    problems.push('set ROOMCAST_JWT_SECRET or ROOMCAST_JWT_PUBLIC_KEY so tokens can be checked');
  }
  if (Boolean(config.natsUser) !== Boolean(config.natsPassword)) problems.push('set both ROOMCAST_NATS_USER and ROOMCAST_NATS_PASSWORD, or neither');
  if (config.redisSentinelPassword && !config.redisUrl?.startsWith('redis-sentinel://')) problems.push('ROOMCAST_REDIS_SENTINEL_PASSWORD applies only to a redis-sentinel:// ROOMCAST_REDIS_URL');
  if (role !== 'all-in-one' && config.devSignIn) problems.push(`ROOMCAST_DEV_SIGN_IN is for all-in-one only: a ${role} never signs tokens for anyone who asks`);
  if (config.jwtSecret && config.jwtPublicKey) problems.push('set only one of ROOMCAST_JWT_SECRET and ROOMCAST_JWT_PUBLIC_KEY');
  if (config.jwtSecret && config.jwtSecret.length < 32) problems.push('ROOMCAST_JWT_SECRET must be at least 32 characters');
  if (config.jwtPublicKey && !config.jwtPublicKey.includes('BEGIN PUBLIC KEY')) problems.push('ROOMCAST_JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----)');
  if (role === 'all-in-one' && config.wsPort !== 0 && config.wsPort === config.apiPort) problems.push('ROOMCAST_WS_PORT and ROOMCAST_API_PORT must differ');
  if (role === 'room-service' && config.apiPort !== 0 && config.apiPort === config.apiMetricsPort) problems.push('ROOMCAST_API_PORT and ROOMCAST_API_METRICS_PORT must differ');
  if (config.wsPort !== 0 && config.wsPort === config.gatewayHttpPort) problems.push('ROOMCAST_WS_PORT and ROOMCAST_GATEWAY_HTTP_PORT must differ');
  return problems;
}
