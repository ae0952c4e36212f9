/**
 * A small typed event emitter that runs in browsers and Node. Listener lists are copied on change,
 * never on emit, so emitting allocates nothing and a listener may add or remove listeners safely.
 */

/** Event name → the arguments its listeners receive. */
export type EventMap<Events> = { [K in keyof Events]: unknown[] };
export type Listener<Args extends unknown[]> = (...args: Args) => void;

export class Emitter<Events extends EventMap<Events>> {
  private readonly listeners: { [K in keyof Events]?: ReadonlyArray<Listener<Events[K]>> } = {};

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): this {
    this.listeners[event] = [...(this.listeners[event] ?? []), listener];
    return this;
  }

  /** Removes one registration of `listener` (the latest one when it was added twice). */
  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): this {
    const current = this.listeners[event];
    if (!current) return this;
    const index = current.lastIndexOf(listener);
    if (index < 0) return this;
    const next = current.slice();
    next.splice(index, 1);
    if (next.length === 0) delete this.listeners[event];
    else this.listeners[event] = next;
    return this;
  }

  listenerCount<K extends keyof Events>(event: K): number {
    return this.listeners[event]?.length ?? 0;
  }

  /**
   * Calls every listener of `event`. A listener that throws does not stop the others nor the caller:
   * its error is rethrown from a microtask, where the platform reports it as uncaught.
   */
  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    const current = this.listeners[event];
    if (!current) return;
    for (const listener of current) {
      try {
        listener(...args);
      } catch (error) {
        queueMicrotask(() => { throw error; });
      }
    }
  }
}
