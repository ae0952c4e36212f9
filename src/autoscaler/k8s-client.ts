/**
 * The one file that speaks to the Kubernetes API (@kubernetes/client-node 1.x): credentials from a
 * kubeconfig or the in-cluster service account, the gateway Deployment's scale, rollout state and
 * pods, the two patches, and the Lease. Everything leaves here as the plain types of cluster-api.ts.
 */
import {
  ApiException, AppsV1Api, CoordinationV1Api, CoreV1Api, KubeConfig, PatchStrategy, V1MicroTime, setHeaderOptions,
  type V1Lease, type V1Pod,
} from '@kubernetes/client-node';
import {
  DELETION_COST_ANNOTATION, KubeApiError, METRICS_PORT_ANNOTATION,
  type GatewayPod, type LeaseRecord, type LeaseStore, type RolloutView, type ScaleTarget, type ScaleView,
} from './cluster-api.js';

export interface KubeConnectOptions {
  /** A kubeconfig file; null: in-cluster when KUBERNETES_SERVICE_HOST is set, else the default kubeconfig. */
  kubeconfig: string | null;
  /** Where the service account files are, for tests (`<prefix>/var/run/secrets/kubernetes.io/serviceaccount`). */
  inClusterPathPrefix?: string;
  env?: Readonly<Record<string, string | undefined>>;
}

export interface KubeConnection {
  kubeConfig: KubeConfig;
  /** The namespace of the current context (in-cluster: the pod's own), or null. */
  contextNamespace: string | null;
  server: string;
}

export function connectKube(options: KubeConnectOptions): KubeConnection {
  const env = options.env ?? process.env;
  const kc = new KubeConfig();
  if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
  else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster(options.inClusterPathPrefix);
  else kc.loadFromDefault();
  const context = kc.getContextObject(kc.getCurrentContext());
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeApiError(0, 'NoCluster', 'the kubeconfig has no current cluster');
  return { kubeConfig: kc, contextNamespace: context?.namespace?.trim() || null, server: cluster.server };
}

/** Reasons by status, for answers whose body client-node drops (it does for 401). */
const REASONS: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 415: 'UnsupportedMediaType', 422: 'Invalid', 429: 'TooManyRequests' };

/** Turns client-node failures into KubeApiError with the Status object's reason; other errors (network, TLS) pass through as the cause. */
async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ApiException) {
      let status: { reason?: string; message?: string } = {};
      const body: unknown = error.body;
      try { status = typeof body === 'string' ? JSON.parse(body) : (body as typeof status) ?? {}; } catch { /* not a Status object */ }
      throw new KubeApiError(error.code, status.reason ?? REASONS[error.code] ?? 'Unknown', `${what}: HTTP ${error.code} ${status.message ?? ''}`.trim(), { cause: error });
    }
    throw new KubeApiError(0, 'Unreachable', `${what}: ${(error as Error).message}`, { cause: error });
  }
}

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Parses a CPU quantity ("500m", "1", "0.25", "250000u") into cores; null when it is not one. */
export function parseCpuQuantity(raw: string): number | null {
  const match = /^([0-9]*\.?[0-9]+)(m|u|n)?$/.exec(raw.trim());
  if (!match) return null;
  const value = Number(match[1]);
  const scale = match[2] === 'm' ? 1e-3 : match[2] === 'u' ? 1e-6 : match[2] === 'n' ? 1e-9 : 1;
  return value * scale;
}

function toGatewayPod(pod: V1Pod): GatewayPod {
  const annotations = pod.metadata?.annotations ?? {};
  const readyCondition = pod.status?.conditions?.find((c) => c.type === 'Ready');
  const ready = readyCondition?.status === 'True';
  let cpu: number | null = null;
  for (const container of pod.spec?.containers ?? []) {
    const request = container.resources?.requests?.cpu;
    const cores = request === undefined ? null : parseCpuQuantity(String(request));
    if (cores !== null) cpu = (cpu ?? 0) + cores;
  }
  const port = Number(annotations[METRICS_PORT_ANNOTATION]);
  const phase = pod.status?.phase;
  return {
    name: pod.metadata?.name ?? '',
    uid: pod.metadata?.uid ?? pod.metadata?.name ?? '',
    ip: pod.status?.podIP ?? null,
    ready,
    terminating: pod.metadata?.deletionTimestamp !== undefined || phase === 'Failed' || phase === 'Succeeded',
    createdMs: pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : 0,
    readySinceMs: ready && readyCondition?.lastTransitionTime ? new Date(readyCondition.lastTransitionTime).getTime() : null,
    cpuRequestCores: cpu !== null && cpu > 0 ? cpu : null,
    metricsPort: Number.isInteger(port) && port > 0 && port < 65536 ? port : null,
    deletionCost: annotations[DELETION_COST_ANNOTATION] ?? null,
  };
}

/** The gateway Deployment as a ScaleTarget. */
export class K8sScaleTarget implements ScaleTarget {
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;

  constructor(connection: KubeConnection, private readonly namespace: string, private readonly deployment: string) {
    this.apps = connection.kubeConfig.makeApiClient(AppsV1Api);
    this.core = connection.kubeConfig.makeApiClient(CoreV1Api);
  }

  async readScale(): Promise<ScaleView> {
    const scale = await call('reading the scale', () => this.apps.readNamespacedDeploymentScale({ name: this.deployment, namespace: this.namespace }));
    return {
      specReplicas: scale.spec?.replicas ?? 0,
      statusReplicas: scale.status?.replicas ?? 0,
      selector: scale.status?.selector ?? '',
      resourceVersion: scale.metadata?.resourceVersion ?? '',
    };
  }

  async readRollout(): Promise<RolloutView> {
    const d = await call('reading the deployment', () => this.apps.readNamespacedDeployment({ name: this.deployment, namespace: this.namespace }));
    return {
      generation: d.metadata?.generation ?? 0,
      observedGeneration: d.status?.observedGeneration ?? 0,
      specReplicas: d.spec?.replicas ?? 0,
      replicas: d.status?.replicas ?? 0,
      updatedReplicas: d.status?.updatedReplicas ?? 0,
      readyReplicas: d.status?.readyReplicas ?? 0,
      availableReplicas: d.status?.availableReplicas ?? 0,
    };
  }

  async listPods(selector: string): Promise<GatewayPod[]> {
    const list = await call('listing pods', () => this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: selector }));
    return list.items.map(toGatewayPod);
  }

  async patchReplicas(replicas: number, resourceVersion: string): Promise<void> {
    const body = { metadata: { resourceVersion }, spec: { replicas } };
    await call('patching the scale', () => this.apps.patchNamespacedDeploymentScale(
      { name: this.deployment, namespace: this.namespace, body, fieldManager: 'roomcast-autoscaler' }, MERGE_PATCH,
    ));
  }

  async setDeletionCost(podName: string, cost: string | null): Promise<void> {
    await call(`annotating pod ${podName}`, () => this.core.patchNamespacedPod(
      { name: podName, namespace: this.namespace, body: { metadata: { annotations: { [DELETION_COST_ANNOTATION]: cost } } }, fieldManager: 'roomcast-autoscaler' }, MERGE_PATCH,
    ));
  }
}

function toLeaseRecord(lease: V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  return {
    holderIdentity: spec.holderIdentity ?? null,
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTimeMs: spec.acquireTime ? new Date(spec.acquireTime).getTime() : null,
    renewTimeMs: spec.renewTime ? new Date(spec.renewTime).getTime() : null,
    leaseTransitions: spec.leaseTransitions ?? 0,
    ...(lease.metadata?.resourceVersion ? { resourceVersion: lease.metadata.resourceVersion } : {}),
  };
}

/** The coordination.k8s.io/v1 Lease that elects the active autoscaler. */
export class K8sLeaseStore implements LeaseStore {
  private readonly api: CoordinationV1Api;

  constructor(connection: KubeConnection, private readonly namespace: string, private readonly name: string) {
    this.api = connection.kubeConfig.makeApiClient(CoordinationV1Api);
  }

  private toLease(record: LeaseRecord): V1Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace, ...(record.resourceVersion ? { resourceVersion: record.resourceVersion } : {}) },
      spec: {
        ...(record.holderIdentity ? { holderIdentity: record.holderIdentity } : {}),
        leaseDurationSeconds: record.leaseDurationSeconds,
        // MicroTime: the API server wants six fractional digits.
        ...(record.acquireTimeMs !== null ? { acquireTime: new V1MicroTime(record.acquireTimeMs) } : {}),
        ...(record.renewTimeMs !== null ? { renewTime: new V1MicroTime(record.renewTimeMs) } : {}),
        leaseTransitions: record.leaseTransitions,
      },
    };
  }

  async get(): Promise<LeaseRecord | null> {
    try {
      return toLeaseRecord(await call('reading the lease', () => this.api.readNamespacedLease({ name: this.name, namespace: this.namespace })));
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return null;
      throw error;
    }
  }

  async create(record: LeaseRecord): Promise<LeaseRecord> {
    return toLeaseRecord(await call('creating the lease', () => this.api.createNamespacedLease({ namespace: this.namespace, body: this.toLease(record) })));
  }

  async replace(record: LeaseRecord): Promise<LeaseRecord> {
    return toLeaseRecord(await call('updating the lease', () => this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: this.toLease(record) })));
  }
}
