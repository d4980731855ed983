/**
 * Runs `fn` over `items` with at most `limit` calls in flight, in the items' order of start; resolves once all
 * have settled, rejecting with the first failure (the others still run to their end, as Promise.all would leave
 * them). For fan-outs that must not flood one server (the runtime, the API) with one call per pod at once.
 */
export async function forEachConcurrently<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
}

/**
 * Work in flight, for a close() that drains: `track` each piece of work, then `idle` resolves once none is left
 * (true) or after `timeoutMs` (false), without polling and without leaving its timer behind.
 */
export class InFlight {
  private count = 0;
  private readonly waiters = new Set<() => void>();

  get size(): number {
    return this.count;
  }

  track<T>(work: Promise<T>): Promise<T> {
    this.count++;
    return work.finally(() => {
      if (--this.count > 0) return;
      for (const w of [...this.waiters]) w();
    });
  }

  idle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (drained: boolean): void => {
        clearTimeout(timer);
        this.waiters.delete(onIdle);
        resolve(drained);
      };
      const onIdle = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.waiters.add(onIdle);
    });
  }
}
