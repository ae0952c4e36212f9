/**
 * Waiting for events instead of sleeping: a latch resolves after `count` calls to `countDown()` and
 * rejects when `timeoutMs` passes first, saying how many events it still waited for.
 */
export class Latch {
  private remaining: number;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(count: number, private readonly label = 'latch') {
    this.remaining = count;
    this.done = new Promise((resolve) => { this.resolveDone = resolve; });
    if (count <= 0) this.resolveDone();
  }

  countDown(by = 1): void {
    if (this.remaining <= 0) return;
    this.remaining -= by;
    if (this.remaining <= 0) this.resolveDone();
  }

  get pending(): number {
    return Math.max(0, this.remaining);
  }

  async wait(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.label}: still waiting for ${this.pending} event(s) after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Polls `check` until it returns a truthy value (for state observed from outside, such as a server's monitoring endpoint). */
export async function eventually<T>(check: () => T | Promise<T>, options: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${options.what ?? 'condition'} not met in time (last: ${String(last)})`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 25));
  }
}
