/**
 * The one command: `roomcast gateway | room-service | all-in-one | token | migrate | autoscaler`. Configuration comes from
 * ROOMCAST_* variables and the matching flags (`--ws-port 8080`); `--help` lists them.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createTokenVerifier, signToken, type TokenPolicy, type TokenVerifier } from './shared/auth.js';
import { SETTINGS, loadConfig, parseFlags, type Config, type ProcessRole } from './shared/config.js';
import { deepFreeze, usageOf } from './shared/settings.js';
import { ConfigError } from './shared/errors.js';
import { connectInfrastructure } from './shared/infrastructure.js';
import { connectRedis } from './shared/store/redis-client.js';
import { migrateChatLayout, type MigrationReport } from './shared/store/redis-migration.js';
import { createLogger } from './shared/log.js';
import { MetricsRegistry } from './shared/metrics.js';
import { guardProcess } from './shared/process-guard.js';
import { ROLES, type Role } from './shared/protocol/frames.js';
import { startGateway } from './gateway/main.js';
import { startRoomService } from './room-service/main.js';
import { autoscalerUsage } from './autoscaler/config.js';

const USAGE = `roomcast — chat for live-streaming rooms

Usage:
  roomcast all-in-one [flags]     gateway and room service in one process; in-process bus and
                                  in-memory stores unless ROOMCAST_NATS_URL / ROOMCAST_REDIS_URL are set
  roomcast gateway [flags]        WebSocket gateway (needs NATS and Redis)
  roomcast room-service [flags]   room service and its HTTP API (needs NATS and Redis)
  roomcast autoscaler [flags]     scales the gateway Deployment for a stream's peak (Kubernetes API;
                                  settings below under Autoscaler settings; --dry-run decides without patching)
  roomcast token --uid U [--role viewer|streamer|moderator|admin] [--rooms a,b] [--device web]
                 [--ttl-s 86400] [--secret S | --private-key FILE [--alg ES256|RS256]]
                 [--issuer I] [--audience A]
                                  prints a signed token (the secret, issuer and audience default to
                                  ROOMCAST_JWT_SECRET, ROOMCAST_JWT_ISSUER and ROOMCAST_JWT_AUDIENCE)
  roomcast migrate [--dry-run] [--redis-url URL]
                                  rewrites private and group chat state of releases before the Redis
                                  Cluster layout into it (README: Upgrading); safe to re-run; --dry-run
                                  only counts (the URL defaults to ROOMCAST_REDIS_URL)
  roomcast --help

Settings (environment variable, flag, default):
${usageOf(SETTINGS, { env: 32, flag: 26 })}

Autoscaler settings (environment variable, flag, default):
${autoscalerUsage()}
`;

/** The ports a serving process bound, named after their settings (ROOMCAST_WS_PORT → wsPort). */
interface BoundPorts {
  wsPort?: number;
  gatewayHttpPort?: number;
  apiPort?: number;
  apiMetricsPort?: number;
}

/** A demo room the all-in-one mode creates, so `npm start` has something to join. */
const DEMO_ROOM = 'lobby';
const DEV_TOKEN_TTL_S = 24 * 3600;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || rest.includes('--help')) {
    process.stdout.write(USAGE);
    return;
  }
  switch (command) {
    case 'token':
      process.stdout.write(`${await tokenCommand(rest)}\n`);
      return;
    case 'gateway':
    case 'room-service':
    case 'all-in-one':
      await serve(command, rest);
      return;
    case 'migrate':
      process.stdout.write(`${JSON.stringify(await migrateCommand(rest))}\n`);
      return;
    case 'autoscaler': {
      // Loaded on demand: only this command needs the Kubernetes client.
      const { runAutoscaler } = await import('./autoscaler/main.js');
      await runAutoscaler(rest);
      return;
    }
    default:
      throw new ConfigError([`unknown command '${command}'; see roomcast --help`]);
  }
}

async function tokenCommand(argv: string[]): Promise<string> {
  const { flags, problems } = parseFlags(argv, ['--uid', '--role', '--rooms', '--device', '--ttl-s', '--secret', '--private-key', '--alg', '--issuer', '--audience']);
  const uid = flags.get('--uid');
  if (!uid) problems.push('--uid is required');
  const role = (flags.get('--role') ?? 'viewer') as Role;
  if (!ROLES.includes(role)) problems.push(`--role must be one of ${ROLES.join(', ')}`);
  const ttlSeconds = Number(flags.get('--ttl-s') ?? DEV_TOKEN_TTL_S);
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) problems.push('--ttl-s must be a positive integer');
  const secret = flags.get('--secret') ?? process.env.ROOMCAST_JWT_SECRET ?? null;
  const privateKeyFile = flags.get('--private-key');
  const alg = flags.get('--alg') ?? 'ES256';
  if (alg !== 'ES256' && alg !== 'RS256') problems.push('--alg must be ES256 or RS256');
  if (!secret && !privateKeyFile) problems.push('give --secret (or set ROOMCAST_JWT_SECRET) or --private-key FILE');
  if (problems.length > 0) throw new ConfigError(problems);
  const rooms = flags.get('--rooms')?.split(',').map((room) => room.trim()).filter(Boolean);
  const issuer = flags.get('--issuer') ?? process.env.ROOMCAST_JWT_ISSUER;
  const audience = flags.get('--audience') ?? process.env.ROOMCAST_JWT_AUDIENCE;
  return signToken(
    {
      uid: uid!, role, ttlSeconds, ...(flags.get('--device') ? { device: flags.get('--device')! } : {}), ...(rooms ? { rooms } : {}),
      ...(issuer ? { issuer } : {}), ...(audience ? { audience } : {}),
    },
    privateKeyFile ? { privateKey: readFileSync(privateKeyFile, 'utf8'), algorithm: alg as 'ES256' | 'RS256' } : { secret },
  );
}

async function migrateCommand(argv: string[]): Promise<MigrationReport & { dryRun: boolean }> {
  const { flags, problems } = parseFlags(argv, ['--redis-url'], ['--dry-run']);
  const dryRun = flags.has('--dry-run');
  const url = flags.get('--redis-url') ?? process.env.ROOMCAST_REDIS_URL;
  if (!url) problems.push('give --redis-url or set ROOMCAST_REDIS_URL');
  if (problems.length > 0) throw new ConfigError(problems);
  const log = createLogger({ level: 'info', bound: { service: 'roomcast-migrate' } });
  const redis = await connectRedis(url!, log.child({ component: 'redis' }));
  try {
    return { dryRun, ...(await migrateChatLayout({ redis, log, dryRun })) };
  } finally {
    await redis.quit();
  }
}

async function serve(role: ProcessRole, argv: string[]): Promise<void> {
  let config = loadConfig(role, process.env, argv);
  const log = createLogger({ level: config.logLevel, bound: { service: `roomcast-${role}` } });
  const devSecrets = role === 'all-in-one' ? withDevSecrets(config, devSignInGiven(argv)) : null;
  if (devSecrets) config = devSecrets.config;

  const verifyToken: TokenVerifier | null = config.jwtSecret || config.jwtPublicKey
    ? await createTokenVerifier({ secret: config.jwtSecret, publicKey: config.jwtPublicKey }, tokenPolicyOf(config))
    : null;
  const infra = await connectInfrastructure(config, `roomcast-${role}`, log);
  const metricsRegistry = new MetricsRegistry();
  guardProcess(log, metricsRegistry);
  const stops: Array<() => Promise<void>> = [];
  const ports: BoundPorts = {};
  let wsUrl = '';
  let stopSignal = '';

  if (role === 'room-service' || role === 'all-in-one') {
    // The all-in-one's gateway serves the shared metrics registry on its own port.
    const opsPort = role === 'room-service' ? config.apiMetricsPort : null;
    const roomService = await startRoomService(config, infra, verifyToken, metricsRegistry, log, opsPort);
    stops.push(roomService.stop);
    ports.apiPort = roomService.apiPort;
    if (roomService.metricsPort !== null) ports.apiMetricsPort = roomService.metricsPort;
    if (role === 'all-in-one') await roomService.service.createRoom(DEMO_ROOM, {});
  }
  if (role === 'gateway' || role === 'all-in-one') {
    const gateway = await startGateway(config, infra, verifyToken!, metricsRegistry, log);
    Object.assign(ports, { wsPort: gateway.wsPort, gatewayHttpPort: gateway.httpPort });
    wsUrl = gateway.url;
    // A gateway's SIGTERM (a scale-down, a rollout) moves its connections to the other gateways
    // first; SIGINT, and the all-in-one that has no other gateway, stop at once.
    const drains = role === 'gateway';
    stops.unshift(() => (drains && stopSignal === 'SIGTERM' ? gateway.drain(config.drainMs) : gateway.stop()));
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    stopSignal = signal;
    log.info('stopping', { signal });
    void (async () => {
      for (const stop of stops) await stop().catch((error: unknown) => log.error('stop failed', { error }));
      await infra.close().catch((error: unknown) => log.error('closing connections failed', { error }));
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  // The ports actually bound (a setting of 0 picks a free one), for whoever started this process; only
  // once the signal handlers are in place, so a SIGTERM right after this line still drains.
  log.info('listening', { role, mode: infra.mode, ...ports });
  if (devSecrets) await printDevGuide(config, devSecrets.generated, { api: ports.apiPort!, metrics: ports.gatewayHttpPort!, wsUrl });
}

function tokenPolicyOf(config: Config): TokenPolicy {
  return { requireExp: config.jwtRequireExp, maxLifetimeS: config.jwtMaxLifetimeS, issuer: config.jwtIssuer, audience: config.jwtAudience };
}

/** Whether ROOMCAST_DEV_SIGN_IN was given (as a variable or a flag), so all-in-one keeps its choice. */
function devSignInGiven(argv: readonly string[]): boolean {
  return process.env.ROOMCAST_DEV_SIGN_IN !== undefined || argv.some((arg) => arg === '--dev-sign-in' || arg.startsWith('--dev-sign-in='));
}

/**
 * The all-in-one mode runs without any set-up: it makes a dev secret and API key when none is given,
 * and turns the viewer page's dev sign-in on unless ROOMCAST_DEV_SIGN_IN says otherwise.
 */
function withDevSecrets(config: Readonly<Config>, devSignInGiven: boolean): { config: Readonly<Config>; generated: { secret: boolean; apiKey: boolean } } {
  const needsSecret = !config.jwtSecret && !config.jwtPublicKey;
  const needsApiKey = config.apiKeys.length === 0;
  return {
    config: deepFreeze({
      ...config,
      ...(needsSecret ? { jwtSecret: randomBytes(24).toString('base64url') } : {}),
      ...(needsApiKey ? { apiKeys: [`dev-${randomBytes(12).toString('hex')}`] } : {}),
      ...(devSignInGiven ? {} : { devSignIn: true }),
    }),
    generated: { secret: needsSecret, apiKey: needsApiKey },
  };
}

async function printDevGuide(
  config: Config, generated: { secret: boolean; apiKey: boolean }, ports: { api: number; metrics: number; wsUrl: string },
): Promise<void> {
  const gatewayUrl = ports.wsUrl;
  const pagesUrl = gatewayUrl.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/ws$/, '');
  const lines = [
    '',
    'Roomcast all-in-one is running.',
    `  WebSocket:  ${gatewayUrl}   (protocol: docs/protocol.md)`,
    `  HTTP API:   http://127.0.0.1:${ports.api}/v1/rooms/${DEMO_ROOM}`,
    `  Metrics:    http://127.0.0.1:${ports.metrics}/metrics`,
    `  Room '${DEMO_ROOM}' is ready to join.`,
  ];
  if (config.jwtSecret) {
    const viewer = await signToken({ uid: 'alice', role: 'viewer', ttlSeconds: DEV_TOKEN_TTL_S }, { secret: config.jwtSecret });
    const streamer = await signToken({ uid: 'streamer', role: 'streamer', rooms: [DEMO_ROOM], ttlSeconds: DEV_TOKEN_TTL_S }, { secret: config.jwtSecret });
    lines.push(
      `Viewer page: ${pagesUrl}/?room=${DEMO_ROOM}#token=${viewer}`,
      `Streamer console: ${pagesUrl}/console?room=${DEMO_ROOM}#token=${streamer}`,
      `  (the viewer page without a token offers a dev sign-in as any name${config.devSignIn ? '' : ': off in this run'})`,
      `  A viewer token for 'alice' (24 h):`,
      `    ${viewer}`,
      `  Connect:    ${gatewayUrl}?token=<token>`,
    );
    if (generated.secret) {
      lines.push(
        `  Dev token secret (made for this run): ${config.jwtSecret}`,
        `  More tokens: ROOMCAST_JWT_SECRET=${config.jwtSecret} npx roomcast token --uid bob --role streamer --rooms ${DEMO_ROOM}`,
      );
    }
  }
  if (generated.apiKey) {
    lines.push(
      `  Dev API key (made for this run): ${config.apiKeys[0]}`,
      `  Publish a gift: curl -X POST -H 'Authorization: Bearer ${config.apiKeys[0]}' -H 'Content-Type: application/json' \\`,
      `    -d '{"kind":"gift","uid":"bob","text":"a rocket","data":{"gift":"rocket","count":1}}' http://127.0.0.1:${ports.api}/v1/rooms/${DEMO_ROOM}/messages`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`roomcast: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
