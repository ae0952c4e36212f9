/**
 * The autoscaler against a stand-in Kubernetes API (test/helpers/fake-kube-api.ts) whose pods point
 * at real gateways with real WebSocket clients connected: it scrapes them, decides, marks the
 * least-loaded pod with pod-deletion-cost, patches the scale, and takes part in the Lease.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadAutoscalerConfig, type AutoscalerConfig } from '../../src/autoscaler/config.js';
import { startAutoscaler, type RunningAutoscaler } from '../../src/autoscaler/main.js';
import { KubeApiError } from '../../src/autoscaler/cluster-api.js';
import { K8sLeaseStore, K8sScaleTarget, connectKube } from '../../src/autoscaler/k8s-client.js';
import { VICTIM_DELETION_COST } from '../../src/autoscaler/autoscaler.js';
import { createLogger } from '../../src/shared/log.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { FakeKubeApi } from '../helpers/fake-kube-api.js';
import { eventually } from '../helpers/latch.js';
import { WsTestClient } from '../helpers/ws-client.js';

const NS = 'roomcast';
const TOKEN = 'sa-token-for-tests';
const LABELS = { 'app.kubernetes.io/name': 'roomcast', 'app.kubernetes.io/component': 'gateway' };
const COST = 'controller.kubernetes.io/pod-deletion-cost';

let cluster: Cluster;
let dir: string;
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ mode: 'embedded', gateways: 4 });
  dir = mkdtempSync(join(tmpdir(), 'roomcast-autoscaler-'));
  // Load: 3, 1, 0 and 2 viewers on the four gateways.
  const perGateway = [3, 1, 0, 2];
  for (const [g, count] of perGateway.entries()) {
    for (let i = 0; i < count; i++) {
      const client = await WsTestClient.connect(cluster.gateways[g]!.url, { token: await cluster.token(`viewer-${g}-${i}`) });
      await client.next((f) => f.t === 'welcome');
      clients.push(client);
    }
  }
  await eventually(async () => {
    const counts = await Promise.all(cluster.gateways.map(async (g) => (await (await fetch(g.metricsUrl)).text()).match(/^roomcast_gateway_connections (\d+)/m)?.[1]));
    return counts.join(',') === perGateway.join(',');
  }, { what: 'gateway connection gauges' });
});

afterAll(async () => {
  for (const client of clients) client.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Harness {
  fake: FakeKubeApi;
  running: RunningAutoscaler;
  logs: Array<Record<string, any>>;
  clock: { now: () => number; advance(ms: number): void };
}
const harnesses: Harness[] = [];
const listeners: Server[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) {
    await h.running.stop();
    await h.fake.close();
  }
  for (const listener of listeners.splice(0)) await new Promise((resolve) => listener.close(resolve));
});

/**
 * The metrics port of a pod that cannot be scraped: ours, dropping every connection at once. (A port
 * merely found free could be taken by another process before the scrape, which might even answer.)
 */
async function droppingListener(): Promise<{ port: number }> {
  const listener = createServer((socket) => socket.destroy());
  listeners.push(listener);
  await new Promise<void>((resolve, reject) => listener.once('error', reject).listen(0, '127.0.0.1', resolve));
  return { port: (listener.address() as { port: number }).port };
}

function writeKubeconfig(server: string, token: string): string {
  const path = join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, [
    'apiVersion: v1', 'kind: Config', 'current-context: test',
    'clusters:', `- name: fake`, `  cluster: {server: "${server}", insecure-skip-tls-verify: true}`,
    'users:', `- name: autoscaler`, `  user: {token: "${token}"}`,
    'contexts:', `- name: test`, `  context: {cluster: fake, user: autoscaler, namespace: ${NS}}`,
  ].join('\n'));
  return path;
}

/** A fake API with the gateway Deployment at `replicas` and one pod per gateway, and an autoscaler pointed at it (no timers). */
async function harness(replicas: number, env: Record<string, string> = {}, gateways = [0, 1, 2, 3]): Promise<Harness> {
  const fake = new FakeKubeApi(NS, TOKEN);
  const server = await fake.listen();
  fake.addDeployment('roomcast-gateway', replicas, LABELS);
  for (const i of gateways) {
    fake.addPod(`gw-${i}`, { ip: '127.0.0.1', labels: LABELS, cpuRequest: '500m', annotations: { 'roomcast.io/metrics-port': String(cluster.gateways[i]!.gateway.httpPort) } });
  }
  fake.addPod('other-app', { ip: '127.0.0.1', labels: { 'app.kubernetes.io/name': 'something-else' } });
  const config: AutoscalerConfig = loadAutoscalerConfig({
    ROOMCAST_KUBECONFIG: writeKubeconfig(server, TOKEN),
    ROOMCAST_AUTOSCALER_HTTP_HOST: '127.0.0.1',
    ROOMCAST_AUTOSCALER_HTTP_PORT: '0',
    ROOMCAST_SCHEDULE_FILE: join(dir, 'no-schedule.json'),
    ROOMCAST_POD_NAME: 'autoscaler-a',
    ROOMCAST_MIN_REPLICAS: '1',
    ROOMCAST_FALLBACK_REPLICAS: '2',
    // Two connections per gateway; CPU and lag read but set so they never decide here.
    ROOMCAST_TARGET_CONNECTIONS: '2',
    ROOMCAST_TARGET_NEW_CONNECTIONS_PER_SEC: '0',
    ROOMCAST_TARGET_CPU_UTILIZATION: '10',
    ROOMCAST_TARGET_LAG_P99_S: '60',
    ...env,
  }).config;
  let t = Date.now();
  const clock = { now: () => t, advance: (ms: number) => { t += ms; } };
  const logs: Array<Record<string, any>> = [];
  const log = createLogger({ level: 'info', write: (line) => logs.push(JSON.parse(line)) });
  const running = await startAutoscaler(config, { log, clock, loops: false, env: {} });
  const h = { fake, running, logs, clock };
  harnesses.push(h);
  return h;
}

describe('autoscaler against the Kubernetes API', () => {
  it('scrapes the real gateways and patches the scale up (merge patch, token sent)', async () => {
    const { fake, running, logs, clock } = await harness(2, {}, [0, 3]);
    expect(await running.leaseRound()).toBe(true);
    const up = await running.autoscaler.runOnce();
    // 3 + 2 viewers on two gateways, 2 per gateway wanted: ratio 1.25 → 3 replicas.
    expect(up).toMatchObject({ currentReplicas: 2, replicas: 3, action: 'up', totalConnections: 5 });
    const patches = fake.requestsTo('PATCH', '/deployments/roomcast-gateway/scale');
    expect(patches).toHaveLength(1);
    expect(patches[0]).toMatchObject({ contentType: 'application/merge-patch+json', authorization: `Bearer ${TOKEN}`, body: { spec: { replicas: 3 } } });
    expect(fake.deployment('roomcast-gateway').spec.replicas).toBe(3);
    // Pods were listed by the scale's selector, not by name.
    const list = fake.requestsTo('GET', `/api/v1/namespaces/${NS}/pods`).at(-1)!;
    expect(list.query.get('labelSelector')).toBe('app.kubernetes.io/name=roomcast,app.kubernetes.io/component=gateway');
    const line = logs.filter((l) => l.msg === 'decision').at(-1)!;
    expect(line).toMatchObject({ current: 2, desired: 3, action: 'up', applied: true, dryRun: false, reasons: ['metric:connections'], pods: 2, ready: 2, missing: 0 });

    // The new pod is not there yet: the same answer, no second patch.
    clock.advance(5000);
    expect(await running.autoscaler.runOnce()).toMatchObject({ currentReplicas: 3, replicas: 3, action: 'hold' });
    expect(fake.requestsTo('PATCH', '/scale')).toHaveLength(1);
    // The autoscaler's own /metrics carries the inputs and the decision; CPU came from the pods' requests.
    const own = await (await fetch(`http://127.0.0.1:${running.httpPort}/metrics`)).text();
    expect(own).toMatch(/^roomcast_autoscaler_desired_replicas\{source="connections"\} 3$/m);
    expect(own).toMatch(/^roomcast_autoscaler_metric_usage\{metric="connections"\} 2.5$/m);
    expect(own).toMatch(/^roomcast_autoscaler_metric_usage\{metric="cpu"\} [0-9.e-]+$/m);
    expect(own).toMatch(/^roomcast_autoscaler_decisions_total\{action="up"\} 1$/m);
    expect(own).toMatch(/^roomcast_autoscaler_leader 1$/m);
    const health = await fetch(`http://127.0.0.1:${running.httpPort}/healthz`);
    expect(health.status).toBe(200);
  });

  it('held at maxReplicas: a warn line with reason capped_at_max and the capped gauge at 1, back to 0 when the cap no longer binds', async () => {
    const { running, logs, clock } = await harness(2, { ROOMCAST_MAX_REPLICAS: '2', ROOMCAST_FALLBACK_REPLICAS: '2' }, [0, 3]);
    await running.leaseRound();
    // 5 viewers, 2 per gateway wanted: 3 replicas, but at most 2.
    expect(await running.autoscaler.runOnce()).toMatchObject({ replicas: 2, wanted: 3, cappedAtMax: true, reasons: ['metric:connections', 'clamp:max', 'capped_at_max'] });
    const own = async () => (await (await fetch(`http://127.0.0.1:${running.httpPort}/metrics`)).text());
    expect(await own()).toMatch(/^roomcast_autoscaler_capped 1$/m);
    expect(logs.filter((l) => l.reason === 'capped_at_max')).toEqual([expect.objectContaining({ level: 'warn', msg: 'held at maxReplicas', maxReplicas: 2, wanted: 3 })]);
    expect(logs.filter((l) => l.msg === 'decision').at(-1)).toMatchObject({ capped: true, reasons: expect.arrayContaining(['capped_at_max']) });
    // Still capped next period: the warning is not repeated (the decision lines carry the reason).
    clock.advance(5000);
    await running.autoscaler.runOnce();
    expect(logs.filter((l) => l.reason === 'capped_at_max')).toHaveLength(1);
  });

  it('before scaling down, marks the least-loaded pod with pod-deletion-cost and clears stale marks', async () => {
    const { fake, running, logs } = await harness(4);
    fake.pod('gw-0')!.metadata.annotations[COST] = VICTIM_DELETION_COST;
    const versionRead = fake.deployment('roomcast-gateway').metadata.resourceVersion;
    await running.leaseRound();
    // 6 connections on 4 pods, 2 per pod → 3; one pod per step.
    const decision = await running.autoscaler.runOnce();
    expect(decision).toMatchObject({ currentReplicas: 4, replicas: 3, action: 'down' });
    const writes = fake.requests.filter((r) => r.method === 'PATCH');
    expect(writes.map((r) => r.path)).toEqual([
      `/api/v1/namespaces/${NS}/pods/gw-0`,
      `/api/v1/namespaces/${NS}/pods/gw-2`,
      `/apis/apps/v1/namespaces/${NS}/deployments/roomcast-gateway/scale`,
    ]);
    expect(writes[0]).toMatchObject({ contentType: 'application/merge-patch+json', body: { metadata: { annotations: { [COST]: null } } } });
    expect(writes[1]).toMatchObject({ contentType: 'application/merge-patch+json', body: { metadata: { annotations: { [COST]: VICTIM_DELETION_COST } } } });
    expect(writes[2]!.body).toEqual({ metadata: { resourceVersion: versionRead }, spec: { replicas: 3 } });
    expect(fake.pod('gw-2')!.metadata.annotations[COST]).toBe(VICTIM_DELETION_COST);
    expect(fake.pod('gw-0')!.metadata.annotations[COST]).toBeUndefined();
    expect(logs.filter((l) => l.msg === 'decision').at(-1)).toMatchObject({ victims: ['gw-2'], reasons: ['metric:connections', 'stabilized'] });
  });

  it('a pod that cannot be scraped counts as missing (at the target when scaling down) and is not chosen to go', async () => {
    // CPU and lag off: for a hot-pod quantile a pod without figures, counted at the target, holds any scale-down.
    const { fake, running, logs, clock } = await harness(4, { ROOMCAST_TARGET_CPU_UTILIZATION: '0', ROOMCAST_TARGET_LAG_P99_S: '0' }, [0, 1, 2]);
    const dead = await droppingListener();
    fake.addPod('gw-dead', { ip: '127.0.0.1', labels: LABELS, annotations: { 'roomcast.io/metrics-port': String(dead.port) } });
    // A pod being deleted that still drains its 2 viewers: out of the fleet, its viewers still in the total.
    fake.addPod('gw-old', { ip: '127.0.0.1', labels: LABELS, terminating: true, ready: false, annotations: { 'roomcast.io/metrics-port': String(cluster.gateways[3]!.gateway.httpPort) } });
    await running.leaseRound();
    // Figures 3, 1, 0 (mean 1.33 of target 2: down); the missing pod counts as 2 → mean 1.5 → 3 replicas.
    expect(await running.autoscaler.runOnce()).toMatchObject({ currentReplicas: 4, replicas: 3, action: 'down', totalConnections: 6 });
    expect(logs.filter((l) => l.msg === 'decision').at(-1)).toMatchObject({ pods: 4, ready: 4, missing: 1, draining: 1, victims: ['gw-2'] });
    expect(logs.some((l) => l.msg === 'scrape failed' && l.pod === 'gw-dead')).toBe(true);
    const own = await (await fetch(`http://127.0.0.1:${running.httpPort}/metrics`)).text();
    expect(own).toMatch(/^roomcast_autoscaler_failures_total\{stage="scrape"\} 1$/m);

    // No period completes for a while (a hung call, as far as the probe can tell): /healthz says so.
    clock.advance(60_000);
    const stalled = await fetch(`http://127.0.0.1:${running.httpPort}/healthz`);
    expect(stalled.status).toBe(503);
    expect(await stalled.json()).toMatchObject({ status: 'stalled' });
  });

  it('patches only the scale it read: a change in between (409 Conflict) waits for the next period', async () => {
    const { fake, running, logs } = await harness(2, {}, [0, 3]);
    await running.leaseRound();
    // An operator scales by hand between the autoscaler's read of the scale and its patch.
    fake.onRequest = (request) => {
      if (request.method === 'GET' && request.path.endsWith('/pods')) { fake.onRequest = null; fake.scaleDeployment('roomcast-gateway', 4); }
    };
    expect(await running.autoscaler.runOnce()).toMatchObject({ currentReplicas: 2, replicas: 3, action: 'up' });
    const conflict = fake.requestsTo('PATCH', '/scale');
    expect(conflict).toHaveLength(1);
    expect(fake.deployment('roomcast-gateway').spec.replicas).toBe(4);
    expect(logs.find((l) => l.msg === 'the scale changed since it was read; deciding again next period')).toBeDefined();
    expect(logs.filter((l) => l.msg === 'decision').at(-1)).toMatchObject({ applied: false });
    // The next period reads 4 and goes from there: 3 would do, but the two new pods are not up yet.
    expect(await running.autoscaler.runOnce()).toMatchObject({ currentReplicas: 4, replicas: 4, reasons: ['metric:connections', 'hold:rollout'] });
    expect(fake.requestsTo('PATCH', '/scale')).toHaveLength(1);
  });

  it('holds scale-down while the Deployment rolls out, and in dry run decides without writing', async () => {
    const rolling = await harness(4);
    rolling.fake.setDeploymentStatus('roomcast-gateway', { updatedReplicas: 2 }, 2);
    await rolling.running.leaseRound();
    expect(await rolling.running.autoscaler.runOnce()).toMatchObject({ replicas: 4, reasons: ['metric:connections', 'hold:rollout'] });
    expect(rolling.fake.requests.filter((r) => r.method === 'PATCH')).toEqual([]);

    const dry = await harness(4, { ROOMCAST_AUTOSCALER_DRY_RUN: 'true' });
    await dry.running.leaseRound();
    expect(await dry.running.autoscaler.runOnce()).toMatchObject({ replicas: 3, action: 'down' });
    expect(dry.fake.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
    expect(dry.logs.filter((l) => l.msg === 'decision').at(-1)).toMatchObject({ dryRun: true, applied: false, desired: 3, victims: ['gw-2'] });
  });

  it('acts only while holding the Lease; takes it over once the holder stops renewing', async () => {
    const { fake, running, clock } = await harness(2, {}, [0, 3]);
    fake.putLease('roomcast-autoscaler', { holderIdentity: 'autoscaler-b', leaseDurationSeconds: 15, renewTime: new Date().toISOString().replace('Z', '000Z'), leaseTransitions: 3 });
    expect(await running.leaseRound()).toBe(false);
    expect(await running.autoscaler.runOnce()).toBeNull();
    expect(fake.requestsTo('GET', '/scale')).toEqual([]);

    clock.advance(16_000);
    expect(await running.leaseRound()).toBe(true);
    const update = fake.requestsTo('PUT', '/leases/roomcast-autoscaler').at(-1)!;
    expect(update.body.metadata.resourceVersion).toMatch(/^\d+$/);
    expect(update.body.spec).toMatchObject({ holderIdentity: 'autoscaler-a', leaseDurationSeconds: 15, leaseTransitions: 4 });
    expect(update.body.spec.renewTime).toMatch(/\.\d{6}Z$/);
    expect(fake.lease('roomcast-autoscaler')!.spec.holderIdentity).toBe('autoscaler-a');
    expect(await running.autoscaler.runOnce()).toMatchObject({ action: 'up', replicas: 3 });

    // Renewal carries the resourceVersion; a stale one is refused with 409 and the lease is lost.
    clock.advance(5000);
    expect(await running.leaseRound()).toBe(true);
    fake.putLease('roomcast-autoscaler', { ...fake.lease('roomcast-autoscaler')!.spec, holderIdentity: 'autoscaler-c' });
    clock.advance(5000);
    expect(await running.leaseRound()).toBe(false);
    expect(running.elector.isLeader(clock.now())).toBe(false);

    // On stop the holder gives the lease up.
    fake.putLease('roomcast-autoscaler', { holderIdentity: 'autoscaler-a', leaseDurationSeconds: 15, renewTime: '2026-01-01T00:00:00.000000Z', leaseTransitions: 5 });
    clock.advance(20_000);
    expect(await running.leaseRound()).toBe(true);
    await running.stop();
    harnesses.splice(harnesses.findIndex((h) => h.running === running), 1);
    expect(fake.lease('roomcast-autoscaler')!.spec.holderIdentity).toBeUndefined();
    await fake.close();
  });

  it('creates the Lease when there is none, and a second instance then stands by', async () => {
    const a = await harness(2, {}, [0, 1]);
    expect(await a.running.leaseRound()).toBe(true);
    const create = a.fake.requestsTo('POST', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`);
    expect(create).toHaveLength(1);
    expect(create[0]!.body).toMatchObject({ kind: 'Lease', metadata: { name: 'roomcast-autoscaler' }, spec: { holderIdentity: 'autoscaler-a', leaseDurationSeconds: 15, leaseTransitions: 0 } });
    expect(create[0]!.body.metadata.resourceVersion).toBeUndefined();

    // The same API, another identity: it sees a live holder.
    const connection = connectKube({ kubeconfig: writeKubeconfig(`http://127.0.0.1:${a.fake.port}`, TOKEN), env: {} });
    const store = new K8sLeaseStore(connection, NS, 'roomcast-autoscaler');
    const current = (await store.get())!;
    expect(current.holderIdentity).toBe('autoscaler-a');
    await expect(store.create({ ...current, holderIdentity: 'autoscaler-b' })).rejects.toMatchObject({ status: 409, reason: 'AlreadyExists' });
    await a.running.leaseRound();
    await expect(store.replace({ ...current, holderIdentity: 'autoscaler-b' })).rejects.toMatchObject({ status: 409, reason: 'Conflict' });
  });

  it('maps API errors: 404 Status for an unknown Deployment, 401 without the token, 415 for other patch types', async () => {
    const { fake } = await harness(2, {}, [0]);
    const url = `http://127.0.0.1:${fake.port}`;
    const missing = new K8sScaleTarget(connectKube({ kubeconfig: writeKubeconfig(url, TOKEN), env: {} }), NS, 'no-such-gateway');
    const error = await missing.readScale().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error).toMatchObject({ status: 404, reason: 'NotFound' });
    const wrongToken = new K8sScaleTarget(connectKube({ kubeconfig: writeKubeconfig(url, 'wrong'), env: {} }), NS, 'roomcast-gateway');
    await expect(wrongToken.readScale()).rejects.toMatchObject({ status: 401, reason: 'Unauthorized' });

    const jsonPatch = await fetch(`${url}/api/v1/namespaces/${NS}/pods/gw-0`, {
      method: 'PATCH', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json-patch+json' }, body: '[]',
    });
    expect(jsonPatch.status).toBe(415);
    expect(jsonPatch.headers.get('content-type')).toBe('application/json');
    expect(await jsonPatch.json()).toMatchObject({ kind: 'Status', reason: 'UnsupportedMediaType', code: 415 });
  });

  it('runs on its own timers: lease, scrape twice, decide', async () => {
    const fake = new FakeKubeApi(NS, TOKEN);
    const server = await fake.listen();
    fake.addDeployment('roomcast-gateway', 1, LABELS);
    fake.addPod('gw-0', { ip: '127.0.0.1', labels: LABELS, annotations: { 'roomcast.io/metrics-port': String(cluster.gateways[0]!.gateway.httpPort) } });
    const config = loadAutoscalerConfig({
      ROOMCAST_KUBECONFIG: writeKubeconfig(server, TOKEN), ROOMCAST_AUTOSCALER_HTTP_HOST: '127.0.0.1', ROOMCAST_AUTOSCALER_HTTP_PORT: '0',
      ROOMCAST_SCHEDULE_FILE: join(dir, 'none.json'), ROOMCAST_POD_NAME: 'looping', ROOMCAST_MIN_REPLICAS: '1', ROOMCAST_FALLBACK_REPLICAS: '1',
      ROOMCAST_AUTOSCALER_PERIOD_MS: '500', ROOMCAST_SCRAPE_TIMEOUT_MS: '400', ROOMCAST_TARGET_CONNECTIONS: '1',
      // Connections decide here: on a busy machine the gateway's event-loop lag alone asks for 4 or 5 pods.
      ROOMCAST_TARGET_CPU_UTILIZATION: '10', ROOMCAST_TARGET_LAG_P99_S: '60',
    }).config;
    const logs: Array<Record<string, any>> = [];
    const running = await startAutoscaler(config, { log: createLogger({ level: 'info', write: (line) => logs.push(JSON.parse(line)) }), env: {} });
    harnesses.push({ fake, running, logs, clock: { now: Date.now, advance: () => undefined } });
    // gw-0 holds 3 viewers, one per pod wanted: 1 → 3.
    await eventually(() => fake.deployment('roomcast-gateway').spec.replicas === 3, { what: 'scale to 3', timeoutMs: 10_000 });
    expect(fake.lease('roomcast-autoscaler')!.spec.holderIdentity).toBe('looping');
    expect(fake.requestsTo('PATCH', '/scale').map((r) => r.body.spec.replicas)).toEqual([3]);
    await eventually(() => logs.some((l) => l.msg === 'decision' && l.metrics?.new_connections), { what: 'a rate after two scrapes' });
  });
});
