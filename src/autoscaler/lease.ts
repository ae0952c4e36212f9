/**
 * Leader election over a coordination.k8s.io Lease, as client-go's leaderelection does it: create
 * the Lease or take it over once its holder has not renewed for a lease duration, renew it with the
 * resourceVersion as a precondition (a 409 means someone else wrote first), and act only while the
 * last successful renewal is recent. Expiry is judged by when *this* process saw the record change,
 * not by the holder's clock, so clock skew between nodes cannot cut a lease short.
 */
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/log.js';
import { KubeApiError, type LeaseRecord, type LeaseStore } from './cluster-api.js';

export interface LeaderElectorOptions {
  store: LeaseStore;
  identity: string;
  leaseDurationMs: number;
  clock: Clock;
  log: Logger;
  /** Called when a round fails for a reason other than losing the race. */
  onError?: () => void;
}

export class LeaderElector {
  /** Local time until which this process may act (last successful write + the renew deadline). */
  private actUntilMs = 0;
  private observed: { key: string; atMs: number } | null = null;

  constructor(private readonly options: LeaderElectorOptions) {}

  get identity(): string {
    return this.options.identity;
  }

  isLeader(nowMs: number = this.options.clock.now()): boolean {
    return nowMs < this.actUntilMs;
  }

  /** One round: acquire or renew. Returns whether this process holds the Lease now. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { store, identity, clock } = this.options;
    const durationS = Math.ceil(this.options.leaseDurationMs / 1000);
    const now = clock.now();
    try {
      const current = await store.get();
      if (current === null) {
        await store.create({ holderIdentity: identity, leaseDurationSeconds: durationS, acquireTimeMs: now, renewTimeMs: now, leaseTransitions: 0 });
        return this.won(now, 'acquired');
      }
      const key = `${current.holderIdentity}|${current.renewTimeMs}|${current.resourceVersion}`;
      if (this.observed?.key !== key) this.observed = { key, atMs: now };
      if (current.holderIdentity === identity) {
        await store.replace({ ...current, leaseDurationSeconds: durationS, renewTimeMs: now });
        return this.won(now, null);
      }
      const heldBySomeone = current.holderIdentity !== null && current.holderIdentity !== '';
      const expired = now >= this.observed.atMs + current.leaseDurationSeconds * 1000;
      if (heldBySomeone && !expired) return this.lost(`held by ${current.holderIdentity}`);
      await store.replace({
        ...current, holderIdentity: identity, leaseDurationSeconds: durationS, acquireTimeMs: now, renewTimeMs: now,
        // As client-go counts them: every change of holder, also after a release.
        leaseTransitions: current.leaseTransitions + 1,
      });
      return this.won(now, heldBySomeone ? `took over from ${current.holderIdentity}` : 'acquired');
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 409) return this.lost('conflict: another instance wrote the lease first');
      this.options.onError?.();
      this.options.log.warn('lease round failed', { error });
      return this.isLeader();
    }
  }

  /** Gives the Lease up (on shutdown), so a successor need not wait for it to expire. */
  async release(): Promise<void> {
    if (!this.isLeader()) return;
    this.actUntilMs = 0;
    const current = await this.options.store.get();
    if (current?.holderIdentity !== this.options.identity) return;
    const released: LeaseRecord = { ...current, holderIdentity: null, leaseDurationSeconds: 1, renewTimeMs: this.options.clock.now() };
    await this.options.store.replace(released);
    this.options.log.info('lease released', { identity: this.options.identity });
  }

  private won(now: number, event: string | null): boolean {
    const was = this.isLeader(now);
    // Stop acting before the lease could expire for others: at two thirds of its duration.
    this.actUntilMs = now + (this.options.leaseDurationMs * 2) / 3;
    if (event || !was) this.options.log.info('lease held', { identity: this.options.identity, event: event ?? 'renewed after a gap' });
    return true;
  }

  private lost(why: string): boolean {
    if (this.actUntilMs > 0) this.options.log.info('lease not held', { identity: this.options.identity, why });
    this.actUntilMs = 0;
    return false;
  }
}
