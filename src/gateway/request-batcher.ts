/**
 * A gateway's requests of one kind, coalesced: the room sends (or the chat frames of one op) of a
 * short window go to the room service in one request, so a busy gateway pays one bus round trip (and
 * the room service one wake-up and one Redis pipeline) per window instead of per frame. A request
 * after a quiet window leaves at once (at the end of the current event-loop turn, with whatever else
 * arrived in it), so coalescing costs latency only under load, and then at most `windowMs`.
 */
import { unwrapReply } from '../shared/bus/rpc.js';
import { fail } from '../shared/errors.js';
import type { Reply } from '../shared/protocol/bus-messages.js';

export interface RequestBatcherSettings {
  /** At most one request per window while items keep coming. */
  windowMs: number;
  /** A batch this large leaves at once. */
  maxItems: number;
}

/**
 * Sends one batch, answering each item in order; rejects when the request as a whole fails (timeout,
 * `overloaded`, ...).
 */
export type BatchCall<Item, Result> = (items: Item[]) => Promise<Array<Reply<Result>>>;

interface PendingItem<Item, Result> {
  item: Item;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}

export class RequestBatcher<Item, Result> {
  private pending: Array<PendingItem<Item, Result>> = [];
  /** Cancels the flush that is scheduled, if one is. */
  private cancelScheduled: (() => void) | null = null;
  private lastFlushMs = -Infinity;

  constructor(
    private readonly call: BatchCall<Item, Result>,
    private readonly settings: RequestBatcherSettings,
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  /** Goes out with the other items of its window; answered on its own. */
  submit(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.settings.maxItems) this.flush();
      else this.schedule();
    });
  }

  /** Sends what is pending now (shutdown, tests). */
  flush(): void {
    this.cancel();
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.lastFlushMs = this.now();
    this.call(batch.map((entry) => entry.item)).then(
      (results) => answer(batch, results),
      (error: unknown) => { for (const entry of batch) entry.reject(error); },
    );
  }

  private schedule(): void {
    if (this.cancelScheduled) return;
    const waitMs = this.lastFlushMs + this.settings.windowMs - this.now();
    if (waitMs <= 0) {
      const immediate = setImmediate(() => this.flush());
      this.cancelScheduled = () => clearImmediate(immediate);
    } else {
      const timer = setTimeout(() => this.flush(), waitMs);
      this.cancelScheduled = () => clearTimeout(timer);
    }
  }

  private cancel(): void {
    this.cancelScheduled?.();
    this.cancelScheduled = null;
  }
}

function answer<Item, Result>(batch: ReadonlyArray<PendingItem<Item, Result>>, results: ReadonlyArray<Reply<Result>>): void {
  batch.forEach((entry, index) => {
    const result = Array.isArray(results) ? results[index] : undefined;
    if (!result) {
      entry.reject(fail.internal('the room service answered fewer requests than it was given'));
      return;
    }
    try {
      entry.resolve(unwrapReply(result));
    } catch (error) {
      entry.reject(error);
    }
  });
}
