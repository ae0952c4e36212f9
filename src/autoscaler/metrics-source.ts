/**
 * Scrapes each ready gateway pod's /metrics (pod IP, metrics port, short timeout) and turns the
 * samples into the decision's per-pod figures: connections, the rates of the deliveries,
 * connections-opened and CPU counters (safe across restarts), CPU against the pod's request, and
 * the event-loop lag p99.
 */
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/log.js';
import type { GatewayPod } from './cluster-api.js';
import type { PodInput, PodMetrics } from './policy.js';
import { parsePromText, sampleValue } from './prom-text.js';
import { CounterRates } from './rates.js';

/** The gateway metrics read (their names are part of the contract with the gateway). */
export const GATEWAY_METRICS = {
  connections: 'roomcast_gateway_connections',
  connectionsOpened: 'roomcast_gateway_connections_opened_total',
  deliveries: 'roomcast_gateway_deliveries_total',
  cpuSeconds: 'process_cpu_seconds_total',
  lagP99: 'nodejs_eventloop_lag_p99_seconds',
} as const;

export type FetchText = (url: string, timeoutMs: number) => Promise<string>;

/** GET `url` with a timeout; non-2xx answers are failures. */
export const fetchText: FetchText = async (url, timeoutMs) => {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.text();
};

export interface MetricsSourceOptions {
  defaultPort: number;
  timeoutMs: number;
  clock: Clock;
  log: Logger;
  fetchText?: FetchText;
  /** Called once per failed pod scrape. */
  onScrapeFailure?: () => void;
}

export class GatewayMetricsSource {
  private readonly rates = new CounterRates();
  private readonly fetch: FetchText;

  constructor(private readonly options: MetricsSourceOptions) {
    this.fetch = options.fetchText ?? fetchText;
  }

  /**
   * Figures for every pod: not-ready pods and failed scrapes have null metrics. Terminating pods are
   * scraped too (they drain for a while and still hold viewers) and marked `draining`.
   */
  async collect(pods: readonly GatewayPod[]): Promise<PodInput[]> {
    const live = new Set(pods.map((p) => p.uid));
    this.rates.retainOnly((key) => live.has(key.slice(0, key.indexOf('/'))));
    return Promise.all(pods.map(async (pod): Promise<PodInput> => {
      if (pod.terminating) {
        const metrics = pod.ip === null ? null : await this.scrape(pod).catch(() => null);
        return { name: pod.name, ready: false, draining: true, metrics };
      }
      if (!pod.ready || pod.ip === null) return { name: pod.name, ready: pod.ready && pod.ip !== null, metrics: null };
      try {
        return { name: pod.name, ready: true, metrics: await this.scrape(pod) };
      } catch (error) {
        this.options.onScrapeFailure?.();
        this.options.log.warn('scrape failed', { pod: pod.name, url: this.urlOf(pod), error });
        return { name: pod.name, ready: true, metrics: null };
      }
    }));
  }

  private urlOf(pod: GatewayPod): string {
    const ip = pod.ip ?? '';
    return `http://${ip.includes(':') ? `[${ip}]` : ip}:${pod.metricsPort ?? this.options.defaultPort}/metrics`;
  }

  private async scrape(pod: GatewayPod): Promise<PodMetrics> {
    const text = await this.fetch(this.urlOf(pod), this.options.timeoutMs);
    return this.figures(pod, text, this.options.clock.now());
  }

  /** Parses one scrape into figures; throws when the connections gauge is absent (not a gateway). */
  figures(pod: Pick<GatewayPod, 'uid' | 'cpuRequestCores'>, text: string, atMs: number): PodMetrics {
    const samples = parsePromText(text);
    const connections = sampleValue(samples, GATEWAY_METRICS.connections);
    if (connections === null) throw new Error(`no ${GATEWAY_METRICS.connections} in the scrape`);
    const rate = (name: string): number | null => {
      const value = sampleValue(samples, name);
      return value === null ? null : this.rates.observe(`${pod.uid}/${name}`, value, atMs);
    };
    const cpuPerSec = rate(GATEWAY_METRICS.cpuSeconds);
    return {
      connections,
      deliveriesPerSec: rate(GATEWAY_METRICS.deliveries),
      newConnectionsPerSec: rate(GATEWAY_METRICS.connectionsOpened),
      cpuUtilization: cpuPerSec !== null && pod.cpuRequestCores !== null ? cpuPerSec / pod.cpuRequestCores : null,
      lagP99S: sampleValue(samples, GATEWAY_METRICS.lagP99),
    };
  }
}
