/**
 * The forms of ROOMCAST_REDIS_URL, parsed without a Redis client so the settings loader can check
 * them at start-up:
 *
 *   redis://[user:password@]host:port[/db]      one Redis (a primary, or a proxy in front of one)
 *   rediss://[user:password@]host:port[/db]     the same over TLS
 *   redis-sentinel://[user:password@]host1:port1,host2:port2/<masterName>[/db]
 *                                               Sentinel: ask the sentinels for the current primary
 *   redis-cluster://[user:password@]host1:port1,host2:port2
 *                                               Redis Cluster: seed nodes; the client learns the rest
 *
 * In the Sentinel form the user and password are those of the Redis nodes; the sentinels' own
 * password, when they have one, is a setting of its own (ROOMCAST_REDIS_SENTINEL_PASSWORD).
 * User and password are percent-decoded.
 */

export const DEFAULT_SENTINEL_PORT = 26379;

export interface RedisHostPort { host: string; port: number }

export type RedisTarget =
  | { kind: 'direct'; url: string }
  | { kind: 'sentinel'; sentinels: RedisHostPort[]; masterName: string; username?: string; password?: string; db: number }
  | { kind: 'cluster'; nodes: RedisHostPort[]; username?: string; password?: string };

export type ParsedRedisUrl = { target: RedisTarget } | { problem: string };

const DIRECT_SCHEMES = ['redis:', 'rediss:'];
const SENTINEL_PREFIX = 'redis-sentinel://';
const CLUSTER_PREFIX = 'redis-cluster://';
const DEFAULT_REDIS_PORT = 6379;

export function parseRedisUrl(raw: string): ParsedRedisUrl {
  if (raw.startsWith(SENTINEL_PREFIX)) return parseSentinelUrl(raw.slice(SENTINEL_PREFIX.length));
  if (raw.startsWith(CLUSTER_PREFIX)) return parseClusterUrl(raw.slice(CLUSTER_PREFIX.length));
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { problem: 'is not a valid URL' };
  }
  if (!DIRECT_SCHEMES.includes(url.protocol)) return { problem: 'must start with redis://, rediss://, redis-sentinel:// or redis-cluster://' };
  if (!url.hostname) return { problem: 'names no host' };
  return { target: { kind: 'direct', url: raw } };
}

function parseSentinelUrl(rest: string): ParsedRedisUrl {
  const slash = rest.indexOf('/');
  if (slash < 0) return { problem: 'must name the Sentinel master: redis-sentinel://host:port,.../<masterName>' };
  const authority = rest.slice(0, slash);
  const [masterName, dbText, ...extra] = rest.slice(slash + 1).split('/');
  if (!masterName || extra.length > 0) return { problem: 'must end in /<masterName> or /<masterName>/<db>' };
  const db = dbText === undefined || dbText === '' ? 0 : Number(dbText);
  if (!Number.isSafeInteger(db) || db < 0) return { problem: `has a database number that is not one: '${dbText}'` };

  // The credentials end at the last '@': a password may contain '@' only percent-encoded, but be lenient.
  const at = authority.lastIndexOf('@');
  const credentials = at >= 0 ? authority.slice(0, at) : null;
  const hostList = at >= 0 ? authority.slice(at + 1) : authority;
  const sentinels: RedisHostPort[] = [];
  for (const item of hostList.split(',').map((s) => s.trim())) {
    const hostPort = parseHostPort(item);
    if (!hostPort) return { problem: `has a sentinel address that is not host[:port]: '${item}'` };
    sentinels.push(hostPort);
  }

  const login = parseCredentials(credentials);
  if ('problem' in login) return login;
  const { username, password } = login;
  return { target: { kind: 'sentinel', sentinels, masterName: decodeURIComponent(masterName), db, ...(username ? { username } : {}), ...(password ? { password } : {}) } };
}

/** The seed nodes of a cluster: a list of host:port (the port may not be left out: 6379 is assumed). */
function parseClusterUrl(rest: string): ParsedRedisUrl {
  const authority = rest.replace(/\/$/, '');
  if (authority.includes('/')) return { problem: 'names no database or master in the cluster form: redis-cluster://host:port,host:port' };
  const at = authority.lastIndexOf('@');
  const login = parseCredentials(at >= 0 ? authority.slice(0, at) : null);
  if ('problem' in login) return login;
  const nodes: RedisHostPort[] = [];
  for (const item of (at >= 0 ? authority.slice(at + 1) : authority).split(',').map((s) => s.trim())) {
    const hostPort = parseHostPort(item, DEFAULT_REDIS_PORT);
    if (!hostPort) return { problem: `has a cluster node address that is not host[:port]: '${item}'` };
    nodes.push(hostPort);
  }
  return { target: { kind: 'cluster', nodes, ...login } };
}

function parseCredentials(credentials: string | null): { username?: string; password?: string } | { problem: string } {
  if (credentials === null) return {};
  const colon = credentials.indexOf(':');
  const user = colon >= 0 ? credentials.slice(0, colon) : credentials;
  const secret = colon >= 0 ? credentials.slice(colon + 1) : '';
  try {
    const username = user ? decodeURIComponent(user) : undefined;
    const password = secret ? decodeURIComponent(secret) : undefined;
    return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
  } catch {
    return { problem: 'has credentials with a malformed % escape' };
  }
}

function parseHostPort(item: string, defaultPort = DEFAULT_SENTINEL_PORT): RedisHostPort | null {
  // [v6]:port or host:port or host
  const match = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d+))?$/.exec(item);
  if (!match) return null;
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (port < 1 || port > 65535) return null;
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

/** The URL with its password replaced, for logs and error messages. */
export function redactRedisUrl(raw: string): string {
  return raw.replace(/^([a-z-]+:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}
