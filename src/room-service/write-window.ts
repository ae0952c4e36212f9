/**
 * Holds store writes that no client waits on for long (inbox acknowledgements) for a short window and
 * starts them together, so a window's commands reach Redis in one socket write instead of one each:
 * at chat rates, the writes and the wake-ups they cause in Redis are most of a message's cost.
 * Writes under the same key in one window are one write, of the last value asked for.
 */
export class WriteWindow<K, T> {
  private pending = new Map<K, { write: () => Promise<T>; waiters: Array<{ resolve(value: T): void; reject(error: unknown): void }> }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly windowMs: number) {}

  /** Runs `write` at the end of the window, unless a later write under `key` in the window replaces it. */
  run(key: K, write: () => Promise<T>): Promise<T> {
    return new Promise((resolve, reject) => {
      const entry = this.pending.get(key);
      if (entry) {
        entry.write = write;
        entry.waiters.push({ resolve, reject });
      } else {
        this.pending.set(key, { write, waiters: [{ resolve, reject }] });
      }
      this.timer ??= setTimeout(() => this.flush(), this.windowMs);
    });
  }

  /** Starts every held write now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const due = this.pending;
    this.pending = new Map();
    for (const { write, waiters } of due.values()) {
      write().then((value) => { for (const waiter of waiters) waiter.resolve(value); }, (error: unknown) => { for (const waiter of waiters) waiter.reject(error); });
    }
  }
}
