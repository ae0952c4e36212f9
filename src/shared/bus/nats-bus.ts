/**
 * The bus over NATS core: the only module that imports `nats`. It reconnects forever (a gateway
 * outlives any NATS outage), reports connection changes through onStatus so callers can repair what
 * they missed, and turns the NATS failures callers act on into RoomcastErrors.
 */
import { connect, createInbox, ErrorCode, Events, NatsError, type Msg, type NatsConnection } from 'nats';
import { fail } from '../errors.js';
import type { Logger } from '../log.js';
import type { Bus, BusHandler, BusMessage, BusStatus, SubscribeOptions, Subscription } from './bus.js';

/** Short, so a restarted NATS server is used again within a moment. */
export const DEFAULT_RECONNECT_TIME_WAIT_MS = 250;
/** While publishes keep coming, they are written at most this often (see OutboundBatch). */
const MIN_WRITE_INTERVAL_MS = 1;
/** How often overdue requests are failed: a request's timeout is met within this much. */
const REQUEST_SWEEP_MS = 25;
/** The status header NATS answers a request with when no subscriber listens. */
const NO_RESPONDERS_STATUS = 503;
const RECONNECT_FOREVER = -1;

export interface NatsBusOptions {
  /** One URL or several (of one cluster), `nats://host:port`. */
  servers: string | string[];
  /** The connection's name in the server's monitoring (connz). */
  name: string;
  /**
   * The NATS user of this process's role and its password (nats.conf grants each role only its
   * subjects); without them the connection has no credentials (or those in the URL).
   */
  user?: string | null;
  password?: string | null;
  log: Logger;
  /** Receives what a handler throws; delivery goes on. Defaults to logging it. */
  onError?: (error: unknown) => void;
  /** Pause between reconnect attempts; default DEFAULT_RECONNECT_TIME_WAIT_MS. */
  reconnectTimeWaitMs?: number;
}

export class NatsBus implements Bus {
  private readonly statusListeners: Array<(status: BusStatus) => void> = [];
  private readonly outbound: OutboundBatch;
  private readonly requests: RequestMux;
  private connected = true;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly onError: (error: unknown) => void,
  ) {
    this.outbound = new OutboundBatch(nc, (reply, error) => {
      if (!this.requests.fail(reply, error)) onError(error);
    });
    this.requests = new RequestMux(nc, this.outbound);
    // nats.js does not end the status iterator when the connection closes, so nothing awaits this loop.
    void this.watchStatus().catch((error: unknown) => log.error('watching the NATS connection failed', { error }));
    void nc.closed().then((error) => {
      if (error) log.error('the NATS connection closed on an error', { error });
    });
  }

  /** Connects once (failing with RoomcastError 'unavailable' when no server answers), then reconnects forever. */
  static async connect(options: NatsBusOptions): Promise<NatsBus> {
    const { log } = options;
    const { servers, user, password } = splitCredentials(options);
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers,
        name: options.name,
        ...(user ? { user, pass: password ?? '' } : {}),
        maxReconnectAttempts: RECONNECT_FOREVER,
        reconnectTimeWait: options.reconnectTimeWaitMs ?? DEFAULT_RECONNECT_TIME_WAIT_MS,
      });
    } catch (error) {
      // Refused credentials will not get better by retrying: say so plainly and stop.
      if (error instanceof NatsError && error.code === ErrorCode.AuthorizationViolation) {
        throw new NatsAuthError(`NATS at ${servers.join(',')} refused the credentials of user '${user ?? '(none)'}': check ROOMCAST_NATS_USER and ROOMCAST_NATS_PASSWORD`, { cause: error });
      }
      throw fail.unavailable(`cannot connect to NATS at ${servers.join(',')}`, { cause: error });
    }
    log.info('connected to NATS', { server: nc.getServer(), name: options.name, user: user ?? null });
    return new NatsBus(nc, log, options.onError ?? ((error) => log.error('bus handler failed', { error })));
  }

  publish(subject: string, data: Uint8Array): void {
    this.outbound.add(subject, data);
  }

  subscribe(subject: string, handler: BusHandler, options: SubscribeOptions = {}): Subscription {
    const { onError, log } = this;
    try {
      // A callback, not an async iterator: no promise per message on the hot path.
      const subscription = this.nc.subscribe(subject, {
        queue: options.queue,
        callback: (error, message) => {
          if (error) {
            log.error('subscription failed', { subject, error });
            return;
          }
          // nats.js calls this inside its protocol parser: a throw must not reach it.
          try {
            handler(new InboundMessage(message, this.outbound));
          } catch (thrown) {
            onError(thrown);
          }
        },
      });
      return { subject, unsubscribe: () => subscription.unsubscribe() };
    } catch (error) {
      throw toBusError(error);
    }
  }

  request(subject: string, data: Uint8Array, options: { timeoutMs: number }): Promise<Uint8Array> {
    return this.requests.request(subject, data, options.timeoutMs);
  }

  async flush(): Promise<void> {
    this.outbound.write();
    try {
      await this.nc.flush();
    } catch (error) {
      throw toBusError(error);
    }
  }

  onStatus(listener: (status: BusStatus) => void): void {
    this.statusListeners.push(listener);
  }

  /** Drains: subscriptions get what is already on its way and what was published reaches the server. */
  async close(): Promise<void> {
    this.outbound.write();
    this.requests.close();
    if (!this.nc.isClosed() && !this.nc.isDraining()) {
      // Draining needs the server; without one, waiting for it would hold up the shutdown.
      if (this.connected) await this.nc.drain();
      else await this.nc.close();
    }
    await this.nc.closed();
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      switch (status.type) {
        case Events.Disconnect:
          this.connected = false;
          this.log.warn('lost the NATS connection; reconnecting', { server: status.data });
          this.emit('disconnected');
          break;
        case Events.Reconnect:
          this.connected = true;
          this.log.info('reconnected to NATS', { server: status.data });
          this.emit('reconnected');
          break;
        case Events.Error:
          this.log.error('NATS reported an error', { error: status.data });
          break;
        case Events.LDM:
          this.log.warn('the NATS server is shutting down (lame duck mode)', { server: status.data });
          break;
      }
    }
  }

  private emit(status: BusStatus): void {
    for (const listener of this.statusListeners) {
      try {
        listener(status);
      } catch (error) {
        this.onError(error);
      }
    }
  }
}

/** NATS refused this process's user or password (at start-up: a configuration mistake). */
export class NatsAuthError extends Error {
  override readonly name = 'NatsAuthError';
  readonly code = 'nats_auth_refused';
}

/**
 * The server URLs without credentials, and the user to log in as: the options' user, else the one in
 * a URL (`nats://user:password@host:4222`, which nats.js itself would ignore). Credentials never
 * reach a log line this way.
 */
function splitCredentials(options: NatsBusOptions): { servers: string[]; user?: string; password?: string } {
  let user = options.user ?? undefined;
  let password = options.password ?? undefined;
  const servers = [options.servers].flat().map((server) => {
    const match = /^([a-z]+:\/\/)([^:@/]*)(?::([^@/]*))?@(.*)$/.exec(server);
    if (!match) return server;
    if (!user && match[2]) {
      user = decodeURIComponent(match[2]);
      password = decodeURIComponent(match[3] ?? '');
    }
    return `${match[1]}${match[4]}`;
  });
  return { servers, ...(user ? { user } : {}), ...(password !== undefined ? { password } : {}) };
}

interface OutboundMessage {
  subject: string;
  data: Uint8Array;
  reply: string | undefined;
}

/**
 * Publishes reach NATS in batches: one socket write per turn of the event loop, and at most one per
 * MIN_WRITE_INTERVAL_MS while busy (the first after a quiet moment goes at once). nats.js writes at
 * every microtask checkpoint, and uWS has one after each WebSocket message: without this a gateway
 * makes a write per chat frame, each waking the server and every service that answers it, and on a
 * busy core those writes and wake-ups are most of the cost of a message.
 */
class OutboundBatch {
  private queued: OutboundMessage[] = [];
  private lastWriteAt = 0;

  /** `onFailure` hears of a queued message nats.js refused (with its reply subject, if any). */
  constructor(private readonly nc: NatsConnection, private readonly onFailure: (reply: string | undefined, error: unknown) => void) {}

  add(subject: string, data: Uint8Array, reply?: string): void {
    if (this.nc.isClosed()) throw fail.unavailable('the bus is closed');
    if (this.nc.isDraining()) {
      // The drain flushes and closes on its own schedule: what is published meanwhile (answers to the
      // requests it still delivers) goes to nats.js at once, or fails here as it would there.
      this.write();
      this.publishNow(subject, data, reply);
      return;
    }
    if (this.queued.length === 0) {
      const wait = this.lastWriteAt + MIN_WRITE_INTERVAL_MS - performance.now();
      if (wait <= 0) setImmediate(() => this.write());
      else setTimeout(() => this.write(), wait);
    }
    this.queued.push({ subject, data, reply });
  }

  /** Hands everything queued to nats.js, which writes it at the next microtask checkpoint. */
  write(): void {
    const messages = this.queued;
    if (messages.length === 0) return;
    this.queued = [];
    this.lastWriteAt = performance.now();
    for (const { subject, data, reply } of messages) {
      try {
        this.publishNow(subject, data, reply);
      } catch (error) {
        this.onFailure(reply, error);
      }
    }
  }

  private publishNow(subject: string, data: Uint8Array, reply: string | undefined): void {
    try {
      this.nc.publish(subject, data, reply === undefined ? undefined : { reply });
    } catch (error) {
      throw toBusError(error);
    }
  }
}

/**
 * A delivered message. Its answer goes out in the same batch as publishes, in order: what a service
 * published before it answered (a message routed before its send is acknowledged) reaches NATS first.
 */
class InboundMessage implements BusMessage {
  readonly data: Uint8Array;

  constructor(private readonly message: Msg, private readonly outbound: OutboundBatch) {
    this.data = message.data;
  }

  /** Decoded only when asked: the room and delivery handlers never ask. */
  get subject(): string {
    return this.message.subject;
  }

  respond(data: Uint8Array): void {
    const reply = this.message.reply;
    if (reply) this.outbound.add(reply, data);
  }
}

interface PendingRequest {
  subject: string;
  timeoutMs: number;
  deadline: number;
  resolve(data: Uint8Array): void;
  reject(error: unknown): void;
}

/**
 * Request-reply over one wildcard inbox subscription. nats.js's own request() builds an Error, with
 * its stack, for every request it completes, and a timer for each: a tenth of a gateway's time under
 * chat load. Here a request is a map entry, and one sweep fails the overdue ones.
 */
class RequestMux {
  private readonly pending = new Map<string, PendingRequest>();
  private readonly inbox = createInbox();
  private nextToken = 0;
  /** Runs only while requests wait: an idle process is not woken to sweep an empty map. */
  private sweeper: NodeJS.Timeout | null = null;
  private subscribed = false;

  constructor(private readonly nc: NatsConnection, private readonly outbound: OutboundBatch) {}

  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    // Subscribed at the first request, not before: a role that never asks (the room service) has no
    // permission to subscribe to _INBOX.> and must not try.
    if (!this.subscribed) {
      try {
        this.nc.subscribe(`${this.inbox}.*`, { callback: (error, message) => { if (!error) this.settle(message); } });
      } catch (error) {
        return Promise.reject(toBusError(error));
      }
      this.subscribed = true;
    }
    const reply = `${this.inbox}.${(this.nextToken++).toString(36)}`;
    return new Promise((resolve, reject) => {
      this.outbound.add(subject, data, reply);
      this.pending.set(reply, { subject, timeoutMs, deadline: Date.now() + timeoutMs, resolve, reject });
      this.sweeper ??= setInterval(() => this.failOverdue(), REQUEST_SWEEP_MS).unref();
    });
  }

  /** Fails the request waiting on `reply`, if there is one: its publish was refused. */
  fail(reply: string | undefined, error: unknown): boolean {
    if (reply === undefined) return false;
    const request = this.pending.get(reply);
    if (!request) return false;
    this.pending.delete(reply);
    request.reject(error);
    return true;
  }

  /** Fails what is still waiting: the bus is closing. */
  close(): void {
    this.stopSweeping();
    for (const [reply, request] of this.pending) {
      this.pending.delete(reply);
      request.reject(fail.unavailable('the bus is closed'));
    }
  }

  private settle(message: Msg): void {
    const request = this.pending.get(message.subject);
    // Late (after a timeout) or a second reply: the first one won.
    if (!request) return;
    this.pending.delete(message.subject);
    if (message.data.length === 0 && message.headers?.code === NO_RESPONDERS_STATUS) {
      request.reject(fail.unavailable(`no responder for ${request.subject}`));
    } else {
      request.resolve(message.data);
    }
  }

  private failOverdue(): void {
    const now = Date.now();
    for (const [reply, request] of this.pending) {
      if (request.deadline > now) continue;
      this.pending.delete(reply);
      request.reject(fail.timeout(`no reply on ${request.subject} within ${request.timeoutMs} ms`));
    }
    if (this.pending.size === 0) this.stopSweeping();
  }

  private stopSweeping(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

/** A closed bus fails with 'unavailable', as the in-process one does; anything else is a bug and passes through. */
function toBusError(error: unknown): unknown {
  const closed = error instanceof NatsError && (error.code === ErrorCode.ConnectionClosed || error.code === ErrorCode.ConnectionDraining);
  return closed ? fail.unavailable('the bus is closed', { cause: error }) : error;
}
