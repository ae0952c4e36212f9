/**
 * Configuration, loaded once from environment variables and command-line flags (flags win), checked
 * at start-up with every problem reported at once, and frozen. Each setting has one row in SETTINGS:
 * its variable, its flag, its default and its check; the README's configuration table lists the same.
 */
import { ConfigError } from './errors.js';
import { LOG_LEVELS, type LogLevel } from './log.js';
import { parseRedisUrl } from './store/redis-url.js';

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
  /** How often a gateway reports itself alive (and its load) to the registry; it is forgotten after three missed reports. */
  registryHeartbeatMs: number;
  /** Where the gateway finds the built pages; null: `<package root>/dist/web`. */
  pagesDir: string | null;
  /** The gateway signs viewer tokens for any uid at `GET /dev/token` (the viewer page's dev sign-in); all-in-one only. */
  devSignIn: boolean;
  logLevel: LogLevel;
}

export type Parsed<T> = { value: T } | { problem: string };
export type Parser<T> = (raw: string) => Parsed<T>;

interface Setting<K extends keyof Config> {
  key: K;
  env: string;
  flag: string;
  default: Config[K];
  parse: Parser<Config[K]>;
  help: string;
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

function setting<K extends keyof Config>(key: K, env: string, def: Config[K], parse: Parser<Config[K]>, help: string): Setting<K> {
  const flag = `--${env.replace(/^ROOMCAST_/, '').toLowerCase().replaceAll('_', '-')}`;
  return { key, env, flag, default: def, parse, help };
}

const PORT = integer(0, 65535);

export const SETTINGS = [
  setting('natsUrl', 'ROOMCAST_NATS_URL', null, url(['nats', 'tls']), 'NATS servers (comma separated); empty: the in-process bus (all-in-one only)'),
  setting('natsUser', 'ROOMCAST_NATS_USER', null, optionalString, 'NATS user of this process (gateway or room-service in deploy/k8s); empty: connect without credentials'),
  setting('natsPassword', 'ROOMCAST_NATS_PASSWORD', null, optionalString, 'password of ROOMCAST_NATS_USER'),
  setting('redisUrl', 'ROOMCAST_REDIS_URL', null, redisUrl, 'Redis: redis://[user:password@]host:port[/db], rediss://... (TLS), redis-sentinel://[user:password@]host:port,.../<master> or redis-cluster://[user:password@]host:port,host:port (Redis Cluster seed nodes); empty: in-memory stores (all-in-one only)'),
  setting('redisSentinelPassword', 'ROOMCAST_REDIS_SENTINEL_PASSWORD', null, optionalString, 'password of the sentinels (redis-sentinel:// only; the URL\'s password is the Redis nodes\')'),
  setting('gatewayId', 'ROOMCAST_GATEWAY_ID', null, optionalString, 'this gateway\'s id on the bus; default: host name and a random suffix'),
  setting('wsHost', 'ROOMCAST_WS_HOST', '0.0.0.0', anyString, 'address the gateway\'s WebSocket port listens on'),
  setting('wsPort', 'ROOMCAST_WS_PORT', DEFAULT_WS_PORT, PORT, 'gateway WebSocket port (/ws); 0 picks a free port'),
  setting('publicUrl', 'ROOMCAST_PUBLIC_URL', null, optionalString, 'the URL clients use to reach this gateway; default ws://<host>:<port>/ws'),
  setting('gatewayHttpPort', 'ROOMCAST_GATEWAY_HTTP_PORT', DEFAULT_GATEWAY_HTTP_PORT, PORT, 'gateway /metrics, /healthz, /readyz port; 0 picks a free port'),
  setting('apiHost', 'ROOMCAST_API_HOST', '0.0.0.0', anyString, 'address the room service\'s HTTP API listens on'),
  setting('apiPort', 'ROOMCAST_API_PORT', DEFAULT_API_PORT, PORT, 'room service HTTP API port (also /healthz, /readyz); 0 picks a free port'),
  setting('apiMetricsPort', 'ROOMCAST_API_METRICS_PORT', DEFAULT_API_METRICS_PORT, PORT, 'room service /metrics, /healthz, /readyz port (room-service role; all-in-one serves metrics on the gateway\'s); 0 picks a free port'),
  setting('apiRequestTimeoutMs', 'ROOMCAST_API_REQUEST_TIMEOUT_MS', DEFAULT_API_REQUEST_TIMEOUT_MS, integer(1000, 600_000), 'an HTTP API request (headers and body) must arrive within this'),
  setting('apiMaxConnections', 'ROOMCAST_API_MAX_CONNECTIONS', DEFAULT_API_MAX_CONNECTIONS, integer(1, 1_000_000), 'open connections the HTTP API accepts; more are refused'),
  setting('jwtSecret', 'ROOMCAST_JWT_SECRET', null, optionalString, 'HS256 secret for tokens (at least 32 characters)'),
  setting('jwtPublicKey', 'ROOMCAST_JWT_PUBLIC_KEY', null, optionalString, 'RS256/ES256 public key for tokens (PEM, SPKI)'),
  setting('jwtRequireExp', 'ROOMCAST_JWT_REQUIRE_EXP', true, boolean, 'refuse tokens without an exp claim'),
  setting('jwtMaxLifetimeS', 'ROOMCAST_JWT_MAX_LIFETIME_S', DEFAULT_JWT_MAX_LIFETIME_S, integer(0, 10 * 365 * 24 * 3600), 'longest token lifetime accepted (exp - iat, or exp - now without iat), seconds; 0: no limit'),
  setting('jwtIssuer', 'ROOMCAST_JWT_ISSUER', null, optionalString, 'when set, tokens must carry this iss'),
  setting('jwtAudience', 'ROOMCAST_JWT_AUDIENCE', null, optionalString, 'when set, tokens must carry this aud'),
  setting('maxConnectionsPerIp', 'ROOMCAST_MAX_CONNECTIONS_PER_IP', DEFAULT_MAX_CONNECTIONS_PER_IP, integer(0, 10_000_000), 'WebSocket connections one client address may hold on a gateway (0: no limit; behind a proxy every client has its address)'),
  setting('allowedOrigins', 'ROOMCAST_ALLOWED_ORIGINS', [], list, 'origins whose web pages may connect (comma separated, e.g. https://example.com); empty: any; the gateway\'s own origin always may'),
  setting('apiKeys', 'ROOMCAST_API_KEYS', [], list, 'API keys of backends for the HTTP API (comma separated)'),
  setting('batchWindowMs', 'ROOMCAST_BATCH_WINDOW_MS', DEFAULT_BATCH_WINDOW_MS, integer(1, 1000), 'a room\'s messages are sent to viewers once per window'),
  setting('batchMaxMessages', 'ROOMCAST_BATCH_MAX_MESSAGES', DEFAULT_BATCH_MAX_MESSAGES, integer(1, 10_000), 'a batch this large is flushed before its window ends'),
  setting('maxFrameBytes', 'ROOMCAST_MAX_FRAME_BYTES', DEFAULT_MAX_FRAME_BYTES, integer(256, 16 * 1024 * 1024), 'largest client frame accepted'),
  setting('maxTextLength', 'ROOMCAST_MAX_TEXT_LENGTH', DEFAULT_MAX_TEXT_LENGTH, integer(1, 100_000), 'longest message text, in characters'),
  setting('maxRoomsPerConnection', 'ROOMCAST_MAX_ROOMS', DEFAULT_MAX_ROOMS_PER_CONNECTION, integer(1, 1000), 'rooms one connection may be in at once'),
  setting('recentMessages', 'ROOMCAST_RECENT_MESSAGES', DEFAULT_RECENT_MESSAGES, integer(0, 1000), 'messages a join brings'),
  setting('historyLimit', 'ROOMCAST_HISTORY_LIMIT', DEFAULT_HISTORY_LIMIT, integer(10, 1_000_000), 'messages kept per room'),
  setting('historyPageMax', 'ROOMCAST_HISTORY_PAGE_MAX', DEFAULT_HISTORY_PAGE_MAX, integer(1, 10_000), 'largest history page'),
  setting('idleTimeoutS', 'ROOMCAST_IDLE_TIMEOUT_S', DEFAULT_IDLE_TIMEOUT_S, integer(8, 960), 'a silent connection is closed after this; pings go at half of it'),
  setting('viewerIntervalMs', 'ROOMCAST_VIEWER_INTERVAL_MS', DEFAULT_VIEWER_INTERVAL_MS, integer(100, 600_000), 'how often viewer counts are reported and pushed'),
  setting('reorderWindowMs', 'ROOMCAST_REORDER_WINDOW_MS', DEFAULT_REORDER_WINDOW_MS, integer(0, 10_000), 'how long a gateway waits for a missing seq before filling it from history'),
  setting('requestTimeoutMs', 'ROOMCAST_REQUEST_TIMEOUT_MS', DEFAULT_REQUEST_TIMEOUT_MS, integer(100, 60_000), 'gateway → room service request timeout'),
  setting('maxPendingRequests', 'ROOMCAST_MAX_PENDING_REQUESTS', DEFAULT_MAX_PENDING_REQUESTS, integer(1, 1_000_000), 'requests a room service works on at once; more are answered overloaded with a retry hint'),
  setting('maxLoopLagMs', 'ROOMCAST_MAX_LOOP_LAG_MS', DEFAULT_MAX_LOOP_LAG_MS, integer(0, 60_000), 'a room service whose event loop lags more than this answers new requests overloaded; 0: never'),
  setting('sendRatePerSec', 'ROOMCAST_SEND_RATE_PER_SEC', DEFAULT_SEND_RATE_PER_SEC, number(0.01, 10_000), 'messages per second one user may send in one room'),
  setting('sendBurst', 'ROOMCAST_SEND_BURST', DEFAULT_SEND_BURST, integer(1, 100_000), 'messages one user may send at once before the rate applies'),
  setting('maxBackpressureBytes', 'ROOMCAST_MAX_BACKPRESSURE_BYTES', DEFAULT_MAX_BACKPRESSURE_BYTES, integer(16 * 1024, 1024 * 1024 * 1024), 'bytes buffered per connection before it counts as slow'),
  setting('dedupTtlMs', 'ROOMCAST_DEDUP_TTL_MS', DEFAULT_DEDUP_TTL_MS, integer(1000, 7 * 24 * 3600 * 1000), 'how long a client message id is remembered'),
  setting('roomIdleTtlMs', 'ROOMCAST_ROOM_IDLE_TTL_MS', DEFAULT_ROOM_IDLE_TTL_MS, integer(0, 365 * 24 * 3600 * 1000), 'a room without messages this long expires (Redis); 0 never'),
  setting('badFrameLimit', 'ROOMCAST_BAD_FRAME_LIMIT', DEFAULT_BAD_FRAME_LIMIT, integer(1, 10_000), 'bad frames a connection may send before it is closed with 4000'),
  setting('frameRatePerSec', 'ROOMCAST_FRAME_RATE_PER_SEC', DEFAULT_FRAME_RATE_PER_SEC, number(0.1, 1_000_000), 'frames per second one connection may send on average'),
  setting('frameBurst', 'ROOMCAST_FRAME_BURST', DEFAULT_FRAME_BURST, integer(1, 1_000_000), 'frames one connection may send at once'),
  setting('autoCreateRooms', 'ROOMCAST_AUTO_CREATE_ROOMS', false, boolean, 'create a room on its first join instead of answering unknown_room'),
  setting('devicePolicy', 'ROOMCAST_DEVICE_POLICY', DEFAULT_DEVICE_POLICY, devicePolicy, 'one-per-type: a new login kicks the older connection of the same device type (close 4010); many: no limit'),
  setting('chatRatePerSec', 'ROOMCAST_CHAT_RATE_PER_SEC', DEFAULT_CHAT_RATE_PER_SEC, number(0.01, 100_000), 'private and group messages per second one user may send'),
  setting('chatBurst', 'ROOMCAST_CHAT_BURST', DEFAULT_CHAT_BURST, integer(1, 1_000_000), 'private and group messages one user may send at once'),
  setting('chatRetentionCount', 'ROOMCAST_CHAT_RETENTION_COUNT', DEFAULT_CHAT_RETENTION_COUNT, integer(10, 10_000_000), 'messages kept per inbox, conversation and group'),
  setting('chatRetentionMs', 'ROOMCAST_CHAT_RETENTION_MS', DEFAULT_CHAT_RETENTION_MS, integer(60_000, 10 * 365 * 24 * 3600 * 1000), 'inbox, conversation and group messages older than this are trimmed'),
  setting('chatRepairGraceMs', 'ROOMCAST_CHAT_REPAIR_GRACE_MS', DEFAULT_CHAT_REPAIR_GRACE_MS, integer(100, 3_600_000), 'a private message stored but not yet in both inboxes after this long is appended, pushed and settled by the repair'),
  setting('chatRepairSlotsPerSec', 'ROOMCAST_CHAT_REPAIR_SLOTS_PER_SEC', DEFAULT_CHAT_REPAIR_SLOTS_PER_SEC, integer(16, 16_384), 'per-slot outboxes (of 16384) each room service checks for such messages every second'),
  setting('syncPage', 'ROOMCAST_SYNC_PAGE', DEFAULT_SYNC_PAGE, integer(1, 10_000), 'inbox and group messages per sync page (default and largest)'),
  setting('loginPush', 'ROOMCAST_LOGIN_PUSH', DEFAULT_LOGIN_PUSH, integer(0, 1000), 'newest unacknowledged inbox messages pushed at login'),
  setting('maxGroupMembers', 'ROOMCAST_MAX_GROUP_MEMBERS', DEFAULT_MAX_GROUP_MEMBERS, integer(2, 10_000_000), 'most members of one group'),
  setting('groupCreate', 'ROOMCAST_GROUP_CREATE', DEFAULT_GROUP_CREATE, oneOf(GROUP_CREATE_POLICIES), 'who may create groups: users (any token), staff (streamer, moderator, admin tokens) or backends (API keys and admin tokens)'),
  setting('groupInvites', 'ROOMCAST_GROUP_INVITES', DEFAULT_GROUP_INVITES, oneOf(GROUP_INVITE_POLICIES), 'accept: users added to a group by another user are invited and join when they accept; direct: members at once'),
  setting('roomBudgetPerSec', 'ROOMCAST_ROOM_BUDGET_PER_SEC', DEFAULT_ROOM_BUDGET_PER_SEC, number(0, 1_000_000), 'messages per second a room delivers before ordinary chat is sampled; 0: never sampled'),
  setting('slowConsumerGraceMs', 'ROOMCAST_SLOW_CONSUMER_GRACE_MS', DEFAULT_SLOW_CONSUMER_GRACE_MS, integer(100, 600_000), 'a connection that stays behind this long after losing its chat is closed (4009)'),
  setting('drainMs', 'ROOMCAST_DRAIN_MS', DEFAULT_DRAIN_MS, integer(0, 3_600_000), 'on SIGTERM the gateway moves its connections away over this time, then exits'),
  setting('shedFraction', 'ROOMCAST_SHED_FRACTION', 0, number(0, 1), 'a gateway well above the mean load asks this share of its excess to reconnect (elsewhere, through dispatch); 0: never'),
  setting('rebalanceIntervalMs', 'ROOMCAST_REBALANCE_INTERVAL_MS', DEFAULT_REBALANCE_INTERVAL_MS, integer(1000, 3_600_000), 'how often a gateway compares its load with the others\' to shed'),
  setting('registryHeartbeatMs', 'ROOMCAST_REGISTRY_HEARTBEAT_MS', DEFAULT_REGISTRY_HEARTBEAT_MS, integer(100, 600_000), 'how often a gateway reports itself alive and its load to the registry; it is forgotten after three missed reports'),
  setting('pagesDir', 'ROOMCAST_PAGES_DIR', null, optionalString, 'folder of the built viewer page and console the gateway serves on its WebSocket port; default: dist/web of the package'),
  setting('devSignIn', 'ROOMCAST_DEV_SIGN_IN', false, boolean, 'the viewer page offers a sign-in as any uid (viewer tokens from GET /dev/token); all-in-one only, where it is on unless set to false'),
  setting('logLevel', 'ROOMCAST_LOG_LEVEL', 'info', logLevel, 'debug, info, warn, error or silent'),
] as const;

export type ProcessRole = 'gateway' | 'room-service' | 'all-in-one';

/** Parses `--name value` and `--name=value` pairs. */
export function parseFlags(argv: readonly string[]): { flags: Map<string, string>; problems: string[] } {
  const flags = new Map<string, string>();
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) { problems.push(`unexpected argument '${arg}'`); continue; }
    const eq = arg.indexOf('=');
    if (eq > 0) { flags.set(arg.slice(0, eq), arg.slice(eq + 1)); continue; }
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('--')) { problems.push(`${arg} needs a value`); continue; }
    flags.set(arg, value);
    i++;
  }
  return { flags, problems };
}

/**
 * Builds the configuration for a process role from the environment and flags. Throws ConfigError
 * listing every problem.
 */
export function loadConfig(role: ProcessRole, env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []): Readonly<Config> {
  const { flags, problems } = parseFlags(argv);
  const known = new Set<string>(SETTINGS.map((s) => s.flag));
  for (const flag of flags.keys()) if (!known.has(flag)) problems.push(`unknown flag ${flag}`);

  const config = {} as Record<keyof Config, unknown>;
  for (const s of SETTINGS) {
    const raw = flags.get(s.flag) ?? env[s.env];
    if (raw === undefined) { config[s.key] = s.default; continue; }
    const parsed = (s.parse as Parser<unknown>)(raw.trim());
    if ('problem' in parsed) problems.push(`${s.env} (${s.flag}) ${parsed.problem}; got '${raw.slice(0, 60)}'`);
    else config[s.key] = parsed.value;
  }
  const result = config as unknown as Config;
  problems.push(...crossChecks(role, result, env));
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(result);
}

function crossChecks(role: ProcessRole, config: Config, env: Readonly<Record<string, string | undefined>>): string[] {
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
  for (const name of Object.keys(env)) {
    if (name.startsWith('ROOMCAST_') && !SETTINGS.some((s) => s.env === name)) problems.push(`unknown variable ${name}`);
  }
  return problems;
}
