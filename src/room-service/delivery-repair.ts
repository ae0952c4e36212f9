/**
 * Repairs private messages whose inbox steps a crash cut short: every `intervalMs`, the sends that
 * are still in the outbox after `graceMs` are appended to their inboxes, pushed, and settled. Every room
 * service runs one; they may repair the same entry at once, which the idempotent inbox step allows.
 */
import { DEFAULT_CHAT_REPAIR_GRACE_MS } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import type { ChatService } from './chat-service.js';

/** Longer than any send takes between its store and its inbox steps, so a live send is never repaired. */
export const DEFAULT_REPAIR_GRACE_MS = DEFAULT_CHAT_REPAIR_GRACE_MS;
/** One round a second; a Redis store visits ROOMCAST_CHAT_REPAIR_SLOTS_PER_SEC per-slot outboxes per round. */
export const DEFAULT_REPAIR_INTERVAL_MS = 1_000;
/** Entries per round, so a backlog is worked off in bounded steps. */
export const REPAIR_BATCH = 100;

export interface DeliveryRepairDeps {
  chat: Pick<ChatService, 'repairDeliveries'>;
  log: Logger;
  intervalMs?: number;
  graceMs?: number;
}

export class DeliveryRepair {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly deps: DeliveryRepairDeps) {}

  start(): void {
    this.timer = setInterval(() => {
      // Rounds never overlap: a slow round delays the next.
      this.running ??= this.round().finally(() => { this.running = undefined; });
    }, this.deps.intervalMs ?? DEFAULT_REPAIR_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private async round(): Promise<void> {
    try {
      await this.deps.chat.repairDeliveries(this.deps.graceMs ?? DEFAULT_REPAIR_GRACE_MS, REPAIR_BATCH);
    } catch (error) {
      this.deps.log.warn('delivery repair round failed; the next round retries', { error });
    }
  }
}
