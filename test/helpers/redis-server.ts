/**
 * A real redis-server per test file on a free port, with persistence off, so contract and
 * integration tests run the Redis stores against the real thing and never touch a developer's own
 * Redis. With `acl`, it has the ACL users of deploy/k8s/redis/users.acl (the same file the
 * deployment runs), with test passwords; with `replicaOf`, it replicates that server.
 *
 * Unlike nats-server, redis-server cannot pick its own port (`--port 0` turns TCP off), so a port is
 * chosen here and can be taken by another process before redis-server binds it. Then redis-server
 * exits ("Address already in use") and it is started again on another port.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerMissingError, startServer, type ServerProcess } from './server-process.js';

const MAX_START_ATTEMPTS = 5;
/** The developer's own Redis and Sentinel: never ours to take. */
const STANDARD_PORTS = new Set([6379, 26379]);
/** Generous: a busy machine may take seconds to start it. */
const READY_TIMEOUT_MS = 20_000;
const PROBE_TIMEOUT_MS = 5_000;
export const REDIS_ACL_TEMPLATE = new URL('../../deploy/k8s/redis/users.acl', import.meta.url);

/** The users of users.acl and the passwords the tests give them. */
export const TEST_REDIS_PASSWORDS = {
  default: 'test-redis-default-password',
  gateway: 'test-redis-gateway-password',
  'room-service': 'test-redis-room-service-password',
} as const;
export type RedisUser = keyof typeof TEST_REDIS_PASSWORDS;

/** The environment users.acl reads its passwords from. */
const ACL_ENV: Record<string, string> = {
  REDIS_DEFAULT_PASSWORD: TEST_REDIS_PASSWORDS.default,
  REDIS_GATEWAY_PASSWORD: TEST_REDIS_PASSWORDS.gateway,
  REDIS_ROOM_SERVICE_PASSWORD: TEST_REDIS_PASSWORDS['room-service'],
};

export interface RedisServerOptions {
  /** Load the deployment's ACL users; every connection must then log in. */
  acl?: boolean;
  /** Replicate this server (given as its port on 127.0.0.1). */
  replicaOf?: number;
}

export interface RedisServerHandle {
  /** `redis://127.0.0.1:PORT`, as the default user when ACL is on (for inspecting what is stored). */
  url: string;
  port: number;
  /** The URL that logs in as `user` (ACL on), or the plain URL. */
  urlFor(user: RedisUser): string;
  stop(): Promise<void>;
  /** Ends the server at once (SIGKILL): a crash, with no shutdown and no last words to replicas. */
  kill(): Promise<void>;
}

export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'roomcast-redis-'));
  const extraArgs: string[] = [];
  if (options.acl) {
    const aclFile = join(dir, 'users.acl');
    await writeFile(aclFile, renderAclFile(await readFile(REDIS_ACL_TEMPLATE, 'utf8'), ACL_ENV));
    extraArgs.push('--aclfile', aclFile);
    // The replica logs in to its primary as the default user, as in deploy/k8s/redis.
    if (options.replicaOf !== undefined) extraArgs.push('--masterauth', TEST_REDIS_PASSWORDS.default);
  }
  if (options.replicaOf !== undefined) extraArgs.push('--replicaof', '127.0.0.1', String(options.replicaOf));
  const { ports: [port], stop, kill } = await startOnFreePort({
    args: (redisPort) => ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(redisPort), '--dir', dir, ...extraArgs],
    password: options.acl ? TEST_REDIS_PASSWORDS.default : null,
  }).catch(async (error: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw error;
  });
  const plain = `redis://127.0.0.1:${port}`;
  const urlFor = (user: RedisUser) => (options.acl ? `redis://${user}:${TEST_REDIS_PASSWORDS[user]}@127.0.0.1:${port}` : plain);
  return {
    url: urlFor('default'),
    port: port!,
    urlFor,
    stop: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
    kill,
  };
}

export interface RedisProcessSpec {
  /** redis-server's arguments for a port (a config file may be written here too). */
  args(port: number): string[] | Promise<string[]>;
  /** The default user's password, when the server has one (the readiness probe logs in with it). */
  password: string | null;
  /** The log line that says it is ready; default redis-server's "Ready to accept connections". */
  readyLine?: string;
}

/** redis-server (or a sentinel) on a free port, started again on another when the port was taken meanwhile. */
export async function startOnFreePort(spec: RedisProcessSpec): Promise<ServerProcess> {
  let lastFailure: unknown;
  for (let attempt = 1; attempt <= MAX_START_ATTEMPTS; attempt++) {
    try {
      const port = await unusedPort();
      return await startServer({
        binary: 'redis-server',
        install: 'apt-get install redis-server',
        args: await spec.args(port),
        ready: async (output, pid) => {
          const readyLine = spec.readyLine ?? 'Ready to accept connections';
          await output.waitForLine((line) => (line.includes(readyLine) ? true : undefined), `the line "${readyLine}"`, READY_TIMEOUT_MS);
          if (!(await answersAs(port, pid, spec.password))) throw new Error(`another process than redis-server ${pid} answers on port ${port}`);
          return [port];
        },
      });
    } catch (error) {
      if (error instanceof ServerMissingError) throw error;
      lastFailure = error;
    }
  }
  throw new Error(`redis-server did not start in ${MAX_START_ATTEMPTS} attempts`, { cause: lastFailure });
}

/** users.acl with its `${NAME}` placeholders filled from `env` and its comments dropped (ACL files have none). */
export function renderAclFile(template: string, env: Record<string, string>): string {
  return template
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'))
    .map((line) => line.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
      const value = env[name];
      if (value === undefined) throw new Error(`users.acl names \${${name}}, which the tests do not set`);
      return value;
    }))
    .join('\n') + '\n';
}

/** A port nothing listened on a moment ago (the OS picks it), other than the standard ones. */
export async function unusedPort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (!STANDARD_PORTS.has(port)) return port;
  }
}

/**
 * Whether the server on `port` answers and is the process `pid` (one inline INFO over a raw socket,
 * after AUTH when it has a password, so the helper needs no Redis client).
 */
function answersAs(port: number, pid: number, password: string | null): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    let authenticated = password === null;
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write(`${password === null ? '' : `AUTH ${password}\r\n`}INFO server\r\n`));
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      reply += chunk;
      if (!authenticated) {
        if (!reply.includes('\r\n')) return;
        if (!reply.startsWith('+OK\r\n')) { finish(false); return; }
        reply = reply.slice('+OK\r\n'.length);
        authenticated = true;
      }
      // A bulk reply names the server's process; an error reply (such as -LOADING) does not.
      if (reply.startsWith('-')) finish(false);
      else if (/\r\nprocess_id:\d+\r\n/.test(reply)) finish(reply.includes(`\r\nprocess_id:${pid}\r\n`));
    });
  });
}
