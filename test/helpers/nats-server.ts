/**
 * A real nats-server per test file, with ports for clients and monitoring it picks itself (`-1`) and
 * names in its log, so no other process can take them between a choice and the bind (nats.js starts
 * one per test suite too). The monitoring endpoint lets tests see what the server sees, such as which
 * subscriptions exist.
 *
 * Authorization is on, with the users and permissions of deploy/k8s/nats/auth.conf (the deployment's
 * own file, so the tests exercise the permissions that production runs) and test passwords. Tests
 * that watch or inject traffic on any subject connect as one more user, `test-observer`, allowed
 * everything; it exists only here, and `url` logs in as it. Roomcast's processes connect as their
 * role's user (`credentials(role)`).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildOutput } from './child-output.js';
import { startServer } from './server-process.js';

/** connz lists 1,024 connections unless told otherwise; tests have far fewer than this. */
const CONNZ_LIMIT = 10_000;
/** Generous: a busy machine may take seconds to start it. */
const READY_TIMEOUT_MS = 20_000;
/** nats-server's port value for "any free port". */
const ANY_PORT = '-1';
export const NATS_AUTH_CONF = new URL('../../deploy/k8s/nats/auth.conf', import.meta.url);

/** The users of auth.conf, as ROOMCAST_NATS_USER names them, and their passwords in tests. */
export const TEST_NATS_PASSWORDS = {
  gateway: 'test-nats-gateway-password',
  'room-service': 'test-nats-room-service-password',
  'push-worker': 'test-nats-push-worker-password',
  tools: 'test-nats-tools-password',
} as const;
export type NatsUser = keyof typeof TEST_NATS_PASSWORDS;
const OBSERVER = { user: 'test-observer', password: 'test-nats-observer-password' };

/** The environment auth.conf reads its passwords from (as the Secret roomcast-nats fills it in deploy/k8s). */
const AUTH_ENV: Record<string, string> = {
  NATS_GATEWAY_PASSWORD: TEST_NATS_PASSWORDS.gateway,
  NATS_ROOM_SERVICE_PASSWORD: TEST_NATS_PASSWORDS['room-service'],
  NATS_PUSH_WORKER_PASSWORD: TEST_NATS_PASSWORDS['push-worker'],
  NATS_TOOLS_PASSWORD: TEST_NATS_PASSWORDS.tools,
};

export interface NatsServerHandle {
  /** `nats://test-observer:…@127.0.0.1:PORT`: the test-only user allowed every subject. */
  url: string;
  /** The test-only user allowed every subject (for a connection to another address, such as a proxy). */
  observer: { user: string; password: string };
  /** `nats://127.0.0.1:PORT`, without credentials (refused: authorization is on). */
  plainUrl: string;
  /** ROOMCAST_NATS_USER / ROOMCAST_NATS_PASSWORD of a role. */
  credentials(user: NatsUser): { user: string; password: string };
  port: number;
  /** `http://127.0.0.1:PORT` of the monitoring endpoint. */
  monitorUrl: string;
  stop(): Promise<void>;
  /** How many subscriptions on exactly `subject` the server holds, over all connections. */
  subscriptionCount(subject: string): Promise<number>;
  /** The user each client connection logged in as, by connection name. */
  connectionUsers(): Promise<Map<string, string>>;
}

export async function startNats(): Promise<NatsServerHandle> {
  // The server resolves include paths against its config file's folder: auth.conf goes beside it.
  const dir = await mkdtemp(join(tmpdir(), 'roomcast-nats-'));
  await writeFile(join(dir, 'auth.conf'), withObserver(await readFile(NATS_AUTH_CONF, 'utf8')));
  const configFile = join(dir, 'nats.conf');
  await writeFile(configFile, 'include auth.conf\n');
  const { ports: [port, monitorPort], stop } = await startServer({
    binary: 'nats-server',
    install: 'apt-get install nats-server',
    args: ['-c', configFile, '-a', '127.0.0.1', '-p', ANY_PORT, '-m', ANY_PORT],
    env: AUTH_ENV,
    ready: async (output) => {
      // It logs both ports before "Server is ready", and exits if it cannot bind.
      await output.waitForLine((line) => (line.includes('Server is ready') ? true : undefined), 'the line "Server is ready"', READY_TIMEOUT_MS);
      return [await loggedPort(output, 'Listening for client connections on'), await loggedPort(output, 'Starting http monitor on')];
    },
  });
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  const connz = async () => {
    const listing = await getJson<Connz>(`${monitorUrl}/connz?subs=1&auth=1&limit=${CONNZ_LIMIT}`);
    if (listing.num_connections < listing.total) throw new Error(`connz listed ${listing.num_connections} of ${listing.total} connections`);
    return listing.connections;
  };
  return {
    url: `nats://${OBSERVER.user}:${OBSERVER.password}@127.0.0.1:${port}`,
    observer: { ...OBSERVER },
    plainUrl: `nats://127.0.0.1:${port}`,
    port: port!,
    monitorUrl,
    credentials: (user) => ({ user, password: TEST_NATS_PASSWORDS[user] }),
    stop: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
    async subscriptionCount(subject) {
      let count = 0;
      for (const connection of await connz()) {
        for (const subscribed of connection.subscriptions_list ?? []) if (subscribed === subject) count++;
      }
      return count;
    },
    async connectionUsers() {
      return new Map((await connz()).map((connection) => [connection.name ?? '', connection.authorized_user ?? '']));
    },
  };
}

/** auth.conf with the test-only observer added to its users (before the list's closing bracket). */
function withObserver(authConf: string): string {
  const end = authConf.lastIndexOf(']');
  if (end < 0) throw new Error('deploy/k8s/nats/auth.conf has no users list');
  const observer = `  { user: ${OBSERVER.user}, password: ${OBSERVER.password}, permissions: { publish: { allow: [">"] }, subscribe: { allow: [">"] } } }\n  `;
  return authConf.slice(0, end) + observer + authConf.slice(end);
}

/** The port of the `host:port` a log line of nats-server gives after `announcement`. */
function loggedPort(output: ChildOutput, announcement: string): Promise<number> {
  const pattern = new RegExp(`${announcement} [^\\s]+:(\\d+)`);
  return output.waitForLine((line) => { const match = pattern.exec(line); return match ? Number(match[1]) : undefined; }, `a line "${announcement} …"`, READY_TIMEOUT_MS);
}

interface Connz {
  total: number;
  num_connections: number;
  connections: Array<{ name?: string; authorized_user?: string; subscriptions_list?: string[] }>;
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}
