/**
 * Metrics as an interface of events on a private prom-client Registry (one per process), exposed on
 * /metrics. Labels stay low-cardinality: frame types, error codes, drop reasons, priorities; never
 * a room id or a uid. The README lists every metric.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from './errors.js';
import type { Priority } from './protocol/frames.js';

/** Drops counted once per message. */
export type MessageDropReason = 'duplicate' | 'stale' | 'reorder_overflow' | 'gap_unrecoverable';
/** Drops counted per message × connection that did not get it. */
export type DeliveryDropReason = 'backpressure' | 'sampled';
export type DropReason = MessageDropReason | DeliveryDropReason;
const PER_DELIVERY: ReadonlySet<DropReason> = new Set<DeliveryDropReason>(['backpressure', 'sampled']);

/** Gateway → room service requests, by the label `op` of roomcast_gateway_request_seconds. */
export type GatewayRequestOp = 'access' | 'send' | 'history' | 'moderate' | 'chat_send' | 'chat_sync' | 'chat_ack' | 'chat_op' | 'chat_logins';

/** The package version, read once from the nearest package.json (src/ in tests, dist/src/ when built). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 5; depth++, dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'roomcast' && pkg.version) return pkg.version;
    } catch { /* not in this directory: look one level up */ }
  }
  return 'unknown';
}

/** How often the event loop's lag is sampled for the default metrics. */
const EVENT_LOOP_SAMPLE_MS = 100;

export class MetricsRegistry {
  readonly registry = new Registry();

  constructor() {
    // Process CPU, memory, GC and event-loop lag (nodejs_eventloop_lag_p99_seconds and friends). The
    // lag is sampled by a timer; every 100 ms rather than prom-client's 10, whose 100 wake-ups a second
    // were most of an idle process's CPU. A stall still shows: it delays the sample due in it.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    // Lets dashboards show which version runs where, and alerts join on it during a rollout.
    new Gauge({ name: 'roomcast_build_info', help: 'Always 1; the labels name the Roomcast version and the Node.js version', labelNames: ['version', 'node'], registers: [this.registry] })
      .set({ version: packageVersion(), node: process.versions.node }, 1);
  }

  /** Rejections no handler caught; the process guard counts them instead of letting the process die. */
  readonly unhandledRejections = new Counter({
    name: 'roomcast_unhandled_rejections_total', help: 'Promise rejections no handler caught (logged with their stack; each is a bug)',
    registers: [this.registry],
  });

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** What the gateway reports. */
/**
 * A metric's child for one set of label values, made once: prom-client checks and hashes the labels
 * on every labelled call, which on a per-message path costs more than the count. The label values
 * must come from a bounded set (frame types, ops, result codes, message kinds).
 */
function childOf<T>(children: Map<string, T>, key: string, make: () => T): T {
  let child = children.get(key);
  if (!child) children.set(key, (child = make()));
  return child;
}

export class GatewayMetrics {
  private readonly connections: Gauge;
  private readonly connectionsOpened: Counter;
  private readonly rooms: Gauge;
  private readonly framesIn: Counter<'type'>;
  /** Children of framesIn by frame type (a bounded set: the protocol's types and `invalid`). */
  private readonly framesInByType = new Map<string, Counter.Internal>();
  private readonly batches: Histogram;
  private readonly publishToFlush: Histogram;
  private readonly droppedMessages: Counter<'reason' | 'priority'>;
  private readonly droppedDeliveries: Counter<'reason' | 'priority'>;
  private readonly closes: Counter<'code'>;
  private readonly busConnected: Gauge;
  private readonly requests: Histogram<'op'>;
  private readonly errors: Counter<'code'>;
  private readonly busErrors: Counter;
  private readonly storeErrors: Counter;
  private readonly gapFills: Counter<'result'>;
  private readonly userDeliveries: Counter;
  private readonly slowConsumers: Counter<'action'>;
  private readonly draining: Gauge;
  private readonly reconnectsRequested: Counter;
  private readonly pendingBatchTotals = { deliveries: 0, bytes: 0 };

  constructor({ registry }: MetricsRegistry) {
    const r = [registry];
    this.connections = new Gauge({ name: 'roomcast_gateway_connections', help: 'Open WebSocket connections', registers: r });
    this.connectionsOpened = new Counter({ name: 'roomcast_gateway_connections_opened_total', help: 'WebSocket connections accepted', registers: r });
    this.rooms = new Gauge({ name: 'roomcast_gateway_rooms', help: 'Rooms with at least one local connection (one bus subscription each)', registers: r });
    this.framesIn = new Counter({ name: 'roomcast_gateway_frames_in_total', help: 'Client frames received, by type (invalid for undecodable ones)', labelNames: ['type'], registers: r });
    // Added up per batch in plain numbers and handed to prom-client when scraped: a small room's
    // batch is one message, and a labelled prom-client increment per batch cost more than its write.
    const pending = this.pendingBatchTotals;
    new Counter({
      name: 'roomcast_gateway_deliveries_total', help: 'Room messages delivered: messages × local recipients', registers: r,
      collect() { if (pending.deliveries > 0) { this.inc(pending.deliveries); pending.deliveries = 0; } },
    });
    new Counter({
      name: 'roomcast_gateway_sent_bytes_total', help: 'Bytes of room batches written to connections (frame size × recipients)', registers: r,
      collect() { if (pending.bytes > 0) { this.inc(pending.bytes); pending.bytes = 0; } },
    });
    this.batches = new Histogram({ name: 'roomcast_gateway_batch_messages', help: 'Messages per room batch frame', buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500], registers: r });
    this.publishToFlush = new Histogram({
      name: 'roomcast_gateway_publish_to_flush_seconds', help: 'From the room service accepting a message to the gateway writing its batch',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5], registers: r,
    });
    // Two counters, because the units differ: a message lost for the whole gateway, or one
    // connection missing one message (a hot room's sampling counts once per member).
    this.droppedMessages = new Counter({ name: 'roomcast_gateway_dropped_messages_total', help: 'Room messages the gateway dropped for all its connections, by reason and priority (0 chat, 1 high)', labelNames: ['reason', 'priority'], registers: r });
    this.droppedDeliveries = new Counter({ name: 'roomcast_gateway_dropped_deliveries_total', help: 'Deliveries not made: message × connection, by reason (sampled, backpressure) and priority', labelNames: ['reason', 'priority'], registers: r });
    this.closes = new Counter({ name: 'roomcast_gateway_closes_total', help: 'WebSocket connections closed, by close code (client and server initiated)', labelNames: ['code'], registers: r });
    this.busConnected = new Gauge({ name: 'roomcast_gateway_bus_connected', help: '1 while the gateway is connected to NATS, else 0', registers: r });
    this.busConnected.set(1);
    this.requests = new Histogram({
      name: 'roomcast_gateway_request_seconds', help: 'Gateway → room service requests over the bus, by operation (failures and timeouts included)',
      labelNames: ['op'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3], registers: r,
    });
    this.errors = new Counter({ name: 'roomcast_gateway_errors_total', help: 'Error frames and error closes sent to clients, by code', labelNames: ['code'], registers: r });
    this.busErrors = new Counter({ name: 'roomcast_gateway_bus_errors_total', help: 'Bus failures seen by the gateway (requests, disconnects)', registers: r });
    this.storeErrors = new Counter({ name: 'roomcast_gateway_store_errors_total', help: 'Store failures seen by the gateway (registry, viewer counts)', registers: r });
    this.userDeliveries = new Counter({ name: 'roomcast_gateway_user_deliveries_total', help: 'Private and group chat frames written to local connections (routed on gw.<id>)', registers: r });
    this.gapFills = new Counter({ name: 'roomcast_gateway_gap_fills_total', help: 'Gaps in a room\'s seq filled from history, by result', labelNames: ['result'], registers: r });
    this.slowConsumers = new Counter({ name: 'roomcast_gateway_slow_consumers_total', help: 'Slow connections degraded to high-priority messages, restored, or closed (4009)', labelNames: ['action'], registers: r });
    this.draining = new Gauge({ name: 'roomcast_gateway_draining', help: '1 while the gateway is draining (shutting down), else 0', registers: r });
    this.reconnectsRequested = new Counter({ name: 'roomcast_gateway_reconnects_requested_total', help: 'reconnect frames sent to move connections to other gateways', registers: r });
  }

  connectionOpened(): void { this.connections.inc(); this.connectionsOpened.inc(); }
  connectionClosed(): void { this.connections.dec(); }
  roomsActive(count: number): void { this.rooms.set(count); }
  /** Per frame, through its type's child (childOf). */
  frameIn(type: string): void {
    childOf(this.framesInByType, type, () => this.framesIn.labels({ type })).inc();
  }
  /** `deliveries`: messages × the connections each reached. */
  batchFlushed(messages: number, deliveries: number, bytesOut: number, oldestTsMs: number, nowMs: number): void {
    this.batches.observe(messages);
    this.pendingBatchTotals.deliveries += deliveries;
    this.pendingBatchTotals.bytes += bytesOut;
    this.publishToFlush.observe(Math.max(0, nowMs - oldestTsMs) / 1000);
  }
  /** `count`: messages for the per-message reasons, message × connections for sampled and backpressure. */
  dropped(reason: DropReason, priority: Priority, count = 1): void {
    (PER_DELIVERY.has(reason) ? this.droppedDeliveries : this.droppedMessages).inc({ reason, priority }, count);
  }
  /** A client may close with any code: only the protocol's range and Roomcast's own keep their number. */
  connectionClosedWith(code: number): void {
    const known = (code >= 1000 && code <= 1015) || (code >= 4000 && code <= 4099);
    this.closes.inc({ code: known ? String(code) : 'other' });
  }
  busStatus(connected: boolean): void { this.busConnected.set(connected ? 1 : 0); }
  /** Starts timing a request; call the result when it settles, either way. */
  requestTimer(op: GatewayRequestOp): () => void { return this.requests.startTimer({ op }); }
  errorSent(code: ErrorCode): void { this.errors.inc({ code }); }
  busError(): void { this.busErrors.inc(); }
  storeError(): void { this.storeErrors.inc(); }
  gapFilled(result: 'filled' | 'unrecoverable' | 'failed'): void { this.gapFills.inc({ result }); }
  userDelivered(connections: number): void { this.userDeliveries.inc(connections); }
  slowConsumer(action: 'degraded' | 'restored' | 'closed'): void { this.slowConsumers.inc({ action }); }
  drainStarted(): void { this.draining.set(1); }
  reconnectRequested(count: number): void { this.reconnectsRequested.inc(count); }
}

/** What the room service reports. */
export class RoomServiceMetrics {
  private readonly requests: Counter<'op' | 'result'>;
  private readonly published: Counter<'kind'>;
  private readonly storeLatency: Histogram<'op'>;
  private readonly busErrors: Counter;
  private readonly storeErrors: Counter;
  private readonly httpRequests: Counter<'route' | 'status'>;
  private readonly pending: Gauge;
  private readonly refused: Counter<'reason'>;
  private readonly requestChildren = new Map<string, Counter.Internal>();
  private readonly storeLatencyChildren = new Map<string, Histogram.Internal<'op'>>();
  private readonly publishedChildren = new Map<string, Counter.Internal>();

  constructor({ registry }: MetricsRegistry) {
    const r = [registry];
    this.pending = new Gauge({ name: 'roomcast_room_pending_requests', help: 'Bus requests the room service has taken on and not answered yet (its queue)', registers: r });
    this.refused = new Counter({ name: 'roomcast_room_requests_refused_total', help: 'Bus requests answered overloaded at once, by reason (queue_full, loop_lag)', labelNames: ['reason'], registers: r });
    this.requests = new Counter({ name: 'roomcast_room_requests_total', help: 'Requests handled by the room service, by operation and result code', labelNames: ['op', 'result'], registers: r });
    this.published = new Counter({ name: 'roomcast_messages_published_total', help: 'Room messages stored and published once on their room subject, by kind', labelNames: ['kind'], registers: r });
    this.storeLatency = new Histogram({ name: 'roomcast_room_store_seconds', help: 'Store round trips of the room service', labelNames: ['op'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25], registers: r });
    this.busErrors = new Counter({ name: 'roomcast_room_bus_errors_total', help: 'Bus failures seen by the room service', registers: r });
    this.storeErrors = new Counter({ name: 'roomcast_room_store_errors_total', help: 'Store failures seen by the room service', registers: r });
    this.httpRequests = new Counter({ name: 'roomcast_http_requests_total', help: 'HTTP API requests, by route and status', labelNames: ['route', 'status'], registers: r });
  }

  // Per request, store call and message: through labelled children (childOf).
  request(op: string, result: string): void {
    childOf(this.requestChildren, `${op}\u0000${result}`, () => this.requests.labels({ op, result })).inc();
  }
  pendingRequests(count: number): void { this.pending.set(count); }
  requestRefused(reason: 'queue_full' | 'loop_lag'): void { this.refused.inc({ reason }); }
  messagePublished(kind: string): void {
    childOf(this.publishedChildren, kind, () => this.published.labels({ kind })).inc();
  }
  storeTimer(op: string): () => void {
    return childOf(this.storeLatencyChildren, op, () => this.storeLatency.labels({ op })).startTimer();
  }
  busError(): void { this.busErrors.inc(); }
  storeError(): void { this.storeErrors.inc(); }
  httpRequest(route: string, status: number): void { this.httpRequests.inc({ route, status: String(status) }); }
}

/** What the autoscaler reports: its inputs and answers per metric, the decision, failures. */
export class AutoscalerMetrics {
  private readonly usage: Gauge<'metric'>;
  private readonly desired: Gauge<'source'>;
  private readonly replicas: Gauge<'kind'>;
  private readonly decisions: Counter<'action'>;
  private readonly failures: Counter<'stage'>;
  private readonly consecutiveFailures: Gauge;
  private readonly leader: Gauge;
  private readonly totalConnections: Gauge;
  private readonly projectedConnections: Gauge;
  private readonly readyDelay: Gauge;
  private readonly capped: Gauge;

  constructor({ registry }: MetricsRegistry) {
    const r = [registry];
    this.usage = new Gauge({ name: 'roomcast_autoscaler_metric_usage', help: 'Per-pod usage the decision used, by metric (mean, or the hot-pod quantile for cpu and lag)', labelNames: ['metric'], registers: r });
    this.desired = new Gauge({ name: 'roomcast_autoscaler_desired_replicas', help: 'Replicas each metric or floor asked for', labelNames: ['source'], registers: r });
    this.replicas = new Gauge({ name: 'roomcast_autoscaler_replicas', help: 'Replicas of the gateway Deployment: current (before) and decided', labelNames: ['kind'], registers: r });
    this.decisions = new Counter({ name: 'roomcast_autoscaler_decisions_total', help: 'Decisions, by action (up, down, hold)', labelNames: ['action'], registers: r });
    this.failures = new Counter({ name: 'roomcast_autoscaler_failures_total', help: 'Failures, by stage (scale, rollout, pods, scrape, patch, annotate, lease, schedule)', labelNames: ['stage'], registers: r });
    this.consecutiveFailures = new Gauge({ name: 'roomcast_autoscaler_consecutive_failures', help: 'Periods in a row without usable metrics', registers: r });
    this.leader = new Gauge({ name: 'roomcast_autoscaler_leader', help: '1 while this instance holds the Lease and acts', registers: r });
    this.totalConnections = new Gauge({ name: 'roomcast_autoscaler_connections', help: 'Total gateway connections at the last decision', registers: r });
    this.projectedConnections = new Gauge({ name: 'roomcast_autoscaler_projected_connections', help: 'Connections the trend expects once new gateways would be ready', registers: r });
    this.readyDelay = new Gauge({ name: 'roomcast_autoscaler_ready_delay_seconds', help: 'Time a new gateway takes to become ready (measured, or the default)', registers: r });
    this.capped = new Gauge({ name: 'roomcast_autoscaler_capped', help: '1 while the decision is held at maxReplicas though more replicas are wanted', registers: r });
  }

  decided(d: {
    action: string; currentReplicas: number; replicas: number; consecutiveFailures: number; readyDelayMs: number; cappedAtMax: boolean;
    totalConnections: number | null; projectedConnections: number | null;
    perMetric: Record<string, { usage: number | null; replicas: number | null }>; floors: { trend: number | null; schedule: number | null };
  }): void {
    this.decisions.inc({ action: d.action });
    this.replicas.set({ kind: 'current' }, d.currentReplicas);
    this.replicas.set({ kind: 'decided' }, d.replicas);
    this.consecutiveFailures.set(d.consecutiveFailures);
    this.capped.set(d.cappedAtMax ? 1 : 0);
    this.readyDelay.set(d.readyDelayMs / 1000);
    if (d.totalConnections !== null) this.totalConnections.set(d.totalConnections);
    if (d.projectedConnections !== null) this.projectedConnections.set(d.projectedConnections);
    for (const [metric, m] of Object.entries(d.perMetric)) {
      if (m.usage === null) this.usage.remove({ metric }); else this.usage.set({ metric }, m.usage);
      if (m.replicas === null) this.desired.remove({ source: metric }); else this.desired.set({ source: metric }, m.replicas);
    }
    for (const [floor, value] of Object.entries(d.floors)) {
      if (value === null) this.desired.remove({ source: `${floor}_floor` }); else this.desired.set({ source: `${floor}_floor` }, value);
    }
  }

  failure(stage: 'scale' | 'rollout' | 'pods' | 'scrape' | 'patch' | 'annotate' | 'lease' | 'schedule'): void { this.failures.inc({ stage }); }
  leading(isLeader: boolean): void { this.leader.set(isLeader ? 1 : 0); }
}
