/**
 * Rates of Prometheus counters between scrapes. A counter that is lower than at the previous scrape
 * belongs to a restarted process: its rate counts the new value from zero, as Prometheus' rate() does.
 */

interface Point { value: number; atMs: number }

export class CounterRates {
  private readonly last = new Map<string, Point>();

  /**
   * Records `value` of the counter `key` at `atMs` and returns its per-second rate since the previous
   * record, or null for the first record (or when no time has passed).
   */
  observe(key: string, value: number, atMs: number): number | null {
    const previous = this.last.get(key);
    this.last.set(key, { value, atMs });
    if (!previous || atMs <= previous.atMs) return null;
    const increase = value >= previous.value ? value - previous.value : value;
    return increase / ((atMs - previous.atMs) / 1000);
  }

  /** Forgets counters whose key is not in `keep` (pods that are gone), so memory stays bounded. */
  retainOnly(keep: (key: string) => boolean): void {
    for (const key of this.last.keys()) if (!keep(key)) this.last.delete(key);
  }

  get size(): number {
    return this.last.size;
  }
}
