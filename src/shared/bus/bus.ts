/**
 * The bus seam: publish / subscribe / request-reply / queue groups. NATS in distributed mode, an
 * in-process implementation in the all-in-one mode; one contract suite runs against both.
 */

export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** Answers a request; a no-op for messages that were published without a reply subject. */
  respond(data: Uint8Array): void;
}

export type BusHandler = (message: BusMessage) => void;

export interface Subscription {
  readonly subject: string;
  unsubscribe(): void;
}

export interface SubscribeOptions {
  /** Members of one queue group share the subject's messages: each message goes to one of them. */
  queue?: string;
}

export type BusStatus = 'disconnected' | 'reconnected';

export interface Bus {
  /** Fire and forget, at most once. */
  publish(subject: string, data: Uint8Array): void;
  /** `subject` may use NATS wildcards (`*` for one token, `>` for the rest). */
  subscribe(subject: string, handler: BusHandler, options?: SubscribeOptions): Subscription;
  /** Sends a request and resolves with the first reply; rejects with RoomcastError 'unavailable' when
   * nobody listens and 'timeout' when nobody answers in time. */
  request(subject: string, data: Uint8Array, options: { timeoutMs: number }): Promise<Uint8Array>;
  /** Resolves once everything published so far has reached the server (or the local subscribers). */
  flush(): Promise<void>;
  /** Connection status changes; after 'reconnected' subscribers may have missed messages. */
  onStatus(listener: (status: BusStatus) => void): void;
  close(): Promise<void>;
}
