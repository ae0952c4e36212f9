/**
 * A multimap that keeps a key's lone value as itself and makes a Set only for a key with several. On
 * a gateway most keys have one value (a uid one connection, a connection one room), and a Set costs
 * about 170 bytes: once per idle connection, that was a large share of what a connection costs.
 * Values must not be Sets themselves.
 */
export class CompactMultimap<K, V> {
  private readonly entries = new Map<K, V | Set<V>>();

  add(key: K, value: V): void {
    const present = this.entries.get(key);
    if (present === undefined) this.entries.set(key, value);
    else if (present instanceof Set) present.add(value);
    else if (present !== value) this.entries.set(key, new Set([present, value]));
  }

  /** Removes one value of `key`; false when the key did not have it. */
  delete(key: K, value: V): boolean {
    const present = this.entries.get(key);
    if (present === value) {
      this.entries.delete(key);
      return true;
    }
    if (!(present instanceof Set) || !present.delete(value)) return false;
    if (present.size === 1) this.entries.set(key, present.values().next().value as V);
    return true;
  }

  has(key: K, value: V): boolean {
    const present = this.entries.get(key);
    return present instanceof Set ? present.has(value) : present !== undefined && present === value;
  }

  count(key: K): number {
    const present = this.entries.get(key);
    return present === undefined ? 0 : present instanceof Set ? present.size : 1;
  }

  /** The values of `key`, copied: the caller may add and delete while it goes through them. */
  valuesOf(key: K): V[] {
    const present = this.entries.get(key);
    return present === undefined ? [] : present instanceof Set ? [...present] : [present];
  }

  /** Calls `visit` with each value of `key`, without a copy; `visit` must not change the key's values. */
  forEach(key: K, visit: (value: V) => void): void {
    const present = this.entries.get(key);
    if (present instanceof Set) for (const value of present) visit(value);
    else if (present !== undefined) visit(present);
  }
}
