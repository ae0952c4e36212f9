/**
 * What operators rely on at night, checked on the rendered manifests (`kubectl kustomize` of
 * deploy/k8s, the HPA alternative and deploy/examples/event-night with every component): monitoring
 * objects valid against the Prometheus Operator schemas, every alert linked to a runbook section that
 * exists, every metric the dashboard and the alerts query one that a process really exposes, a
 * NetworkPolicy for every pod, paced gateway rollouts, priorities, digests, and a public wss:// route
 * to the gateway dispatch names.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { NetworkPolicy, type INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer';
import type { INetworkPolicyPort } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPort';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { PriorityClass } from 'kubernetes-models/scheduling.k8s.io/v1/PriorityClass';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { AutoscalerMetrics, GatewayMetrics, MetricsRegistry, RoomServiceMetrics } from '../../src/shared/metrics.js';
import { parsePromText } from '../../src/autoscaler/prom-text.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/latch.js';
import { WsTestClient } from '../helpers/ws-client.js';

const ROOT = new URL('../..', import.meta.url);
const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const DIRS = { main: 'deploy/k8s', hpa: 'deploy/k8s/alternatives/hpa', eventNight: 'deploy/examples/event-night' } as const;
const RUNBOOK = 'docs/runbook.md';
const DASHBOARD = 'deploy/grafana/roomcast.json';
const ALERT_TESTS = 'test/fixtures/alerts.promtool.yaml';

/**
 * The exporters' documented metric names that the dashboard and alerts may use: prometheus-nats-exporter
 * with -varz (`gnatsd_varz_<field of /varz>`) and oliver006/redis_exporter. Adding a name here means
 * checking it against the exporter's documentation first.
 */
const EXPORTER_METRICS = new Set([
  'gnatsd_varz_connections', 'gnatsd_varz_routes', 'gnatsd_varz_slow_consumers', 'gnatsd_varz_in_msgs', 'gnatsd_varz_out_msgs',
  'gnatsd_varz_in_bytes', 'gnatsd_varz_out_bytes', 'gnatsd_varz_mem', 'gnatsd_varz_cpu', 'gnatsd_varz_subscriptions',
  'redis_up', 'redis_memory_used_bytes', 'redis_memory_max_bytes', 'redis_connected_clients', 'redis_commands_processed_total',
  'redis_connected_slaves', 'redis_master_link_up', 'redis_rejected_connections_total', 'redis_evicted_keys_total',
]);
/** Prometheus's own checker, when installed (Debian: the prometheus package), parses every query. */
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

/** Series Prometheus itself writes for every target. */
const PROMETHEUS_METRICS = new Set(['up']);

interface K8sObject { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [field: string]: any }
interface Workload extends K8sObject { spec: { selector: { matchLabels: Record<string, string> }; template: IPodTemplateSpec; strategy?: any } }

type Model = new (data: never) => { validate(): void };
const MODELS: Record<string, Model> = {
  'v1/Namespace': Namespace, 'v1/ConfigMap': ConfigMap, 'v1/Secret': Secret, 'v1/Service': Service, 'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment, 'apps/v1/StatefulSet': StatefulSet, 'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'rbac.authorization.k8s.io/v1/Role': Role, 'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler, 'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'networking.k8s.io/v1/Ingress': Ingress, 'scheduling.k8s.io/v1/PriorityClass': PriorityClass,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor, 'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

async function render(dir: string): Promise<K8sObject[]> {
  const { stdout } = await promisify(execFile)(KUBECTL, ['kustomize', dir], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  return parseAllDocuments(stdout).map((d) => d.toJS() as K8sObject).filter(Boolean);
}

const read = (path: string): string => readFileSync(new URL(path, ROOT), 'utf8');
const ofKind = <T = K8sObject>(objects: K8sObject[], kind: string): T[] => objects.filter((o) => o.kind === kind) as T[];
const workloadsOf = (objects: K8sObject[]): Workload[] => [...ofKind<Workload>(objects, 'Deployment'), ...ofKind<Workload>(objects, 'StatefulSet')];
const find = (objects: K8sObject[], kind: string, name: string): any =>
  objects.find((o) => o.kind === kind && o.metadata.name === name) ?? fail(`no ${kind}/${name}`);
const containersOf = (w: Workload): IContainer[] => w.spec.template.spec?.containers ?? [];
const labelsOf = (w: Workload): Record<string, string> => w.spec.template.metadata?.labels ?? {};
const componentOf = (w: Workload): string => labelsOf(w)['app.kubernetes.io/component'] ?? w.metadata.name;
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>): boolean =>
  Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);

function fail(message: string): never {
  throw new Error(message);
}

/** Heading → anchor as GitHub (and most Markdown renderers) make it. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool',
  'rate', 'irate', 'increase', 'delta', 'histogram_quantile', 'absent', 'vector', 'topk', 'bottomk', 'offset', 'le', 'clamp_min', 'time',
]);

/** The metric names a PromQL expression reads: what is left once strings, matchers, ranges, groupings and functions are taken out. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, ' ');
  return [...bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)].map((m) => m[0]).filter((word) => !PROMQL_WORDS.has(word));
}

/** Sample names a /metrics text can hold, from its TYPE lines (so metrics without samples yet count too). */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name! + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name! + suffix);
  }
  return names;
}

/** Does the port of a NetworkPolicy rule (number or name) mean this container port? */
const portMatches = (rule: INetworkPolicyPort, port: { name?: string; containerPort: number }): boolean =>
  rule.port === port.containerPort || (port.name !== undefined && rule.port === port.name);

function policiesFor(policies: INetworkPolicy[], w: Workload): INetworkPolicy[] {
  return policies.filter((p) => selects(p.spec!.podSelector.matchLabels, labelsOf(w)) && !p.spec!.podSelector.matchExpressions?.length);
}

const isRoomcastPeer = (peer: INetworkPolicyPeer): boolean =>
  !peer.namespaceSelector && !peer.ipBlock && peer.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'roomcast';

describe('Observability and deployment (kubectl kustomize)', () => {
  const r: Record<keyof typeof DIRS, K8sObject[]> = { main: [], hpa: [], eventNight: [] };

  beforeAll(async () => {
    const rendered = await Promise.all(Object.values(DIRS).map(render));
    (Object.keys(DIRS) as Array<keyof typeof DIRS>).forEach((key, i) => { r[key] = rendered[i]!; });
  });

  it('renders every optional component, each object valid against its schema (Kubernetes and Prometheus Operator)', () => {
    const failures: string[] = [];
    for (const [dir, objects] of Object.entries(r)) {
      for (const object of objects) {
        const Model = MODELS[`${object.apiVersion}/${object.kind}`];
        if (!Model) { failures.push(`${dir}: no schema for ${object.apiVersion} ${object.kind}`); continue; }
        try { new Model(object as never).validate(); } catch (error) { failures.push(`${dir}: ${object.kind}/${object.metadata.name}: ${(error as Error).message}`); }
      }
    }
    expect(failures).toEqual([]);
    const kinds = new Set(r.eventNight.map((o) => o.kind));
    for (const kind of ['PodMonitor', 'PrometheusRule', 'NetworkPolicy', 'Ingress', 'PriorityClass']) expect(kinds.has(kind), kind).toBe(true);
  });

  describe('alerts and the runbook', () => {
    const runbook = read(RUNBOOK);
    const anchors = new Set([...runbook.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1]!)));
    const alertsOf = (objects: K8sObject[]): Array<{ alert: string; expr: string; annotations: Record<string, string>; labels: Record<string, string> }> =>
      ofKind(objects, 'PrometheusRule').flatMap((rule) => rule.spec.groups.flatMap((g: { rules: unknown[] }) => g.rules));

    it('links every alert to a section of docs/runbook.md that exists, one section per alert', () => {
      const alerts = alertsOf(r.eventNight);
      expect(alerts.length).toBeGreaterThan(10);
      for (const alert of alerts) {
        const url = alert.annotations.runbook_url ?? fail(`${alert.alert} has no runbook_url`);
        const [path, anchor] = url.split('#');
        expect(path, alert.alert).toMatch(/\/docs\/runbook\.md$/);
        expect(anchors.has(anchor!), `${alert.alert} → #${anchor}`).toBe(true);
        expect(anchor, `${alert.alert}: its own section`).toBe(anchorOf(alert.alert));
        expect(['critical', 'warning', 'info'], alert.alert).toContain(alert.labels.severity);
        expect(alert.annotations.summary, alert.alert).toBeTruthy();
      }
      expect(new Set(alerts.map((a) => a.alert)).size).toBe(alerts.length);
      // Each alert section says what it means, what to check, what to do.
      const sections = runbook.split(/^## /m).slice(1);
      for (const alert of alerts) {
        const section = sections.find((s) => s.startsWith(`${alert.alert}\n`)) ?? fail(`no "## ${alert.alert}" in the runbook`);
        for (const part of ['**Means**', '**Check**', '**Do**']) expect(section, `${alert.alert} ${part}`).toContain(part);
      }
    });

    describe('metric names', () => {
      let cluster: Cluster;
      const exposed = new Set<string>([...EXPORTER_METRICS, ...PROMETHEUS_METRICS]);

      beforeAll(async () => {
        // A real gateway and room service, read over HTTP as Prometheus would.
        cluster = await startCluster({ mode: 'embedded', gateways: 1, roomServices: 1 });
        const urls = [cluster.gateways[0]!.metricsUrl,
          ...cluster.roomServices.flatMap((s) => (s.metricsPort === null ? [] : [`http://127.0.0.1:${s.metricsPort}/metrics`]))];
        for (const url of urls) for (const name of exposedNames(await (await fetch(url)).text())) exposed.add(name);
        // The room service's and autoscaler's metrics as their processes register them (the autoscaler
        // needs a Kubernetes API to run).
        const registry = new MetricsRegistry();
        new GatewayMetrics(registry);
        new RoomServiceMetrics(registry);
        new AutoscalerMetrics(registry);
        for (const name of exposedNames((await registry.render()).body)) exposed.add(name);
      }, 30_000);

      afterAll(async () => { await cluster?.stop(); });

      it('the gateway serves the metrics the dashboard and alerts are built on', () => {
        for (const name of ['roomcast_gateway_bus_connected', 'roomcast_gateway_request_seconds_bucket', 'roomcast_gateway_closes_total',
          'roomcast_build_info', 'roomcast_gateway_sent_bytes_total', 'roomcast_gateway_dropped_messages_total', 'roomcast_gateway_dropped_deliveries_total']) {
          expect(exposed.has(name), name).toBe(true);
        }
        expect(exposed.has('roomcast_drops_total')).toBe(false);
        expect(exposed.has('roomcast_gateway_bytes_out_total')).toBe(false);
      });

      it('times requests by operation and counts closes by code where they happen; NATS connected is 1', async () => {
        const { metricsUrl, url } = cluster.gateways[0]!;
        await cluster.createRoom('metrics-room');
        const client = await WsTestClient.connect(url, { token: await cluster.token('metrics-user') });
        client.send({ t: 'join', room: 'metrics-room' });
        await client.next((f) => f.t === 'joined');
        client.send({ t: 'send', room: 'metrics-room', id: 'm-1', text: 'hello' });
        await client.next((f) => f.t === 'ack');
        client.ws.close(1000);
        const sample = async (name: string, labels: Record<string, string>): Promise<number> =>
          parsePromText(await (await fetch(metricsUrl)).text())
            .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
            .reduce((sum, s) => sum + s.value, 0);
        await eventually(async () => (await sample('roomcast_gateway_closes_total', { code: '1000' })) >= 1, { what: 'close 1000 counted' });
        expect(await sample('roomcast_gateway_request_seconds_count', { op: 'access' })).toBeGreaterThanOrEqual(1);
        expect(await sample('roomcast_gateway_request_seconds_count', { op: 'send' })).toBeGreaterThanOrEqual(1);
        expect(await sample('roomcast_gateway_bus_connected', {})).toBe(1);
        expect(await sample('roomcast_build_info', {})).toBe(1);
      });

      it('queries, in every alert, only metrics that exist', () => {
        const unknown = alertsOf(r.eventNight).flatMap((a) => metricNames(a.expr).filter((n) => !exposed.has(n)).map((n) => `${a.alert}: ${n}`));
        expect(unknown).toEqual([]);
      });

      // promtool comes from Debian's `prometheus` package (.ci/run installs it when missing).
      it('parses every alert and dashboard query, and fires alerts on sample series, with promtool', () => {
        const dashboard = JSON.parse(read(DASHBOARD)) as { panels: Array<{ id: number; targets?: Array<{ expr: string }> }> };
        const panelRules = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t, i) => ({ record: `dashboard:panel_${p.id}_${i}`, expr: t.expr })));
        const groups = [...ofKind(r.eventNight, 'PrometheusRule').flatMap((rule) => rule.spec.groups), { name: 'dashboard', rules: panelRules }];
        const dir = mkdtempSync(join(tmpdir(), 'roomcast-rules-'));
        try {
          writeFileSync(join(dir, 'rules.yaml'), stringify({ groups }));
          expect(() => execFileSync(PROMTOOL, ['check', 'rules', join(dir, 'rules.yaml')], { stdio: 'pipe' })).not.toThrow();
          // test/fixtures/alerts.promtool.yaml reads rules.yaml from its own directory.
          writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: groups.filter((g) => g.name !== 'dashboard') }));
          writeFileSync(join(dir, 'alerts.yaml'), read(ALERT_TESTS));
          expect(() => execFileSync(PROMTOOL, ['test', 'rules', join(dir, 'alerts.yaml')], { stdio: 'pipe' })).not.toThrow();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });

      it('queries, in every dashboard panel, only metrics that exist', () => {
        const dashboard = JSON.parse(read(DASHBOARD)) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
        const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => [p.title, t.expr] as const));
        expect(queries.length).toBeGreaterThan(30);
        const unknown = queries.flatMap(([title, expr]) => metricNames(expr).filter((n) => !exposed.has(n)).map((n) => `${title}: ${n}`));
        expect(unknown).toEqual([]);
        const used = new Set(queries.flatMap(([, expr]) => metricNames(expr)));
        // The list: connections, rooms, deliveries, drops, publish → flush, slow consumers, drains, autoscaler, NATS, Redis.
        for (const name of ['roomcast_gateway_connections', 'roomcast_gateway_rooms', 'roomcast_gateway_deliveries_total',
          'roomcast_gateway_dropped_deliveries_total', 'roomcast_gateway_dropped_messages_total', 'roomcast_gateway_publish_to_flush_seconds_bucket',
          'roomcast_gateway_slow_consumers_total', 'roomcast_gateway_draining', 'roomcast_autoscaler_replicas', 'gnatsd_varz_connections', 'redis_memory_used_bytes']) {
          expect(used.has(name), name).toBe(true);
        }
      });
    });
  });

  /** Is a PodMonitor there for the component's pods, selecting one workload whose pods declare its port? */
  function checkPodMonitor(component: string): void {
    const monitor = ofKind(r.eventNight, 'PodMonitor').find((m) => m.spec.selector.matchLabels['app.kubernetes.io/component'] === component)
      ?? fail(`no PodMonitor for ${component}`);
    const selected = workloadsOf(r.eventNight).filter((w) => selects(monitor.spec.selector.matchLabels, labelsOf(w)));
    expect(selected.map((w) => w.metadata.name), component).toHaveLength(1);
    const ports = containersOf(selected[0]!).flatMap((c) => c.ports ?? []);
    for (const endpoint of monitor.spec.podMetricsEndpoints) {
      const declared = ports.some((p) => p.name === endpoint.port || p.containerPort === endpoint.portNumber);
      expect(declared, `${component}: port ${String(endpoint.port ?? endpoint.portNumber)}`).toBe(true);
    }
  }

  it('scrapes every Roomcast process with a PodMonitor whose port its pods declare', () => {
    for (const component of ['gateway', 'room-service', 'autoscaler']) checkPodMonitor(component);
  });

  // The exporters run as sidecars of the NATS and Redis pods (nats/, redis/).
  for (const component of ['nats', 'redis']) {
    it(`scrapes the ${component} exporter, a sidecar of its pods, with a PodMonitor whose port they declare`, () => {
      expect(workloadsOf(r.eventNight).some((w) => componentOf(w) === component && containersOf(w).length > 1)).toBe(true);
      checkPodMonitor(component);
    });
  }

  describe('network policy', () => {
    const policies = (): INetworkPolicy[] => ofKind<INetworkPolicy>(r.eventNight, 'NetworkPolicy');

    it('denies by default every pod of the namespace, in and out', () => {
      const denyAll = policies().filter((p) => Object.keys(p.spec!.podSelector).length === 0 && !p.spec!.ingress && !p.spec!.egress);
      expect(denyAll.map((p) => p.spec!.policyTypes)).toEqual([['Ingress', 'Egress']]);
    });

    it('covers every pod of the rendered deployment: each port it listens on is allowed from somewhere, DNS out', () => {
      for (const w of workloadsOf(r.eventNight)) {
        const own = policiesFor(policies(), w).filter((p) => Object.keys(p.spec!.podSelector).length > 0);
        if (componentOf(w) === 'headroom') { expect(own, w.metadata.name).toEqual([]); continue; }
        expect(own.length, `${w.metadata.name} has its own allow-list`).toBeGreaterThan(0);
        for (const port of containersOf(w).flatMap((c) => c.ports ?? [])) {
          const allowed = own.some((p) => (p.spec!.ingress ?? []).some((rule) => (rule.ports ?? []).some((rp) => portMatches(rp, port))));
          expect(allowed, `${w.metadata.name} port ${port.name ?? port.containerPort}`).toBe(true);
        }
        const dns = policiesFor(policies(), w).some((p) => (p.spec!.egress ?? []).some((rule) => (rule.ports ?? []).some((rp) => rp.port === 53)));
        expect(dns, `${w.metadata.name} DNS`).toBe(true);
      }
    });

    it('lets only Roomcast pods reach NATS and Redis; gateways take WebSockets from anywhere; the autoscaler reads the gateways', () => {
      const byComponent = (c: string): Workload => workloadsOf(r.eventNight).find((w) => componentOf(w) === c) ?? fail(`no ${c}`);
      for (const [component, ports] of [['nats', [4222, 6222]], ['redis', [6379, 26379]]] as const) {
        const rules = policiesFor(policies(), byComponent(component)).flatMap((p) => p.spec!.ingress ?? []);
        const clientRules = rules.filter((rule) => (rule.ports ?? []).some((rp) => (ports as readonly unknown[]).includes(rp.port)));
        expect(clientRules.length, component).toBeGreaterThan(0);
        for (const rule of clientRules) {
          expect(rule.from?.length, `${component}: a rule with no peers allows everyone`).toBeGreaterThan(0);
          expect(rule.from!.every(isRoomcastPeer), component).toBe(true);
        }
      }
      const gatewayRules = policiesFor(policies(), byComponent('gateway')).flatMap((p) => p.spec!.ingress ?? []);
      expect(gatewayRules.some((rule) => !rule.from && rule.ports?.some((rp) => rp.port === 'ws'))).toBe(true);
      expect(gatewayRules.filter((rule) => rule.ports?.some((rp) => rp.port === 'metrics')).every((rule) => rule.from?.length)).toBe(true);
      const autoscalerOut = policiesFor(policies(), byComponent('autoscaler')).flatMap((p) => p.spec!.egress ?? []);
      expect(autoscalerOut.some((rule) => rule.to?.some((peer) => peer.podSelector?.matchLabels?.['app.kubernetes.io/component'] === 'gateway')
        && rule.ports?.some((rp) => rp.port === 9090))).toBe(true);
      expect(autoscalerOut.some((rule) => rule.ports?.some((rp) => rp.port === 443))).toBe(true);
    });
  });

  it('rolls gateways out a few at a time: small absolute maxSurge, never below capacity', () => {
    for (const objects of [r.main, r.hpa, r.eventNight]) {
      const { strategy } = find(objects, 'Deployment', 'roomcast-gateway').spec;
      expect(strategy.type).toBe('RollingUpdate');
      expect(strategy.rollingUpdate.maxUnavailable).toBe(0);
      expect(Number.isInteger(strategy.rollingUpdate.maxSurge), 'an absolute number, not a share of the fleet').toBe(true);
      expect(strategy.rollingUpdate.maxSurge).toBeGreaterThanOrEqual(1);
      expect(strategy.rollingUpdate.maxSurge).toBeLessThanOrEqual(4);
    }
    expect(read('deploy/k8s/README.md')).toMatch(/maxSurge: 2/);
  });

  it('gives every pod a PriorityClass the deployment defines: Roomcast above ordinary pods, headroom below and never preempting', () => {
    for (const [dir, objects] of Object.entries(r)) {
      const classes = new Map(ofKind(objects, 'PriorityClass').map((p) => [p.metadata.name, p]));
      for (const w of workloadsOf(objects)) {
        const name = w.spec.template.spec?.priorityClassName ?? fail(`${dir} ${w.metadata.name} has no priorityClassName`);
        const priority = classes.get(name) ?? fail(`${dir} ${w.metadata.name}: PriorityClass ${name} is not rendered`);
        if (componentOf(w) === 'headroom') {
          expect(priority.value).toBeLessThan(0);
          expect(priority.preemptionPolicy).toBe('Never');
        } else expect(priority.value, `${dir} ${w.metadata.name}`).toBeGreaterThan(0);
        expect(priority.globalDefault ?? false).toBe(false);
      }
    }
    const headroom = find(r.eventNight, 'Deployment', 'roomcast-headroom');
    const gateway = find(r.eventNight, 'Deployment', 'roomcast-gateway');
    // Each headroom pod holds the room of one gateway.
    expect(headroom.spec.template.spec.containers[0].resources.requests).toEqual(gateway.spec.template.spec.containers[0].resources.requests);
  });

  it('pins every image by digest where the overlay gives one (kustomize images with digest)', () => {
    const images = workloadsOf(r.eventNight).flatMap((w) => [...containersOf(w), ...(w.spec.template.spec?.initContainers ?? [])].map((c) => c.image!));
    expect(images.length).toBeGreaterThan(5);
    expect(images.filter((image) => !/@sha256:[0-9a-f]{64}$/.test(image))).toEqual([]);
  });

  it('gives each gateway a public wss:// URL that the Ingress and the router carry to that very pod', () => {
    const gateway = find(r.eventNight, 'Deployment', 'roomcast-gateway') as Workload;
    const env: Record<string, string> = {};
    const podIp = '10.1.2.3';
    for (const entry of containersOf(gateway).find((c) => c.name === 'gateway')!.env ?? []) {
      if (entry.value !== undefined) env[entry.name] = entry.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, n: string) => env[n] ?? whole);
      else if (entry.valueFrom?.fieldRef?.fieldPath === 'status.podIP') env[entry.name] = podIp;
      else env[entry.name] = entry.valueFrom?.fieldRef ? 'roomcast-gateway-abc' : 'a-real-secret-stands-here-0123456789abcdef';
    }
    const url = new URL(env.ROOMCAST_PUBLIC_URL ?? fail('no ROOMCAST_PUBLIC_URL'));
    expect(url.protocol).toBe('wss:');
    expect(url.pathname).toBe(`/gw/${podIp}/ws`);
    expect(() => loadConfig('gateway', env)).not.toThrow();
    expect(env.ROOMCAST_MAX_CONNECTIONS_PER_IP, 'behind a proxy every client has its address').toBe('0');

    const ingress = find(r.eventNight, 'Ingress', 'roomcast-gateway');
    expect(ingress.spec.tls.flatMap((t: { hosts: string[] }) => t.hosts)).toContain(url.hostname);
    const rule = ingress.spec.rules.find((x: { host: string }) => x.host === url.hostname) ?? fail(`no Ingress rule for ${url.hostname}`);
    const path = rule.http.paths.filter((p: { path: string }) => url.pathname.startsWith(p.path)).sort((a: { path: string }, b: { path: string }) => b.path.length - a.path.length)[0];
    const service = find(r.eventNight, 'Service', path.backend.service.name);
    const router = workloadsOf(r.eventNight).find((w) => selects(service.spec.selector, labelsOf(w))) ?? fail('the /gw/ Service selects no pods');
    expect(componentOf(router)).toBe('gateway-router');

    const configName = router.spec.template.spec!.volumes!.find((v) => v.configMap)!.configMap!.name!;
    const nginx = find(r.eventNight, 'ConfigMap', configName).data['nginx.conf'] as string;
    const [, regex, body] = /location ~ "([^"]+)" \{([^}]*)\}/.exec(nginx) ?? fail('no regex location in nginx.conf');
    const match = new RegExp(regex!).exec(url.pathname) ?? fail(`${regex} does not match ${url.pathname}`);
    expect(match.groups?.gateway).toBe(podIp);
    const wsPort = containersOf(gateway)[0]!.ports!.find((p) => p.name === 'ws')!.containerPort;
    expect(body).toContain(`proxy_pass http://$gateway:${wsPort}/ws$is_args$args;`);
    expect(new RegExp(regex!).test('/gw/evil.example.com/ws')).toBe(false);
  });
});
