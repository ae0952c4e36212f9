import { describe, expect, it } from 'vitest';
import { rolloutInProgress } from '../../src/autoscaler/autoscaler.js';
import { KubeApiError, type LeaseRecord, type LeaseStore } from '../../src/autoscaler/cluster-api.js';
import { LeaderElector } from '../../src/autoscaler/lease.js';
import { silentLogger } from '../../src/shared/log.js';

/** A Lease store with the API server's optimistic concurrency, and a switch to make it fail. */
class MemoryLeaseStore implements LeaseStore {
  record: LeaseRecord | null = null;
  private version = 0;
  failing = false;

  async get(): Promise<LeaseRecord | null> {
    if (this.failing) throw new KubeApiError(503, 'ServiceUnavailable', 'down');
    return this.record ? { ...this.record } : null;
  }

  async create(record: LeaseRecord): Promise<LeaseRecord> {
    if (this.record) throw new KubeApiError(409, 'AlreadyExists', 'exists');
    this.record = { ...record, resourceVersion: String(++this.version) };
    return { ...this.record };
  }

  async replace(record: LeaseRecord): Promise<LeaseRecord> {
    if (record.resourceVersion !== this.record?.resourceVersion) throw new KubeApiError(409, 'Conflict', 'modified');
    this.record = { ...record, resourceVersion: String(++this.version) };
    return { ...this.record };
  }
}

describe('leader election', () => {
  it('one holder at a time; the other takes over only after a full lease duration without renewal', async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const store = new MemoryLeaseStore();
    const a = new LeaderElector({ store, identity: 'a', leaseDurationMs: 15_000, clock, log: silentLogger });
    const b = new LeaderElector({ store, identity: 'b', leaseDurationMs: 15_000, clock, log: silentLogger });
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(await b.tryAcquireOrRenew()).toBe(false);
    expect(a.isLeader(now)).toBe(true);
    expect(b.isLeader(now)).toBe(false);

    now += 5000;
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(await b.tryAcquireOrRenew()).toBe(false);
    // a stops renewing; b needs to see the same record unchanged for 15 s.
    now += 14_000;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    now += 1000;
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(store.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1, acquireTimeMs: now });
    // a acts no longer: its last write is older than two thirds of the duration, and its next round fails.
    expect(a.isLeader(now)).toBe(false);
    expect(await a.tryAcquireOrRenew()).toBe(false);
  });

  it('keeps acting through a brief API outage only until the renew deadline', async () => {
    let now = 0;
    const store = new MemoryLeaseStore();
    let errors = 0;
    const a = new LeaderElector({ store, identity: 'a', leaseDurationMs: 15_000, clock: { now: () => now }, log: silentLogger, onError: () => { errors++; } });
    expect(await a.tryAcquireOrRenew()).toBe(true);
    store.failing = true;
    now += 5000;
    expect(await a.tryAcquireOrRenew()).toBe(true);
    now += 5001;
    expect(await a.tryAcquireOrRenew()).toBe(false);
    expect(errors).toBe(2);
  });

  it('gives the lease up on release, so another instance takes it at once', async () => {
    let now = 0;
    const clock = { now: () => now };
    const store = new MemoryLeaseStore();
    const a = new LeaderElector({ store, identity: 'a', leaseDurationMs: 15_000, clock, log: silentLogger });
    const b = new LeaderElector({ store, identity: 'b', leaseDurationMs: 15_000, clock, log: silentLogger });
    await a.tryAcquireOrRenew();
    await a.release();
    expect(store.record?.holderIdentity).toBeNull();
    now += 10;
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(store.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    // Releasing when not the holder writes nothing.
    const before = store.record?.resourceVersion;
    await a.release();
    expect(store.record?.resourceVersion).toBe(before);
  });
});

describe('rollout detection', () => {
  const settled = { generation: 3, observedGeneration: 3, specReplicas: 4, replicas: 4, updatedReplicas: 4, readyReplicas: 4, availableReplicas: 4 };
  it('is settled only when the controller caught up and every replica is updated and ready', () => {
    expect(rolloutInProgress(settled)).toBe(false);
    expect(rolloutInProgress({ ...settled, observedGeneration: 2 })).toBe(true);
    expect(rolloutInProgress({ ...settled, updatedReplicas: 3 })).toBe(true);
    expect(rolloutInProgress({ ...settled, replicas: 5 })).toBe(true);
    expect(rolloutInProgress({ ...settled, readyReplicas: 3 })).toBe(true);
  });
});
