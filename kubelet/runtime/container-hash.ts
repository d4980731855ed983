/**
 * A hash of what a container was created from, stored in its annotations: when the spec's hash differs from
 * the running container's, the kubelet restarts it (upstream's "Container spec hash changed").
 *
 * Like upstream since in-place resize, resources are left out (changing them must not restart the
 * container), and so is everything the API server defaults, by hashing only fields a user set. FNV-1a 32 of a
 * canonical JSON (sorted keys), printed in hex as upstream prints its uint64 in hex.
 */
import type { V1Container } from "@kubernetes/client-node";

function canonical(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
}

export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function containerHash(container: V1Container): string {
  const { resources: _resources, resizePolicy: _resizePolicy, ...rest } = container;
  return fnv1a32(canonical(rest)).toString(16);
}
