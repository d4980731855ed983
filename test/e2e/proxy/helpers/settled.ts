/**
 * Waits until a Proxier has synced what it was just told: a sync completes after the call, nothing is left
 * pending and no sync runs. Call it right after the changes, with no await in between: the proxier queues a
 * sync for them on a timer ("nothing pending" alone could be read before that sync has even started), and a
 * sync that completed before the call does not count.
 */
import { expect } from "vitest";
import type { Proxier } from "../../../../proxy/proxier.ts";
import { eventually } from "../../../harness/wait.ts";

export async function settled(proxier: Proxier, timeoutMs = 15_000): Promise<void> {
  let synced = false;
  const off = proxier.onSync(() => (synced = true));
  try {
    await eventually(() => synced && proxier.pendingChanges === 0 && !proxier.syncInProgress, { timeoutMs, intervalMs: 20, message: "the proxier to settle" });
  } finally {
    off();
  }
  expect(proxier.lastSync?.ok, proxier.lastSync?.error).toBe(true);
}
