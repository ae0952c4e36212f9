/**
 * The bus over NATS core: the only module that imports `nats`. It reconnects forever (a gateway
 * outlives any NATS outage), reports connection changes through onStatus so callers can repair what
 * they missed, and turns the NATS failures callers act on into RoomcastErrors.
 */
import { connect, ErrorCode, Events, NatsError, type NatsConnection } from 'nats';
import { RoomcastError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Bus, BusHandler, BusStatus, SubscribeOptions, Subscription } from './bus.js';

/** Short, so a restarted NATS server is used again within a moment. */
export const DEFAULT_RECONNECT_TIME_WAIT_MS = 250;
const RECONNECT_FOREVER = -1;

export interface NatsBusOptions {
  /** One URL or several (of one cluster), `nats://host:port`. */
  servers: string | string[];
  /** The connection's name in the server's monitoring (connz). */
  name: string;
  log: Logger;
  /** Receives what a handler throws; delivery goes on. Defaults to logging it. */
  onError?: (error: unknown) => void;
  /** Pause between reconnect attempts; default DEFAULT_RECONNECT_TIME_WAIT_MS. */
  reconnectTimeWaitMs?: number;
}

export class NatsBus implements Bus {
  private readonly statusListeners: Array<(status: BusStatus) => void> = [];
  private connected = true;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly onError: (error: unknown) => void,
  ) {
    // nats.js does not end the status iterator when the connection closes, so nothing awaits this loop.
    void this.watchStatus().catch((error: unknown) => log.error('watching the NATS connection failed', { error }));
    void nc.closed().then((error) => {
      if (error) log.error('the NATS connection closed on an error', { error });
    });
  }

  /** Connects once (failing with RoomcastError 'unavailable' when no server answers), then reconnects forever. */
  static async connect(options: NatsBusOptions): Promise<NatsBus> {
    const { log } = options;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: options.servers,
        name: options.name,
        maxReconnectAttempts: RECONNECT_FOREVER,
        reconnectTimeWait: options.reconnectTimeWaitMs ?? DEFAULT_RECONNECT_TIME_WAIT_MS,
        // Otherwise every request captures a stack trace up front: a tenth of a gateway's time.
        noAsyncTraces: true,
      });
    } catch (error) {
      throw new RoomcastError('unavailable', `cannot connect to NATS at ${String(options.servers)}`, { cause: error });
    }
    log.info('connected to NATS', { server: nc.getServer(), name: options.name });
    return new NatsBus(nc, log, options.onError ?? ((error) => log.error('bus handler failed', { error })));
  }

  publish(subject: string, data: Uint8Array): void {
    try {
      this.nc.publish(subject, data);
    } catch (error) {
      throw toBusError(error);
    }
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
            handler(message);
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

  async request(subject: string, data: Uint8Array, options: { timeoutMs: number }): Promise<Uint8Array> {
    try {
      const reply = await this.nc.request(subject, data, { timeout: options.timeoutMs });
      return reply.data;
    } catch (error) {
      throw toRequestError(error, subject, options.timeoutMs);
    }
  }

  async flush(): Promise<void> {
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

/** "No responders" and "no reply in time" as the RoomcastErrors the Bus contract promises. */
function toRequestError(error: unknown, subject: string, timeoutMs: number): unknown {
  if (error instanceof NatsError && error.code === ErrorCode.NoResponders) {
    return new RoomcastError('unavailable', `no responder for ${subject}`, { cause: error });
  }
  if (error instanceof NatsError && error.code === ErrorCode.Timeout) {
    return new RoomcastError('timeout', `no reply on ${subject} within ${timeoutMs} ms`, { cause: error });
  }
  return toBusError(error);
}

/** A closed bus fails with 'unavailable', as the in-process one does; anything else is a bug and passes through. */
function toBusError(error: unknown): unknown {
  const closed = error instanceof NatsError && (error.code === ErrorCode.ConnectionClosed || error.code === ErrorCode.ConnectionDraining);
  return closed ? new RoomcastError('unavailable', 'the bus is closed', { cause: error }) : error;
}
