/**
 * The Kubernetes manifests as kustomize renders them (`kubectl kustomize deploy/k8s` and the HPA
 * alternative): every object valid against the Kubernetes schemas (kubernetes-models), and each
 * invariant the gateways, the autoscaler and operators rely on, checked on the rendered objects.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PriorityClass } from 'kubernetes-models/scheduling.k8s.io/v1/PriorityClass';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { AUTOSCALER_SETTINGS, loadAutoscalerConfig } from '../../src/autoscaler/config.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN_DIR = 'deploy/k8s';
const HPA_DIR = 'deploy/k8s/alternatives/hpa';
/** Another kubectl (or a kustomize-capable wrapper) may be named here. */
const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const KUBECTL_MISSING = [
  `'${KUBECTL}' was not found: the manifest tests render deploy/k8s with 'kubectl kustomize', which needs`,
  'kubectl 1.27 or newer (kustomize v5 built in). The project machines have it at /usr/bin/kubectl.',
  'Elsewhere install it as https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/ describes',
  "(Debian 12's own kubernetes-client package is 1.20, too old), or set KUBECTL to its path.",
].join('\n');
const NAMESPACE = 'roomcast';
/** Seconds a gateway needs beyond preStop and drain: the last closes, NATS and Redis, the exit. */
const MIN_SHUTDOWN_MARGIN_S = 5;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

type Model = new (data: never) => { validate(): void };
/** Every kind the manifests may hold; anything else fails the schema test. */
const MODELS: Record<string, Model> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'scheduling.k8s.io/v1/PriorityClass': PriorityClass,
};
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PriorityClass']);

/** The autoscaler's Role, as the shared contract lists it: [apiGroup, resource, resourceName or '*', verb]. */
const CONTRACT_RBAC = [
  ['apps', 'deployments/scale', 'roomcast-gateway', 'get'],
  ['apps', 'deployments/scale', 'roomcast-gateway', 'patch'],
  ['apps', 'deployments', 'roomcast-gateway', 'get'],
  ['', 'pods', '*', 'list'],
  ['', 'pods', '*', 'patch'],
  ['coordination.k8s.io', 'leases', '*', 'create'],
  ['coordination.k8s.io', 'leases', 'roomcast-autoscaler', 'get'],
  ['coordination.k8s.io', 'leases', 'roomcast-autoscaler', 'update'],
].map((rule) => rule.join(' ')).sort();

const execFileAsync = promisify(execFile);

async function render(dir: string): Promise<K8sObject[]> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(KUBECTL, ['kustomize', dir], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(KUBECTL_MISSING);
    throw new Error(`${KUBECTL} kustomize ${dir} failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
  }
  const objects: K8sObject[] = [];
  for (const document of parseAllDocuments(stdout)) {
    if (document.errors.length > 0) throw new Error(`${dir} rendered invalid YAML: ${document.errors[0]!.message}`);
    const object = document.toJS() as K8sObject | null;
    if (object) objects.push(object);
  }
  if (objects.length === 0) throw new Error(`${dir} rendered no objects`);
  return objects;
}

const id = (object: K8sObject): string => `${object.kind}/${object.metadata.name}`;

function find<T>(objects: K8sObject[], kind: string, name: string): T {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} among ${objects.map(id).join(', ')}`);
  return found as unknown as T;
}

const ofKind = <T>(objects: K8sObject[], kind: string): T[] => objects.filter((object) => object.kind === kind) as unknown as T[];

interface Workload { kind: string; metadata: { name: string }; spec: { selector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] }; template: IPodTemplateSpec } }

const workloadsOf = (objects: K8sObject[]): Workload[] => [...ofKind<Workload>(objects, 'Deployment'), ...ofKind<Workload>(objects, 'StatefulSet')];

const containersOf = (workload: Workload): IContainer[] => workload.spec.template.spec?.containers ?? [];

function container(workload: Workload, name: string): IContainer {
  const found = containersOf(workload).find((c) => c.name === name);
  if (!found) throw new Error(`${workload.metadata.name} has no container ${name}`);
  return found;
}

function envValue(c: IContainer, name: string): string {
  const entry = c.env?.find((e) => e.name === name);
  if (entry?.value === undefined) throw new Error(`container ${c.name} sets no literal ${name}`);
  return entry.value;
}

/** Label selectors here are plain matchLabels; an expression would need a real matcher. */
function matchLabelsOf(selector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } | undefined, owner: string): Record<string, string> {
  if (!selector?.matchLabels || Object.keys(selector.matchLabels).length === 0) throw new Error(`${owner} has no matchLabels`);
  if (selector.matchExpressions?.length) throw new Error(`${owner} uses matchExpressions, which this test does not evaluate`);
  return selector.matchLabels;
}

const selects = (selector: Record<string, string>, labels: Record<string, string> | undefined): boolean =>
  Object.entries(selector).every(([key, value]) => labels?.[key] === value);

const workloadsSelectedBy = (objects: K8sObject[], selector: Record<string, string>): string[] =>
  workloadsOf(objects).filter((w) => selects(selector, w.spec.template.metadata?.labels)).map((w) => `${w.kind}/${w.metadata.name}`);

const probesOf = (c: IContainer): Array<[string, IProbe]> =>
  (['startupProbe', 'readinessProbe', 'livenessProbe'] as const).flatMap((kind) => (c[kind] ? [[kind, c[kind]] as [string, IProbe]] : []));

const SAMPLE_POD_NAME = 'roomcast-sample-7d9f8b6c5-x2x9q';
const SAMPLE_FIELDS: Record<string, string> = { 'metadata.name': SAMPLE_POD_NAME, 'metadata.namespace': NAMESPACE, 'status.podIP': '10.1.2.3' };
/** Stands in for the operator's real secret, which replaces the placeholders before deploying. */
const SAMPLE_SECRET = 'a-real-secret-stands-here-0123456789abcdef';

/**
 * The environment a container would see: literal values with $(VAR) expanded as the kubelet does,
 * downward-API fields from samples, and secret values from `secretsFrom` (the rendered Secret) or,
 * without it, a sample of a real secret.
 */
function podEnvironment(workload: Workload, containerName: string, secretsFrom?: K8sObject[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of container(workload, containerName).env ?? []) {
    const secretRef = entry.valueFrom?.secretKeyRef;
    const fieldPath = entry.valueFrom?.fieldRef?.fieldPath;
    if (entry.value !== undefined) env[entry.name] = entry.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);
    else if (fieldPath !== undefined) env[entry.name] = SAMPLE_FIELDS[fieldPath] ?? fail(`${workload.metadata.name}: no sample for field ${fieldPath}`);
    else if (secretRef && secretsFrom) {
      const encoded = find<{ data?: Record<string, string> }>(secretsFrom, 'Secret', secretRef.name!).data?.[secretRef.key];
      env[entry.name] = Buffer.from(encoded ?? fail(`no key ${secretRef.key} in Secret/${secretRef.name}`), 'base64').toString('utf8');
    } else if (secretRef) env[entry.name] = SAMPLE_SECRET;
    else fail(`${workload.metadata.name}: ${entry.name} has a source this test does not resolve`);
  }
  return env;
}

function fail(message: string): never {
  throw new Error(message);
}

describe('Kubernetes manifests (kubectl kustomize)', () => {
  let main: K8sObject[];
  let hpa: K8sObject[];
  const renders = (): Array<[string, K8sObject[]]> => [[MAIN_DIR, main], [HPA_DIR, hpa]];

  beforeAll(async () => {
    [main, hpa] = await Promise.all([render(MAIN_DIR), render(HPA_DIR)]);
  });

  it('renders every object the shared contract names', () => {
    const expected = [
      'Namespace/roomcast', 'Deployment/roomcast-gateway', 'Service/roomcast-gateway', 'PodDisruptionBudget/roomcast-gateway',
      'Deployment/roomcast-room-service', 'Service/roomcast-room-service', 'PodDisruptionBudget/roomcast-room-service',
      'Deployment/roomcast-autoscaler', 'ServiceAccount/roomcast-autoscaler', 'Role/roomcast-autoscaler', 'RoleBinding/roomcast-autoscaler',
      'ConfigMap/roomcast-schedule', 'Secret/roomcast-secrets', 'StatefulSet/roomcast-nats', 'Service/roomcast-nats',
      'StatefulSet/roomcast-redis', 'Service/roomcast-redis',
    ];
    expect(expected.filter((name) => !main.map(id).includes(name))).toEqual([]);
  });

  it('renders only objects that are valid against the Kubernetes schemas (kubernetes-models)', () => {
    const failures: string[] = [];
    for (const [dir, objects] of renders()) {
      for (const object of objects) {
        const Model = MODELS[`${object.apiVersion}/${object.kind}`];
        if (!Model) { failures.push(`${dir}: ${object.apiVersion} ${id(object)} is a kind this test does not know`); continue; }
        try {
          new Model(object as never).validate();
        } catch (error) {
          failures.push(`${dir}: ${id(object)}: ${(error as Error).message}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('runs the gateway, room service and autoscaler from one image, the one the kustomization names', () => {
    for (const [dir, objects] of renders()) {
      const images = workloadsOf(objects)
        .filter((w) => ['gateway', 'room-service', 'autoscaler'].includes(w.spec.template.metadata?.labels?.['app.kubernetes.io/component'] ?? ''))
        .flatMap((w) => containersOf(w).map((c) => c.image));
      expect(images.length, dir).toBe(dir === MAIN_DIR ? 3 : 2);
      expect(new Set(images), dir).toEqual(new Set(['roomcast:0.1.0']));
    }
  });

  it('puts every namespaced object in the roomcast namespace', () => {
    for (const [, objects] of renders()) {
      const misplaced = objects.filter((o) => !CLUSTER_SCOPED.has(o.kind) && o.metadata.namespace !== NAMESPACE).map(id);
      expect(misplaced).toEqual([]);
      expect(objects.filter((o) => CLUSTER_SCOPED.has(o.kind)).map(id).sort()).toEqual([`Namespace/${NAMESPACE}`, 'PriorityClass/roomcast-critical']);
    }
  });

  it('leaves the gateway replica count to the autoscaler: no spec.replicas', () => {
    for (const [, objects] of renders()) {
      const gateway = find<Deployment>(objects, 'Deployment', 'roomcast-gateway');
      expect(gateway.spec).toBeDefined();
      expect(gateway.spec).not.toHaveProperty('replicas');
    }
  });

  it('rolls gateways out without lowering capacity, two at a time: RollingUpdate, maxUnavailable 0, maxSurge 2', () => {
    const { strategy } = find<Deployment>(main, 'Deployment', 'roomcast-gateway').spec!;
    expect(strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 2 } });
  });

  it('gives each gateway a grace period longer than preStop sleep + ROOMCAST_DRAIN_MS + margin', () => {
    const gateway = find<Workload>(main, 'Deployment', 'roomcast-gateway');
    const c = container(gateway, 'gateway');
    const command = c.lifecycle?.preStop?.exec?.command ?? [];
    expect(command[0]).toBe('/bin/sleep');
    expect(command).toHaveLength(2);
    const preStopS = Number(command[1]);
    const drainS = Number(envValue(c, 'ROOMCAST_DRAIN_MS')) / 1000;
    expect(Number.isFinite(preStopS) && preStopS > 0).toBe(true);
    expect(Number.isFinite(drainS) && drainS > 0).toBe(true);
    const graceS = gateway.spec.template.spec?.terminationGracePeriodSeconds;
    expect(graceS).toBeGreaterThan(preStopS + drainS + MIN_SHUTDOWN_MARGIN_S);
  });

  it("tells the autoscaler the gateways' own drain time", () => {
    const gatewayDrain = envValue(container(find<Workload>(main, 'Deployment', 'roomcast-gateway'), 'gateway'), 'ROOMCAST_DRAIN_MS');
    const autoscalerDrain = envValue(container(find<Workload>(main, 'Deployment', 'roomcast-autoscaler'), 'autoscaler'), 'ROOMCAST_DRAIN_MS');
    expect(autoscalerDrain).toBe(gatewayDrain);
  });

  it('selects, with every Deployment and StatefulSet selector, its own pod template', () => {
    for (const [, objects] of renders()) {
      for (const workload of workloadsOf(objects)) {
        const selector = matchLabelsOf(workload.spec.selector, workload.metadata.name);
        expect(selects(selector, workload.spec.template.metadata?.labels), workload.metadata.name).toBe(true);
      }
    }
  });

  it('selects, with every Service, the pods of exactly one workload', () => {
    for (const [dir, objects] of renders()) {
      const services = ofKind<Service>(objects, 'Service');
      expect(services.length).toBeGreaterThan(0);
      for (const service of services) {
        const selected = workloadsSelectedBy(objects, matchLabelsOf({ matchLabels: service.spec?.selector }, service.metadata!.name!));
        expect(selected, `${dir} Service/${service.metadata!.name}`).toHaveLength(1);
      }
    }
  });

  it('selects, with every PodDisruptionBudget, the pods of exactly one workload; one gateway at a time', () => {
    for (const [dir, objects] of renders()) {
      for (const pdb of ofKind<PodDisruptionBudget>(objects, 'PodDisruptionBudget')) {
        const selected = workloadsSelectedBy(objects, matchLabelsOf(pdb.spec?.selector, pdb.metadata!.name!));
        expect(selected, `${dir} PodDisruptionBudget/${pdb.metadata!.name}`).toHaveLength(1);
      }
    }
    const gatewayPdb = find<PodDisruptionBudget>(main, 'PodDisruptionBudget', 'roomcast-gateway');
    expect(workloadsSelectedBy(main, gatewayPdb.spec!.selector!.matchLabels!)).toEqual(['Deployment/roomcast-gateway']);
    expect(gatewayPdb.spec!.maxUnavailable).toBe(1);
    find<PodDisruptionBudget>(main, 'PodDisruptionBudget', 'roomcast-room-service');
  });

  it('points every HTTP and TCP probe at a named port its container declares', () => {
    for (const [dir, objects] of renders()) {
      for (const workload of workloadsOf(objects)) {
        for (const c of containersOf(workload)) {
          const portNames = new Set((c.ports ?? []).map((p) => p.name));
          for (const [kind, probe] of probesOf(c)) {
            const where = `${dir} ${workload.metadata.name}/${c.name} ${kind}`;
            const port = probe.httpGet?.port ?? probe.tcpSocket?.port ?? probe.grpc?.port;
            if (port === undefined) { expect(probe.exec?.command?.length, where).toBeGreaterThan(0); continue; }
            expect(typeof port, `${where} uses a port number, not a name`).toBe('string');
            expect(portNames.has(port as string), `${where} names port ${String(port)}`).toBe(true);
          }
        }
      }
    }
    const probed = (name: string) => probesOf(container(find<Workload>(main, 'Deployment', `roomcast-${name}`), name));
    expect(probed('gateway').map(([kind, p]) => [kind, p.httpGet?.path, p.httpGet?.port])).toEqual([['readinessProbe', '/readyz', 'metrics'], ['livenessProbe', '/healthz', 'metrics']]);
    expect(probed('room-service').map(([, p]) => p.httpGet?.port)).toEqual(['http', 'http']);
    expect(probed('autoscaler').map(([, p]) => p.httpGet?.port)).toEqual(['http', 'http']);
  });

  it('routes every Service port to a named port of the pods it selects', () => {
    for (const [dir, objects] of renders()) {
      for (const service of ofKind<Service>(objects, 'Service')) {
        const [selected] = workloadsOf(objects).filter((w) => selects(service.spec!.selector!, w.spec.template.metadata?.labels));
        if (!selected) throw new Error(`${dir} Service/${service.metadata!.name} selects no workload`);
        const declared = new Set(containersOf(selected).flatMap((c) => (c.ports ?? []).map((p) => p.name)));
        for (const port of service.spec!.ports ?? []) {
          expect(typeof port.targetPort, `${dir} Service/${service.metadata!.name} ${port.name}`).toBe('string');
          expect(declared.has(port.targetPort as string), `${dir} Service/${service.metadata!.name} → ${String(port.targetPort)}`).toBe(true);
        }
      }
    }
  });

  it('has the gateway listen where its ports, its Service and the autoscaler look (ws 8080, metrics 9090)', () => {
    const c = container(find<Workload>(main, 'Deployment', 'roomcast-gateway'), 'gateway');
    const ports = Object.fromEntries((c.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ ws: 8080, metrics: 9090 });
    expect(Number(envValue(c, 'ROOMCAST_WS_PORT'))).toBe(ports.ws);
    expect(Number(envValue(c, 'ROOMCAST_GATEWAY_HTTP_PORT'))).toBe(ports.metrics);
    const service = find<Service>(main, 'Service', 'roomcast-gateway');
    expect(service.spec!.ports!.map((p) => [p.name, p.port])).toEqual([['ws', 8080], ['metrics', 9090]]);
    const autoscaler = container(find<Workload>(main, 'Deployment', 'roomcast-autoscaler'), 'autoscaler');
    expect(Number(envValue(autoscaler, 'ROOMCAST_GATEWAY_METRICS_PORT'))).toBe(ports.metrics);
    expect(envValue(autoscaler, 'ROOMCAST_GATEWAY_DEPLOYMENT')).toBe('roomcast-gateway');
  });

  it('names each gateway after its pod, gives it its pod address and its token secret from roomcast-secrets', () => {
    const c = container(find<Workload>(main, 'Deployment', 'roomcast-gateway'), 'gateway');
    expect(c.env?.find((e) => e.name === 'ROOMCAST_GATEWAY_ID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(c.env?.find((e) => e.name === 'ROOMCAST_JWT_SECRET')?.valueFrom?.secretKeyRef).toEqual({ name: 'roomcast-secrets', key: 'jwt-secret' });
    // $(POD_IP) expands only when POD_IP is defined earlier in the list, as the kubelet does it.
    const env = podEnvironment(find<Workload>(main, 'Deployment', 'roomcast-gateway'), 'gateway');
    expect(env.ROOMCAST_PUBLIC_URL).toBe(`ws://${SAMPLE_FIELDS['status.podIP']}:8080/ws`);
  });

  it('refers only to Secret and ConfigMap keys that the manifests define', () => {
    for (const [dir, objects] of renders()) {
      const definedKeys = (kind: string, name: string): string[] => {
        const object = objects.find((o) => o.kind === kind && o.metadata.name === name) as { data?: Record<string, string> } | undefined;
        return Object.keys(object?.data ?? {});
      };
      for (const workload of workloadsOf(objects)) {
        for (const c of containersOf(workload)) {
          for (const entry of c.env ?? []) {
            const secretRef = entry.valueFrom?.secretKeyRef;
            if (secretRef) expect(definedKeys('Secret', secretRef.name!), `${dir} ${workload.metadata.name} ${entry.name}`).toContain(secretRef.key);
            const configRef = entry.valueFrom?.configMapKeyRef;
            if (configRef) expect(definedKeys('ConfigMap', configRef.name!), `${dir} ${workload.metadata.name} ${entry.name}`).toContain(configRef.key);
          }
        }
        for (const volume of workload.spec.template.spec?.volumes ?? []) {
          if (volume.configMap) expect(definedKeys('ConfigMap', volume.configMap.name!).length, `${dir} ${workload.metadata.name} volume ${volume.name}`).toBeGreaterThan(0);
          if (volume.secret) expect(definedKeys('Secret', volume.secret.secretName!).length, `${dir} ${workload.metadata.name} volume ${volume.name}`).toBeGreaterThan(0);
        }
      }
    }
    expect(keysOf(main, 'Secret', 'roomcast-secrets').sort()).toEqual(['api-keys', 'jwt-secret']);
  });

  it('gives the gateway and room service an environment their configuration accepts', () => {
    for (const [dir, objects] of renders()) {
      for (const role of ['gateway', 'room-service'] as const) {
        const env = podEnvironment(find<Workload>(objects, 'Deployment', `roomcast-${role}`), role);
        expect(() => loadConfig(role, env), `${dir} ${role}`).not.toThrow();
      }
    }
  });

  it('gives the autoscaler an environment its configuration accepts, with no variable it ignores', () => {
    const env = podEnvironment(find<Workload>(main, 'Deployment', 'roomcast-autoscaler'), 'autoscaler');
    const { config, ignoredVariables } = loadAutoscalerConfig(env);
    expect(ignoredVariables).toEqual([]);
    expect(config.gatewayDeployment).toBe('roomcast-gateway');
    expect(config.podName).toBe(SAMPLE_POD_NAME);
  });

  it('ships placeholder secrets that the processes refuse, so they cannot reach production unnoticed', () => {
    const env = podEnvironment(find<Workload>(main, 'Deployment', 'roomcast-gateway'), 'gateway', main);
    expect(() => loadConfig('gateway', env)).toThrow(/ROOMCAST_JWT_SECRET must be at least 32 characters/);
  });

  it('grants the autoscaler exactly the RBAC of the contract, namespaced, bound to its service account', () => {
    const role = find<Role>(main, 'Role', 'roomcast-autoscaler');
    const granted = (role.rules ?? []).flatMap((rule) =>
      (rule.apiGroups ?? []).flatMap((group) => (rule.resources ?? []).flatMap((resource) =>
        (rule.resourceNames?.length ? rule.resourceNames : ['*']).flatMap((name) => rule.verbs.map((verb) => [group, resource, name, verb].join(' ')))))).sort();
    expect(granted).toEqual(CONTRACT_RBAC);
    expect((role.rules ?? []).every((rule) => !rule.nonResourceURLs?.length)).toBe(true);
    expect(main.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding').map(id)).toEqual([]);
    expect(ofKind<Role>(main, 'Role').map((r) => r.metadata!.name)).toEqual(['roomcast-autoscaler']);

    const binding = find<RoleBinding>(main, 'RoleBinding', 'roomcast-autoscaler');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'roomcast-autoscaler' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'roomcast-autoscaler', namespace: NAMESPACE }]);
    find<ServiceAccount>(main, 'ServiceAccount', 'roomcast-autoscaler');
    expect(find<Workload>(main, 'Deployment', 'roomcast-autoscaler').spec.template.spec?.serviceAccountName).toBe('roomcast-autoscaler');
  });

  it('mounts an API token only into the autoscaler', () => {
    for (const [, objects] of renders()) {
      const withToken = workloadsOf(objects).filter((w) => w.spec.template.spec?.automountServiceAccountToken !== false).map((w) => w.metadata.name);
      expect(withToken).toEqual(objects === main ? ['roomcast-autoscaler'] : []);
    }
  });

  it('runs exactly one autoscaler, replaced with Recreate so that two never overlap in a rollout', () => {
    const { spec } = find<Deployment>(main, 'Deployment', 'roomcast-autoscaler');
    expect(spec!.replicas).toBe(1);
    expect(spec!.strategy).toEqual({ type: 'Recreate' });
  });

  it('gives the autoscaler its pod name (lease identity), namespace and the mounted schedule', () => {
    const autoscaler = find<Workload>(main, 'Deployment', 'roomcast-autoscaler');
    const c = container(autoscaler, 'autoscaler');
    expect(c.env?.find((e) => e.name === 'ROOMCAST_POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(c.env?.find((e) => e.name === 'ROOMCAST_K8S_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    expect(envValue(c, 'ROOMCAST_LEASE_NAME')).toBe('roomcast-autoscaler');
    expect(Number(envValue(c, 'ROOMCAST_AUTOSCALER_HTTP_PORT'))).toBe(c.ports?.find((p) => p.name === 'http')?.containerPort);

    const scheduleFile = envValue(c, 'ROOMCAST_SCHEDULE_FILE');
    expect(scheduleFile).toBe('/etc/roomcast/schedule.json');
    // A directory mount (no subPath), so that edits of the ConfigMap reach the running pod.
    const mount = c.volumeMounts?.find((m) => m.mountPath === dirname(scheduleFile));
    expect(mount?.subPath).toBeUndefined();
    const volume = autoscaler.spec.template.spec?.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.configMap?.name).toBe('roomcast-schedule');

    const schedule = JSON.parse(find<ConfigMap>(main, 'ConfigMap', 'roomcast-schedule').data![basename(scheduleFile)]!) as {
      events: Array<{ name: string; start: string; end: string; expectedViewers: number }>;
    };
    expect(schedule.events.length).toBeGreaterThan(0);
    for (const event of schedule.events) {
      expect(Object.keys(event).sort()).toEqual(['end', 'expectedViewers', 'name', 'start']);
      expect(Date.parse(event.end)).toBeGreaterThan(Date.parse(event.start));
      expect(Number.isSafeInteger(event.expectedViewers) && event.expectedViewers > 0).toBe(true);
    }
  });

  it('keeps the HPA alternative free of the autoscaler', () => {
    const autoscalerParts = hpa.filter((o) => o.metadata.name === 'roomcast-autoscaler' || o.metadata.labels?.['app.kubernetes.io/component'] === 'autoscaler' || o.kind === 'Role' || o.kind === 'RoleBinding');
    expect(autoscalerParts.map(id)).toEqual([]);
    expect(ofKind(hpa, 'HorizontalPodAutoscaler').map((o) => id(o as K8sObject))).toEqual(['HorizontalPodAutoscaler/roomcast-gateway']);
  });

  it('keeps the main kustomization free of HorizontalPodAutoscalers', () => {
    expect(main.filter((o) => o.kind === 'HorizontalPodAutoscaler').map(id)).toEqual([]);
    find<Deployment>(main, 'Deployment', 'roomcast-autoscaler');
  });

  it('lets the HPA scale the gateways on connections per pod: up at once, down one pod a minute after 600 s', () => {
    const { spec } = find<HorizontalPodAutoscaler>(hpa, 'HorizontalPodAutoscaler', 'roomcast-gateway');
    expect(spec!.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'roomcast-gateway' });
    const podsMetric = spec!.metrics?.find((m) => m.type === 'Pods')?.pods;
    expect(podsMetric?.metric.name).toBe('roomcast_gateway_connections');
    expect(podsMetric?.target.type).toBe('AverageValue');
    expect(spec!.behavior?.scaleUp?.stabilizationWindowSeconds).toBe(0);
    expect(spec!.behavior?.scaleDown?.stabilizationWindowSeconds).toBe(600);
    expect(spec!.behavior?.scaleDown?.policies).toEqual([{ type: 'Pods', value: 1, periodSeconds: 60 }]);
  });
});

describe('deploy/k8s/README.md', () => {
  it('lists every autoscaler setting with its current default, and no other', () => {
    const guide = readFileSync(new URL('../../deploy/k8s/README.md', import.meta.url), 'utf8');
    const section = guide.split('### Autoscaler settings')[1]?.split(/\n## /)[0] ?? '';
    const rows = [...section.matchAll(/^\| `(ROOMCAST_[A-Z0-9_]+)` \| `([^`]*)` \|/gm)].map((m) => [m[1], m[2]]);
    const settings = AUTOSCALER_SETTINGS.map((s) => [s.env, s.default === null ? '(none)' : String(s.default)]);
    expect(rows).toEqual(settings);
  });
});

function keysOf(objects: K8sObject[], kind: string, name: string): string[] {
  return Object.keys(find<{ data?: Record<string, string> }>(objects, kind, name).data ?? {});
}
