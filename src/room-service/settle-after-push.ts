/**
 * Settles delivered private messages only once the bus server has their pushes. A settled message is
 * not pushed again when its sender retries (chat-service.ts), so settling must never run ahead of
 * the push: the bus holds publishes for a moment to batch them, and a replica that dies in that
 * moment has settled a message nobody was shown. The settles waiting on one bus flush go together:
 * one round trip to the bus server confirms every push handed to it before the flush began.
 */
import type { Bus } from '../shared/bus/bus.js';
import type { Logger } from '../shared/log.js';
import type { PrivateRef } from '../shared/store/inbox-store.js';

export class SettleAfterPush {
  private waiting: PrivateRef[] = [];
  private flushing = false;

  constructor(
    private readonly bus: Pick<Bus, 'flush'>,
    /** Settles one message; a failure is its own to log (the outbox repair settles it later). */
    private readonly settle: (ref: PrivateRef) => void,
    private readonly log: Logger,
  ) {}

  /** `ref`'s pushes were published already: it is settled after the next bus flush that follows. */
  add(ref: PrivateRef): void {
    this.waiting.push(ref);
    if (!this.flushing) this.flushWaiting();
  }

  private flushWaiting(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.flushing = true;
    this.bus.flush().then(
      () => {
        for (const ref of batch) this.settle(ref);
      },
      (error: unknown) => {
        // Left in the outbox: the repair pushes them again and settles them then.
        this.log.warn('the bus did not confirm pushes; the outbox repair settles their messages', { error, messages: batch.length });
      },
    ).finally(() => {
      this.flushing = false;
      if (this.waiting.length > 0) this.flushWaiting();
    });
  }
}
