/**
 * Run `work(item, i)` over `items` with at most `limit` calls in flight, in
 * start order. The first rejection is rethrown after the running calls
 * settle, so no decode is left writing into a buffer the caller reuses.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, work: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  let error: unknown;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        await work(items[i], i);
      } catch (e) {
        if (!failed) error = e;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw error;
}
