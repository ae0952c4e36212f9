/**
 * Repairs private messages whose inbox steps a crash cut short: in rounds of a second, the sends that
 * are still in the outbox after the grace are appended to their inboxes, pushed, and settled. Every
 * room service runs one; they may repair the same entry at once, which the idempotent inbox step
 * allows.
 *
 * The repair runs only while this room service handles private messages, and for one full pass over
 * the outbox once the last of them is past the grace (`roundsPerPass` rounds): an idle fleet costs
 * Redis nothing. A
 * crash leaves entries only where private messages were being sent, and those senders' retries (or
 * the next private message any room service handles) start the rounds that repair them.
 */
import type { Clock } from '../shared/clock.js';
import { DEFAULT_CHAT_REPAIR_GRACE_MS } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import type { ChatService } from './chat-service.js';

export const DEFAULT_REPAIR_GRACE_MS = DEFAULT_CHAT_REPAIR_GRACE_MS;
/** One round a second; a Redis store visits ROOMCAST_CHAT_REPAIR_SLOTS_PER_SEC per-slot outboxes per round. */
export const REPAIR_INTERVAL_MS = 1_000;
/** Entries per round, so a backlog is worked off in bounded steps. */
export const REPAIR_BATCH = 100;

/** When this room service last handled a private message; ChatService notes each one. */
export class SendActivity {
  lastMs = Number.NEGATIVE_INFINITY;
  note(nowMs: number): void {
    this.lastMs = nowMs;
  }
}

export interface DeliveryRepairDeps {
  chat: Pick<ChatService, 'repairDeliveries'>;
  activity: SendActivity;
  clock: Clock;
  log: Logger;
  /** Rounds that visit the whole outbox (16384 slots / slots per round; 1 for the in-memory store). */
  roundsPerPass: number;
  graceMs?: number;
  intervalMs?: number;
}

export class DeliveryRepair {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private roundsLeft = 0;

  constructor(private readonly deps: DeliveryRepairDeps) {}

  start(): void {
    const intervalMs = this.deps.intervalMs ?? REPAIR_INTERVAL_MS;
    this.timer = setInterval(() => {
      // Until the sends of this service are past the grace (due for repair), keep a full pass ahead:
      // the last pass starts once every entry they may have left is due.
      const graceMs = this.deps.graceMs ?? DEFAULT_REPAIR_GRACE_MS;
      if (this.deps.clock.now() - this.deps.activity.lastMs <= graceMs + intervalMs) this.roundsLeft = this.deps.roundsPerPass;
      if (this.roundsLeft === 0) return;
      // Rounds never overlap: a slow round delays the next.
      if (this.running) return;
      this.roundsLeft--;
      this.running = this.round().finally(() => { this.running = undefined; });
    }, intervalMs);
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
