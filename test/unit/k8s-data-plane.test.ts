/**
 * The data plane as `kubectl kustomize deploy/k8s` renders it: NATS and Redis stay up through the
 * loss of a node and a drain, Redis refuses writes before the kernel kills it, no RDB fork, every
 * role's NATS permissions are those of the spec (and nothing more), every Secret a pod reads exists
 * with its key, and both are exported to Prometheus.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KUBECTL = process.env.KUBECTL ?? 'kubectl';

/** The permissions of each role (the spec of issue 14, "Contracts between streams"): exactly these. */
const NATS_PERMISSIONS: Record<string, { publish: string[]; subscribe: string[] }> = {
  gateway: { publish: ['svc.>', 'fleet.>'], subscribe: ['room.>', 'gw.>', '_INBOX.>', 'fleet.>'] },
  'room-service': { publish: ['room.>', 'gw.>', 'push.offline', '_INBOX.>', 'fleet.>'], subscribe: ['svc.>', 'fleet.>'] },
  'push-worker': { publish: [], subscribe: ['push.offline'] },
  tools: { publish: [], subscribe: ['room.>'] },
};

interface K8sObject { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [field: string]: unknown }
interface Workload extends K8sObject { spec: { selector: { matchLabels: Record<string, string> }; template: IPodTemplateSpec } }
interface Pdb extends K8sObject { spec: { selector: { matchLabels: Record<string, string> }; maxUnavailable?: number; minAvailable?: number } }
interface Secret extends K8sObject { data?: Record<string, string> }
interface ConfigMap extends K8sObject { data: Record<string, string> }

let objects: K8sObject[] = [];

beforeAll(async () => {
  const { stdout } = await promisify(execFile)(KUBECTL, ['kustomize', 'deploy/k8s'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  objects = parseAllDocuments(stdout).map((document) => document.toJS() as K8sObject).filter(Boolean);
});

function find<T extends K8sObject>(kind: string, name: string): T {
  // Generated ConfigMaps carry a content hash after their name.
  const named = new RegExp(`^${name}(-[a-z0-9]{10})?$`);
  const found = objects.find((object) => object.kind === kind && named.test(object.metadata.name));
  if (!found) throw new Error(`no ${kind}/${name} in the rendered manifests`);
  return found as T;
}

const workloads = () => objects.filter((object) => object.kind === 'Deployment' || object.kind === 'StatefulSet') as Workload[];
const containers = (workload: Workload): IContainer[] => workload.spec.template.spec?.containers ?? [];
const configFile = (map: string, file: string) => find<ConfigMap>('ConfigMap', map).data[file] ?? '';

function subsetOf(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

/** Bytes of a Kubernetes quantity (2Gi, 1536Mi) or a Redis size (1200mb, 1gb). */
function bytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(quantity.trim());
  if (!match) throw new Error(`not a size: ${quantity}`);
  const units: Record<string, number> = {
    '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9,
    kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3,
  };
  const unit = units[match[2]!] ?? units[match[2]!.toLowerCase()];
  if (unit === undefined) throw new Error(`unknown unit in ${quantity}`);
  return Number(match[1]) * unit;
}

/** Lines `directive args` of a redis.conf, comments dropped. */
function directives(conf: string, name: string): string[] {
  return conf.split('\n').map((line) => line.trim()).filter((line) => line.split(/\s+/)[0] === name).map((line) => line.slice(name.length).trim());
}

/** The users of auth.conf with their allowed subjects (a deny-all publish is an empty list). */
function natsUsers(authConf: string): Map<string, { publish: string[]; subscribe: string[]; password: string }> {
  const users = new Map<string, { publish: string[]; subscribe: string[]; password: string }>();
  const body = authConf.split('\n').filter((line) => !line.trim().startsWith('#')).join('\n');
  const blocks = body.split(/\buser:\s*/).slice(1);
  for (const block of blocks) {
    const name = /^([\w-]+)/.exec(block)![1]!;
    const list = (direction: string) => {
      const rule = new RegExp(`${direction}:\\s*\\{\\s*(allow|deny):\\s*\\[([^\\]]*)\\]`).exec(block);
      if (!rule) throw new Error(`user ${name} has no ${direction} rule`);
      const subjects = [...rule[2]!.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
      if (rule[1] === 'deny') {
        expect(subjects, `${name} ${direction} deny`).toEqual(['>']);
        return [];
      }
      return subjects;
    };
    users.set(name, { publish: list('publish'), subscribe: list('subscribe'), password: /password:\s*(\S+)/.exec(block)![1]! });
  }
  return users;
}

describe('NATS', () => {
  it('has one user per role with exactly the permissions of the spec, passwords from the environment', () => {
    expect(configFile('roomcast-nats-config', 'nats.conf')).toMatch(/^include auth\.conf$/m);
    const users = natsUsers(configFile('roomcast-nats-config', 'auth.conf'));
    expect([...users.keys()].sort()).toEqual(Object.keys(NATS_PERMISSIONS).sort());
    for (const [user, expected] of Object.entries(NATS_PERMISSIONS)) {
      const actual = users.get(user)!;
      expect(actual.publish.sort(), `${user} publish`).toEqual([...expected.publish].sort());
      expect(actual.subscribe.sort(), `${user} subscribe`).toEqual([...expected.subscribe].sort());
      expect(actual.password, `${user} password`).toMatch(/^\$NATS_[A-Z_]+_PASSWORD$/);
    }
    // No one but a gateway may publish svc.* (the room service trusts the caller a request names).
    for (const [user, { publish }] of users) if (user !== 'gateway') expect(publish.some((s) => s.startsWith('svc.') || s === '>'), user).toBe(false);
  });

  it('lets only the servers open routes (a route is trusted past every permission)', () => {
    const conf = configFile('roomcast-nats-config', 'nats.conf');
    const cluster = /cluster\s*\{([\s\S]*)\n\}/.exec(conf)?.[1] ?? '';
    expect(cluster).toMatch(/authorization\s*\{\s*user:\s*route\s+password:\s*\$NATS_ROUTE_PASSWORD\s*\}/);
    const nats = containers(find<Workload>('StatefulSet', 'roomcast-nats')).find((c) => c.name === 'nats')!;
    expect((nats.command ?? []).join(' ')).toContain('nats://route:$NATS_ROUTE_PASSWORD@roomcast-nats-$i.roomcast-nats:6222');
  });

  it('gives the servers every password auth.conf names, from the Secret roomcast-nats', () => {
    const nats = find<Workload>('StatefulSet', 'roomcast-nats');
    const env = containers(nats).find((c) => c.name === 'nats')!.env ?? [];
    const users = natsUsers(configFile('roomcast-nats-config', 'auth.conf'));
    for (const { password } of users.values()) {
      const entry = env.find((e) => `$${e.name}` === password);
      expect(entry?.valueFrom?.secretKeyRef?.name, password).toBe('roomcast-nats');
    }
  });

  it('never puts two servers on one node (required anti-affinity over hostname) and spreads them over zones', () => {
    const nats = find<Workload>('StatefulSet', 'roomcast-nats');
    const spec = nats.spec.template.spec!;
    const terms = spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
    const hostname = terms.find((term) => term.topologyKey === 'kubernetes.io/hostname');
    expect(hostname).toBeDefined();
    expect(subsetOf(hostname!.labelSelector!.matchLabels!, nats.spec.template.metadata!.labels)).toBe(true);
    expect(spec.topologySpreadConstraints?.some((c) => c.topologyKey === 'topology.kubernetes.io/zone')).toBe(true);
    expect(nats.spec.template.metadata!.labels!['app.kubernetes.io/component']).toBe('nats');
  });
});

describe('Redis', () => {
  const redisConf = () => configFile('roomcast-redis-config', 'redis.conf');

  it('refuses writes (noeviction) at a maxmemory well below the container limit: never OOM-killed', () => {
    const redis = find<Workload>('StatefulSet', 'roomcast-redis');
    const limit = containers(redis).find((c) => c.name === 'redis')!.resources!.limits!.memory as string;
    const [maxmemory] = directives(redisConf(), 'maxmemory');
    expect(maxmemory).toBeDefined();
    expect(bytes(maxmemory!)).toBeLessThan(bytes(limit) * 0.8);
    expect(directives(redisConf(), 'maxmemory-policy')).toEqual(['noeviction']);
  });

  it('persists with the append-only file only: no RDB snapshots', () => {
    expect(directives(redisConf(), 'appendonly')).toEqual(['yes']);
    expect(directives(redisConf(), 'save')).toEqual(['""']);
  });

  it('runs a primary with replicas and three sentinels, each set spread over nodes and covered by a PDB', () => {
    const redis = find<Workload>('StatefulSet', 'roomcast-redis');
    const sentinel = find<Workload>('StatefulSet', 'roomcast-redis-sentinel');
    expect((redis.spec as { replicas?: number }).replicas).toBeGreaterThanOrEqual(2);
    expect((sentinel.spec as { replicas?: number }).replicas).toBe(3);
    expect(configFile('roomcast-redis-config', 'sentinel-start.sh')).toMatch(/sentinel monitor roomcast \S+ 6379 2/);
    for (const workload of [redis, sentinel]) {
      const labels = workload.spec.template.metadata!.labels;
      expect(labels!['app.kubernetes.io/component'], workload.metadata.name).toBe('redis');
      const terms = workload.spec.template.spec!.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
      expect(terms.some((t) => t.topologyKey === 'kubernetes.io/hostname' && subsetOf(t.labelSelector!.matchLabels!, labels)), workload.metadata.name).toBe(true);
      const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget') as Pdb[];
      const pdb = pdbs.find((p) => subsetOf(p.spec.selector.matchLabels, labels));
      expect(pdb, `a PDB for ${workload.metadata.name}`).toBeDefined();
      expect(pdb!.spec.maxUnavailable ?? 0).toBeLessThanOrEqual(1);
    }
  });

  it('has ACL users gateway and room-service limited to rc:* keys, no channels, no administrative commands', () => {
    const acl = configFile('roomcast-redis-config', 'users.acl').split('\n').filter((line) => line.startsWith('user '));
    for (const user of ['gateway', 'room-service']) {
      const line = acl.find((l) => l.startsWith(`user ${user} `));
      expect(line, user).toBeDefined();
      expect(line).toContain(' resetkeys ~rc:* ');
      expect(line).toContain(' resetchannels ');
      expect(line).toContain(' -@all ');
      for (const forbidden of ['+@all', '+flushdb', '+flushall', '+config', '+keys', '+acl', '+debug', '+shutdown']) expect(line, `${user} ${forbidden}`).not.toContain(` ${forbidden}`);
    }
    expect(configFile('roomcast-redis-config', 'redis-start.sh')).toContain('aclfile /run/redis/users.acl');
  });
});

describe('both', () => {
  it('every Secret key a pod reads exists in the kustomization', () => {
    for (const workload of workloads()) {
      for (const c of [...containers(workload), ...(workload.spec.template.spec?.initContainers ?? [])]) {
        for (const entry of c.env ?? []) {
          const ref = entry.valueFrom?.secretKeyRef;
          if (!ref) continue;
          const secret = find<Secret>('Secret', ref.name ?? '(unnamed)');
          expect(Object.keys(secret.data ?? {}), `${workload.metadata.name}/${c.name} ${entry.name}`).toContain(ref.key);
        }
      }
    }
    expect(Object.keys(find<Secret>('Secret', 'roomcast-nats').data ?? {}).sort()).toEqual(['gateway-password', 'push-worker-password', 'room-service-password', 'route-password', 'tools-password']);
    expect(Object.keys(find<Secret>('Secret', 'roomcast-redis').data ?? {}).sort()).toEqual(['default-password', 'gateway-password', 'room-service-password']);
  });

  it('exports NATS and Redis to Prometheus from a sidecar with a port named metrics', () => {
    for (const [name, image] of [['roomcast-nats', 'prometheus-nats-exporter'], ['roomcast-redis', 'redis_exporter']] as const) {
      const exporter = containers(find<Workload>('StatefulSet', name)).find((c) => c.image?.includes(image));
      expect(exporter, `${name}: ${image}`).toBeDefined();
      expect(exporter!.ports?.some((p) => p.name === 'metrics'), name).toBe(true);
    }
  });
});
