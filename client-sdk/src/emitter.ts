/** A minimal typed event emitter that works in Node and browsers (no node:events in the browser entry). */
export class Emitter<Events extends Record<string, (arg: any) => void>> {
  private handlers = new Map<keyof Events, Set<(arg: any) => void>>();

  on<K extends keyof Events>(event: K, fn: Events[K]): this {
    let s = this.handlers.get(event);
    if (!s) this.handlers.set(event, (s = new Set()));
    s.add(fn);
    return this;
  }

  off<K extends keyof Events>(event: K, fn: Events[K]): this {
    this.handlers.get(event)?.delete(fn);
    return this;
  }

  /** Handlers run synchronously; one that throws does not stop the others. */
  protected emit<K extends keyof Events>(event: K, arg: Parameters<Events[K]>[0]): void {
    for (const fn of this.handlers.get(event) ?? []) {
      try {
        fn(arg);
      } catch {
        // a listener's failure is the listener's business
      }
    }
  }
}
