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
