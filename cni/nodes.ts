/**
 * What the node-side components of cni/ need from the Kubernetes API: Node objects (the subset of fields they
 * read, so the kubelet can pass the objects of @kubernetes/client-node as they are) and a level-triggered watch.
 */
import { systemClock, type Clock } from "../src-shared/clock.ts";

export interface NodeAddressLike {
  type: string;
  address: string;
}

export interface NodeLike {
  metadata?: { name?: string };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
  status?: { addresses?: NodeAddressLike[] };
}

/**
 * Calls `onNodes` with the complete current list of Nodes, at once and whenever it changes (an informer's
 * cache), until `signal` aborts; resolves then. Rejects when the watch fails; callers retry.
 */
export type WatchNodes = (signal: AbortSignal, onNodes: (nodes: readonly NodeLike[]) => void) => Promise<void>;

export function nodeName(node: NodeLike): string {
  return node.metadata?.name ?? "";
}

/** spec.podCIDRs, else spec.podCIDR (older API servers set only that). */
export function podCidrsOf(node: NodeLike): string[] {
  const list = node.spec?.podCIDRs?.filter(Boolean) ?? [];
  if (list.length > 0) return list;
  return node.spec?.podCIDR ? [node.spec.podCIDR] : [];
}

export function internalIpsOf(node: NodeLike): string[] {
  return (node.status?.addresses ?? []).filter((a) => a.type === "InternalIP").map((a) => a.address);
}

/** Retries `watch` with capped exponential backoff until `signal` aborts. */
export async function watchForever(
  watch: WatchNodes,
  signal: AbortSignal,
  onNodes: (nodes: readonly NodeLike[]) => void,
  onError: (err: unknown, retryInMs: number) => void,
  clock: Clock = systemClock,
): Promise<void> {
  let delay = 500;
  while (!signal.aborted) {
    try {
      await watch(signal, (nodes) => {
        delay = 500;
        onNodes(nodes);
      });
      if (signal.aborted) return;
    } catch (err) {
      if (signal.aborted) return;
      onError(err, delay);
    }
    // The clock's sleep clears its timer and its abort listener either way (no listener left per retry).
    await clock.sleep(delay, signal).catch(() => undefined);
    delay = Math.min(delay * 2, 30_000);
  }
}
