/**
 * A real redis-server per test file on a free port, with persistence off, so contract and
 * integration tests run the Redis stores against the real thing and never touch a developer's own
 * Redis. With `acl`, it has the ACL users of deploy/k8s/redis/users.acl (the same file the
 * deployment runs), with test passwords; with `replicaOf`, it replicates that server.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './server-process.js';

const PROBE_TIMEOUT_MS = 1_000;
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
  /** Extra redis-server arguments, e.g. ['--maxmemory', '64mb']. */
  args?: string[];
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
  const aclArgs: string[] = [];
  if (options.acl) {
    const aclFile = join(dir, 'users.acl');
    await writeFile(aclFile, renderAclFile(await readFile(REDIS_ACL_TEMPLATE, 'utf8'), ACL_ENV));
    aclArgs.push('--aclfile', aclFile);
    // The replica logs in to its primary as the default user, as in deploy/k8s/redis.
    if (options.replicaOf !== undefined) aclArgs.push('--masterauth', TEST_REDIS_PASSWORDS.default);
  }
  const { ports: [port], stop, kill } = await startServer({
    binary: 'redis-server',
    install: 'apt-get install redis-server',
    reservedPorts: new Set([6379]),
    portCount: 1,
    args: ([redisPort]) => [
      '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(redisPort), '--dir', dir,
      ...aclArgs,
      ...(options.replicaOf !== undefined ? ['--replicaof', '127.0.0.1', String(options.replicaOf)] : []),
      ...(options.args ?? []),
    ],
    ready: ([redisPort], pid) => answersAs(redisPort!, pid, options.acl ? TEST_REDIS_PASSWORDS.default : null),
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

/**
 * Whether the server on `port` answers and is the process `pid` (one inline INFO over a raw socket,
 * after AUTH when it has a password, so the helper needs no Redis client).
 */
export function answersAs(port: number, pid: number | undefined, password: string | null = null): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write(`${password === null ? '' : `AUTH ${password}\r\n`}INFO server\r\n`));
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      reply += chunk;
      if (password !== null) {
        if (!reply.startsWith('+OK\r\n')) { if (reply.includes('\r\n')) finish(false); return; }
        reply = reply.slice('+OK\r\n'.length);
        password = null;
      }
      // An error reply (such as -LOADING) means not ready yet; a bulk reply names the server's process.
      if (reply.startsWith('-')) finish(false);
      else if (/\r\nprocess_id:\d+\r\n/.test(reply)) finish(reply.includes(`\r\nprocess_id:${pid}\r\n`));
    });
  });
}
