/**
 * A stand-in for the Kubernetes API server (the one component that cannot run here), behaving as
 * the real one does for the calls the autoscaler makes: the Deployment, its scale subresource
 * (GET/PATCH with merge or strategic merge patches, resourceVersion preconditions), pods listed by
 * label selector and patched (merge or strategic merge; 415 for other patch types), and
 * coordination.k8s.io Leases (create, get, update with optimistic concurrency). Errors are `kind:
 * Status` objects with the real reasons and codes. Every request is recorded for assertions.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  contentType: string | undefined;
  authorization: string | undefined;
  body: any;
}

export interface FakePodSpec {
  ip: string;
  ready?: boolean;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  cpuRequest?: string;
  createdMs?: number;
  readyMs?: number;
  /** Being deleted (metadata.deletionTimestamp set), as while a gateway drains. */
  terminating?: boolean;
}

type Json = Record<string, any>;

const MERGE = 'application/merge-patch+json';
const STRATEGIC = 'application/strategic-merge-patch+json';

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  /** Runs before each request is answered: lets a test change the state in between two calls, as another client would. */
  onRequest: ((request: RecordedRequest) => void) | null = null;
  private server: Server | null = null;
  private version = 100;
  private readonly deployments = new Map<string, Json>();
  private readonly pods = new Map<string, Json>();
  private readonly leases = new Map<string, Json>();

  /** @param token when set, requests without `Authorization: Bearer <token>` get 401. */
  constructor(readonly namespace: string, private readonly token: string | null = null) {}

  async listen(tls?: { key: string; cert: string }): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => { void this.handle(req, res); };
    this.server = tls ? createHttpsServer({ key: tls.key, cert: tls.cert }, handler) : createHttpServer(handler);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    const port = (this.server.address() as { port: number }).port;
    return `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  get port(): number {
    return (this.server!.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections?.();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private nextVersion(): string {
    return String(++this.version);
  }

  addDeployment(name: string, replicas: number, matchLabels: Record<string, string>): void {
    this.deployments.set(name, {
      apiVersion: 'apps/v1', kind: 'Deployment',
      metadata: { name, namespace: this.namespace, uid: `uid-${name}`, generation: 1, resourceVersion: this.nextVersion(), creationTimestamp: new Date().toISOString() },
      spec: { replicas, selector: { matchLabels }, template: { metadata: { labels: matchLabels } } },
      status: { observedGeneration: 1, replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas },
    });
  }

  deployment(name: string): Json {
    return this.deployments.get(name)!;
  }

  /** Sets spec.replicas, as `kubectl scale` would. */
  scaleDeployment(name: string, replicas: number): void {
    const d = this.deployments.get(name)!;
    d.spec.replicas = replicas;
    d.metadata.generation += 1;
    d.metadata.resourceVersion = this.nextVersion();
  }

  /** Sets status fields, as the Deployment controller would (e.g. a rollout in progress). */
  setDeploymentStatus(name: string, status: Json, generation?: number): void {
    const d = this.deployments.get(name)!;
    Object.assign(d.status, status);
    if (generation !== undefined) d.metadata.generation = generation;
    d.metadata.resourceVersion = this.nextVersion();
  }

  addPod(name: string, spec: FakePodSpec): void {
    const createdMs = spec.createdMs ?? Date.now() - 60_000;
    const ready = spec.ready ?? true;
    this.pods.set(name, {
      apiVersion: 'v1', kind: 'Pod',
      metadata: {
        name, namespace: this.namespace, uid: `uid-${name}`, labels: { ...spec.labels }, annotations: { ...spec.annotations },
        resourceVersion: this.nextVersion(), creationTimestamp: new Date(createdMs).toISOString(),
        ...(spec.terminating ? { deletionTimestamp: new Date().toISOString(), deletionGracePeriodSeconds: 45 } : {}),
      },
      spec: { containers: [{ name: 'gateway', image: 'roomcast', resources: spec.cpuRequest ? { requests: { cpu: spec.cpuRequest } } : {} }] },
      status: {
        phase: 'Running', podIP: spec.ip,
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date(ready ? spec.readyMs ?? createdMs + 20_000 : createdMs).toISOString() }],
      },
    });
  }

  pod(name: string): Json | undefined {
    return this.pods.get(name);
  }

  lease(name: string): Json | undefined {
    return this.leases.get(name);
  }

  /** Writes a Lease as another holder would. */
  putLease(name: string, spec: Json): void {
    this.leases.set(name, {
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: { name, namespace: this.namespace, resourceVersion: this.nextVersion() }, spec,
    });
  }

  requestsTo(method: string, pathPart: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path.includes(pathPart));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: any = null;
    const contentType = req.headers['content-type']?.split(';')[0]?.trim();
    if (raw !== '') {
      try { body = JSON.parse(raw); } catch { return this.status(res, 400, 'BadRequest', 'the body is not valid JSON'); }
    }
    const recorded = { method: req.method ?? '', path: url.pathname, query: url.searchParams, contentType, authorization: req.headers.authorization, body };
    this.requests.push(recorded);
    this.onRequest?.(recorded);
    if (this.token !== null && req.headers.authorization !== `Bearer ${this.token}`) return this.status(res, 401, 'Unauthorized', 'Unauthorized');
    try {
      this.route(req.method ?? '', url, contentType, body, res);
    } catch (error) {
      this.status(res, 500, 'InternalError', String(error));
    }
  }

  private route(method: string, url: URL, contentType: string | undefined, body: any, res: ServerResponse): void {
    const path = url.pathname;
    const ns = this.namespace;
    let m: RegExpExecArray | null;
    if ((m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)(\/scale)?$/.exec(path))) {
      const [, namespace, name, scale] = m;
      const d = namespace === ns ? this.deployments.get(name!) : undefined;
      const kind = scale ? 'deployments/scale' : 'deployments';
      if (!d) return this.status(res, 404, 'NotFound', `deployments.apps "${name}" not found`, { name, group: 'apps', kind: 'deployments' });
      if (!scale) {
        if (method !== 'GET') return this.status(res, 405, 'MethodNotAllowed', `the server does not allow this method on ${kind}`);
        return this.json(res, 200, d);
      }
      if (method === 'GET') return this.json(res, 200, this.scaleOf(d));
      if (method !== 'PATCH') return this.status(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
      if (contentType !== MERGE && contentType !== STRATEGIC) return this.unsupportedPatch(res, contentType);
      const wantedVersion = body?.metadata?.resourceVersion;
      if (wantedVersion !== undefined && wantedVersion !== d.metadata.resourceVersion) {
        return this.status(res, 409, 'Conflict', `Operation cannot be fulfilled on deployments.apps "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: 'apps', kind: 'deployments' });
      }
      const replicas = body?.spec?.replicas;
      if (replicas !== undefined) {
        if (!Number.isInteger(replicas) || replicas < 0) return this.status(res, 422, 'Invalid', `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`);
        if (replicas !== d.spec.replicas) {
          d.spec.replicas = replicas;
          d.metadata.generation += 1;
          d.metadata.resourceVersion = this.nextVersion();
        }
      }
      return this.json(res, 200, this.scaleOf(d));
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path))) {
      if (method !== 'GET') return this.status(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
      const selector = parseSelector(url.searchParams.get('labelSelector') ?? '');
      if (!selector) return this.status(res, 400, 'BadRequest', `unable to parse requirement: ${url.searchParams.get('labelSelector')}`);
      const items = m[1] === ns ? [...this.pods.values()].filter((p) => selector(p.metadata.labels ?? {})) : [];
      return this.json(res, 200, { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: String(this.version) }, items });
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path))) {
      const pod = m[1] === ns ? this.pods.get(m[2]!) : undefined;
      if (!pod) return this.status(res, 404, 'NotFound', `pods "${m[2]}" not found`, { name: m[2], kind: 'pods' });
      if (method === 'GET') return this.json(res, 200, pod);
      if (method !== 'PATCH') return this.status(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
      if (contentType !== MERGE && contentType !== STRATEGIC) return this.unsupportedPatch(res, contentType);
      const annotations = body?.metadata?.annotations;
      if (annotations && typeof annotations === 'object') {
        pod.metadata.annotations ??= {};
        for (const [key, value] of Object.entries(annotations)) {
          if (value === null) delete pod.metadata.annotations[key];
          else if (typeof value !== 'string') return this.status(res, 400, 'BadRequest', `json: cannot unmarshal ${typeof value} into Go struct field ObjectMeta.metadata.annotations of type string`);
          else pod.metadata.annotations[key] = value;
        }
        pod.metadata.resourceVersion = this.nextVersion();
      }
      return this.json(res, 200, pod);
    }
    if ((m = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/.exec(path))) {
      const [, namespace, name] = m;
      if (namespace !== ns) return this.status(res, 404, 'NotFound', `namespaces "${namespace}" not found`);
      if (!name) {
        if (method !== 'POST') return this.status(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        const leaseName = body?.metadata?.name;
        if (typeof leaseName !== 'string') return this.status(res, 422, 'Invalid', 'Lease.coordination.k8s.io is invalid: metadata.name: Required value');
        if (this.leases.has(leaseName)) return this.status(res, 409, 'AlreadyExists', `leases.coordination.k8s.io "${leaseName}" already exists`, { name: leaseName, group: 'coordination.k8s.io', kind: 'leases' });
        const bad = badMicroTimes(body.spec);
        if (bad) return this.status(res, 400, 'BadRequest', bad);
        const lease = { ...body, metadata: { ...body.metadata, namespace: ns, resourceVersion: this.nextVersion(), uid: `uid-lease-${leaseName}` } };
        this.leases.set(leaseName, lease);
        return this.json(res, 201, lease);
      }
      const lease = this.leases.get(name);
      if (method === 'GET') return lease ? this.json(res, 200, lease) : this.status(res, 404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`, { name, group: 'coordination.k8s.io', kind: 'leases' });
      if (method !== 'PUT') return this.status(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
      if (!lease) return this.status(res, 404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`, { name, group: 'coordination.k8s.io', kind: 'leases' });
      const precondition = body?.metadata?.resourceVersion;
      if (precondition !== undefined && precondition !== lease.metadata.resourceVersion) {
        return this.status(res, 409, 'Conflict', `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: 'coordination.k8s.io', kind: 'leases' });
      }
      const bad = badMicroTimes(body?.spec);
      if (bad) return this.status(res, 400, 'BadRequest', bad);
      const updated = { ...body, metadata: { ...lease.metadata, resourceVersion: this.nextVersion() } };
      this.leases.set(name, updated);
      return this.json(res, 200, updated);
    }
    return this.status(res, 404, 'NotFound', 'the server could not find the requested resource');
  }

  private scaleOf(d: Json): Json {
    const selector = Object.entries(d.spec.selector.matchLabels as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',');
    return {
      apiVersion: 'autoscaling/v1', kind: 'Scale',
      metadata: { name: d.metadata.name, namespace: d.metadata.namespace, uid: d.metadata.uid, resourceVersion: d.metadata.resourceVersion, creationTimestamp: d.metadata.creationTimestamp },
      spec: { replicas: d.spec.replicas },
      status: { replicas: d.status.replicas, selector },
    };
  }

  private unsupportedPatch(res: ServerResponse, contentType: string | undefined): void {
    this.status(res, 415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${MERGE}, ${STRATEGIC} (got ${contentType ?? 'none'})`);
  }

  private json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  }

  private status(res: ServerResponse, code: number, reason: string, message: string, details?: Json): void {
    this.json(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code });
  }
}

/** Equality-based label selectors (`a=b`, `a==b`, `a!=b`, comma separated); null when unparseable. */
function parseSelector(raw: string): ((labels: Record<string, string>) => boolean) | null {
  if (raw.trim() === '') return () => true;
  const terms: Array<(labels: Record<string, string>) => boolean> = [];
  for (const part of raw.split(',')) {
    const m = /^\s*([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$/.exec(part);
    if (!m) return null;
    const [, key, op, value] = m;
    terms.push(op === '!=' ? (l) => l[key!] !== value : (l) => l[key!] === value);
  }
  return (labels) => terms.every((t) => t(labels));
}

/** MicroTime fields must carry six fractional digits, or the real server fails to decode the body. */
function badMicroTimes(spec: Json | undefined): string | null {
  for (const field of ['acquireTime', 'renewTime']) {
    const value = spec?.[field];
    if (value !== undefined && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$/.test(String(value))) {
      return `Lease in version "v1" cannot be handled as a Lease: parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse`;
    }
  }
  return null;
}
