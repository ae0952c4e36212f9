/**
 * The in-process bus of the all-in-one mode, with the semantics of NATS core so that code written
 * against it behaves the same in distributed mode: `*` and `>` wildcards, queue groups, request-reply
 * with "no responders", at-most-once delivery that is asynchronous but ordered per subscription.
 */
import { fail, RoomcastError } from '../errors.js';
import type { Bus, BusHandler, BusMessage, BusStatus, SubscribeOptions, Subscription } from './bus.js';

const TOKEN_SEPARATOR = '.';
const ONE_TOKEN_WILDCARD = '*';
const REST_WILDCARD = '>';

export interface MemoryBusOptions {
  /** Receives what a handler throws; delivery goes on. Defaults to `console.error`. */
  onError?: (error: unknown) => void;
}

class MemorySubscription implements Subscription {
  closed = false;
  /** When this queue member last got a message; the least recent member gets the next one (round robin). */
  lastChosen = 0;

  constructor(
    readonly subject: string,
    /** The subject's tokens when it has wildcards, null for an exact subject. */
    readonly pattern: readonly string[] | null,
    readonly queue: string | undefined,
    readonly handler: BusHandler,
    private readonly remove: (subscription: MemorySubscription) => void,
  ) {}

  unsubscribe(): void {
    if (this.closed) return;
    this.closed = true;
    this.remove(this);
  }
}

class LocalMessage implements BusMessage {
  constructor(
    readonly subject: string,
    readonly data: Uint8Array,
    private readonly reply: ((data: Uint8Array) => void) | null,
  ) {}

  respond(data: Uint8Array): void {
    this.reply?.(data);
  }
}

/**
 * Messages are shared by reference between subscribers (nothing is copied): handlers must not
 * mutate `data`.
 */
export class MemoryBus implements Bus {
  /** Exact subjects: one Map lookup per publish. */
  private readonly exact = new Map<string, MemorySubscription[]>();
  /** Wildcard subscriptions are few (a service's request subjects); they are matched one by one. */
  private readonly wildcards: MemorySubscription[] = [];
  /** Deliveries waiting for the next drain, as two lists in step (no allocation per delivery). */
  private readonly pendingSubscriptions: MemorySubscription[] = [];
  private readonly pendingMessages: BusMessage[] = [];
  private drainScheduled = false;
  private flushWaiters: Array<() => void> = [];
  private readonly openRequests = new Set<(error: RoomcastError) => void>();
  private choices = 0;
  private closed = false;
  private readonly onError: (error: unknown) => void;

  constructor(options: MemoryBusOptions = {}) {
    this.onError = options.onError ?? ((error) => console.error('bus handler failed', error));
  }

  publish(subject: string, data: Uint8Array): void {
    this.assertOpen();
    this.route(subject, new LocalMessage(subject, data, null));
  }

  subscribe(subject: string, handler: BusHandler, options: SubscribeOptions = {}): Subscription {
    this.assertOpen();
    const tokens = subject.split(TOKEN_SEPARATOR);
    if (tokens.some((token, index) => token === '' || (token === REST_WILDCARD && index !== tokens.length - 1))) {
      throw new Error(`invalid subject: ${JSON.stringify(subject)}`);
    }
    const hasWildcard = tokens.includes(ONE_TOKEN_WILDCARD) || tokens.includes(REST_WILDCARD);
    const subscription = new MemorySubscription(subject, hasWildcard ? tokens : null, options.queue, handler, (sub) => this.remove(sub));
    if (hasWildcard) {
      this.wildcards.push(subscription);
    } else {
      const list = this.exact.get(subject);
      if (list) list.push(subscription);
      else this.exact.set(subject, [subscription]);
    }
    return subscription;
  }

  request(subject: string, data: Uint8Array, options: { timeoutMs: number }): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const settle = (error: RoomcastError) => {
        clearTimeout(timer);
        this.openRequests.delete(settle);
        reject(error);
      };
      const timer = setTimeout(() => settle(fail.timeout(`no reply on ${subject} within ${options.timeoutMs} ms`)), options.timeoutMs);
      this.openRequests.add(settle);
      const message = new LocalMessage(subject, data, (reply) => {
        // Only the first reply counts, as with NATS; later ones (or ones after the timeout) are dropped.
        if (!this.openRequests.delete(settle)) return;
        clearTimeout(timer);
        resolve(reply);
      });
      if (this.route(subject, message) === 0) settle(fail.unavailable(`no responder for ${subject}`));
    });
  }

  flush(): Promise<void> {
    if (!this.drainScheduled) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push(resolve));
  }

  /** Open subscriptions on exactly `subject`, like nats-server's monitoring reports them. */
  subscriptionCount(subject: string): number {
    return this.exact.get(subject)?.length ?? 0;
  }

  /** Never fires: the in-process bus cannot lose its connection. */
  onStatus(_listener: (status: BusStatus) => void): void {}

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    for (const list of this.exact.values()) for (const subscription of list) subscription.closed = true;
    for (const subscription of this.wildcards) subscription.closed = true;
    this.exact.clear();
    this.wildcards.length = 0;
    for (const fail of [...this.openRequests]) fail(closedError());
  }

  /** Queues `message` for every matching subscription; returns how many that is. */
  private route(subject: string, message: BusMessage): number {
    const before = this.pendingSubscriptions.length;
    // Queue members seen so far for this message, by group: the least recently chosen one wins.
    let queueChoices: Map<string, MemorySubscription> | undefined;
    const offer = (subscription: MemorySubscription) => {
      if (subscription.queue === undefined) {
        this.enqueue(subscription, message);
        return;
      }
      queueChoices ??= new Map();
      const current = queueChoices.get(subscription.queue);
      if (!current || subscription.lastChosen < current.lastChosen) queueChoices.set(subscription.queue, subscription);
    };
    const exact = this.exact.get(subject);
    if (exact) for (const subscription of exact) offer(subscription);
    if (this.wildcards.length > 0) {
      const tokens = subject.split(TOKEN_SEPARATOR);
      for (const subscription of this.wildcards) if (matches(subscription.pattern!, tokens)) offer(subscription);
    }
    if (queueChoices) {
      for (const chosen of queueChoices.values()) {
        chosen.lastChosen = ++this.choices;
        this.enqueue(chosen, message);
      }
    }
    return this.pendingSubscriptions.length - before;
  }

  private enqueue(subscription: MemorySubscription, message: BusMessage): void {
    this.pendingSubscriptions.push(subscription);
    this.pendingMessages.push(message);
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      queueMicrotask(() => this.drain());
    }
  }

  /** Runs every queued delivery in order, including those that handlers queue meanwhile. */
  private drain(): void {
    const subscriptions = this.pendingSubscriptions;
    const messages = this.pendingMessages;
    for (let i = 0; i < subscriptions.length; i++) {
      const subscription = subscriptions[i]!;
      // A message queued before unsubscribe() is dropped, as the NATS client drops it.
      if (subscription.closed) continue;
      try {
        subscription.handler(messages[i]!);
      } catch (error) {
        this.onError(error);
      }
    }
    subscriptions.length = 0;
    messages.length = 0;
    this.drainScheduled = false;
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private remove(subscription: MemorySubscription): void {
    if (subscription.pattern) {
      removeFrom(this.wildcards, subscription);
      return;
    }
    const list = this.exact.get(subscription.subject);
    if (!list) return;
    removeFrom(list, subscription);
    if (list.length === 0) this.exact.delete(subscription.subject);
  }

  private assertOpen(): void {
    if (this.closed) throw closedError();
  }
}

/** NATS matching: `*` is exactly one token, `>` one or more trailing tokens. */
function matches(pattern: readonly string[], tokens: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const expected = pattern[i];
    if (expected === REST_WILDCARD) return tokens.length > i;
    if (i >= tokens.length || (expected !== ONE_TOKEN_WILDCARD && expected !== tokens[i])) return false;
  }
  return pattern.length === tokens.length;
}

function removeFrom<T>(list: T[], item: T): void {
  const index = list.indexOf(item);
  if (index >= 0) list.splice(index, 1);
}

function closedError(): RoomcastError {
  return fail.unavailable('the bus is closed');
}
