/**
 * Metrics as an interface of events on a private prom-client Registry (one per process), exposed on
 * /metrics. Labels stay low-cardinality: frame types, error codes, drop reasons, priorities; never
 * a room id or a uid. The README lists every metric.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from './errors.js';
import type { Priority } from './protocol/frames.js';

export type DropReason = 'duplicate' | 'stale' | 'reorder_overflow' | 'backpressure' | 'sampled' | 'gap_unrecoverable';

export class MetricsRegistry {
  readonly registry = new Registry();

  constructor() {
    // Process CPU, memory, GC and event-loop lag (nodejs_eventloop_lag_p99_seconds and friends).
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** What the gateway reports. */
export class GatewayMetrics {
  private readonly connections: Gauge;
  private readonly connectionsOpened: Counter;
  private readonly rooms: Gauge;
  private readonly framesIn: Counter<'type'>;
  private readonly deliveries: Counter;
  private readonly bytesOut: Counter;
  private readonly batches: Histogram;
  private readonly publishToFlush: Histogram;
  private readonly drops: Counter<'reason' | 'priority'>;
  private readonly errors: Counter<'code'>;
  private readonly busErrors: Counter;
  private readonly storeErrors: Counter;
  private readonly gapFills: Counter<'result'>;

  constructor({ registry }: MetricsRegistry) {
    const r = [registry];
    this.connections = new Gauge({ name: 'roomcast_gateway_connections', help: 'Open WebSocket connections', registers: r });
    this.connectionsOpened = new Counter({ name: 'roomcast_gateway_connections_opened_total', help: 'WebSocket connections accepted', registers: r });
    this.rooms = new Gauge({ name: 'roomcast_gateway_rooms', help: 'Rooms with at least one local connection (one bus subscription each)', registers: r });
    this.framesIn = new Counter({ name: 'roomcast_gateway_frames_in_total', help: 'Client frames received, by type (invalid for undecodable ones)', labelNames: ['type'], registers: r });
    this.deliveries = new Counter({ name: 'roomcast_gateway_deliveries_total', help: 'Room messages delivered: messages × local recipients', registers: r });
    this.bytesOut = new Counter({ name: 'roomcast_gateway_bytes_out_total', help: 'Bytes of room batches written to connections (frame size × recipients)', registers: r });
    this.batches = new Histogram({ name: 'roomcast_gateway_batch_messages', help: 'Messages per room batch frame', buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500], registers: r });
    this.publishToFlush = new Histogram({
      name: 'roomcast_gateway_publish_to_flush_seconds', help: 'From the room service accepting a message to the gateway writing its batch',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5], registers: r,
    });
    this.drops = new Counter({ name: 'roomcast_drops_total', help: 'Messages not delivered, by reason and priority (0 chat, 1 high)', labelNames: ['reason', 'priority'], registers: r });
    this.errors = new Counter({ name: 'roomcast_gateway_errors_total', help: 'Error frames and error closes sent to clients, by code', labelNames: ['code'], registers: r });
    this.busErrors = new Counter({ name: 'roomcast_gateway_bus_errors_total', help: 'Bus failures seen by the gateway (requests, disconnects)', registers: r });
    this.storeErrors = new Counter({ name: 'roomcast_gateway_store_errors_total', help: 'Store failures seen by the gateway (registry, viewer counts)', registers: r });
    this.gapFills = new Counter({ name: 'roomcast_gateway_gap_fills_total', help: 'Gaps in a room\'s seq filled from history, by result', labelNames: ['result'], registers: r });
  }

  connectionOpened(): void { this.connections.inc(); this.connectionsOpened.inc(); }
  connectionClosed(): void { this.connections.dec(); }
  roomsActive(count: number): void { this.rooms.set(count); }
  frameIn(type: string): void { this.framesIn.inc({ type }); }
  batchFlushed(messages: number, recipients: number, bytesOut: number, oldestTsMs: number, nowMs: number): void {
    this.batches.observe(messages);
    this.deliveries.inc(messages * recipients);
    this.bytesOut.inc(bytesOut);
    this.publishToFlush.observe(Math.max(0, nowMs - oldestTsMs) / 1000);
  }
  dropped(reason: DropReason, priority: Priority, count = 1): void { this.drops.inc({ reason, priority }, count); }
  errorSent(code: ErrorCode): void { this.errors.inc({ code }); }
  busError(): void { this.busErrors.inc(); }
  storeError(): void { this.storeErrors.inc(); }
  gapFilled(result: 'filled' | 'unrecoverable' | 'failed'): void { this.gapFills.inc({ result }); }
}

/** What the room service reports. */
export class RoomServiceMetrics {
  private readonly requests: Counter<'op' | 'result'>;
  private readonly published: Counter<'kind'>;
  private readonly storeLatency: Histogram<'op'>;
  private readonly busErrors: Counter;
  private readonly storeErrors: Counter;
  private readonly httpRequests: Counter<'route' | 'status'>;

  constructor({ registry }: MetricsRegistry) {
    const r = [registry];
    this.requests = new Counter({ name: 'roomcast_room_requests_total', help: 'Requests handled by the room service, by operation and result code', labelNames: ['op', 'result'], registers: r });
    this.published = new Counter({ name: 'roomcast_messages_published_total', help: 'Room messages stored and published once on their room subject, by kind', labelNames: ['kind'], registers: r });
    this.storeLatency = new Histogram({ name: 'roomcast_room_store_seconds', help: 'Store round trips of the room service', labelNames: ['op'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25], registers: r });
    this.busErrors = new Counter({ name: 'roomcast_room_bus_errors_total', help: 'Bus failures seen by the room service', registers: r });
    this.storeErrors = new Counter({ name: 'roomcast_room_store_errors_total', help: 'Store failures seen by the room service', registers: r });
    this.httpRequests = new Counter({ name: 'roomcast_http_requests_total', help: 'HTTP API requests, by route and status', labelNames: ['route', 'status'], registers: r });
  }

  request(op: string, result: string): void { this.requests.inc({ op, result }); }
  messagePublished(kind: string): void { this.published.inc({ kind }); }
  storeTimer(op: string): () => void { return this.storeLatency.startTimer({ op }); }
  busError(): void { this.busErrors.inc(); }
  storeError(): void { this.storeErrors.inc(); }
  httpRequest(route: string, status: number): void { this.httpRequests.inc({ route, status: String(status) }); }
}
