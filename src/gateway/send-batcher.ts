/**
 * A gateway's room sends, coalesced: the sends of one short window go to the room service in one
 * request, so a busy gateway pays one bus round trip (and the room service one Redis pipeline) per
 * window instead of per message. A send after a quiet window leaves at once (at the end of the
 * current event-loop turn, with whatever else arrived in it), so coalescing costs latency only under
 * load, and then at most `windowMs`.
 */
import { unwrapReply } from '../shared/bus/rpc.js';
import { fail } from '../shared/errors.js';
import type { SendBatchReply, SendBatchRequest, SendReply, SendRequest } from '../shared/protocol/bus-messages.js';

export interface SendBatcherSettings {
  /** At most one request per window while sends keep coming. */
  windowMs: number;
  /** A batch this large leaves at once. */
  maxSends: number;
}

/** Sends one batch; rejects when the request as a whole fails (timeout, `overloaded`, ...). */
export type SendBatchCall = (request: SendBatchRequest) => Promise<SendBatchReply>;

interface PendingSend {
  request: SendRequest;
  resolve: (reply: SendReply) => void;
  reject: (error: unknown) => void;
}

export class SendBatcher {
  private pending: PendingSend[] = [];
  /** Cancels the flush that is scheduled, if one is. */
  private cancelScheduled: (() => void) | null = null;
  private lastFlushMs = -Infinity;

  constructor(private readonly call: SendBatchCall, private readonly settings: SendBatcherSettings, private readonly now: () => number = performance.now.bind(performance)) {}

  send(request: SendRequest): Promise<SendReply> {
    return new Promise<SendReply>((resolve, reject) => {
      this.pending.push({ request, resolve, reject });
      if (this.pending.length >= this.settings.maxSends) this.flush();
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
    this.call({ sends: batch.map((entry) => entry.request) }).then(
      ({ results }) => settle(batch, results),
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

function settle(batch: readonly PendingSend[], results: SendBatchReply['results']): void {
  batch.forEach((entry, index) => {
    const result = results[index];
    if (!result) {
      entry.reject(fail.internal('the room service answered fewer sends than it was given'));
      return;
    }
    try {
      entry.resolve(unwrapReply(result));
    } catch (error) {
      entry.reject(error);
    }
  });
}
