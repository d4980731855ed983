/**
 * The downward API's values, one home for env (`valueFrom.fieldRef` / `resourceFieldRef`) and downwardAPI volumes
 * (upstream's fieldpath.ExtractFieldPathAsString and resource.ExtractContainerResourceValue). Each caller adds
 * what only it supports (env: spec.nodeName, status.*; volumes: whole label and annotation maps) and its errors.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { quantityAsFloat } from "../src-shared/quantity.ts";

/** metadata.name / namespace / uid, and one label or annotation (`metadata.labels['k']`); undefined: another path. */
export function podMetadataField(pod: V1Pod, fieldPath: string): string | undefined {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m) return (m[1] === "labels" ? pod.metadata?.labels : pod.metadata?.annotations)?.[m[2] ?? ""] ?? "";
  switch (fieldPath) {
    case "metadata.name":
      return pod.metadata?.name ?? "";
    case "metadata.namespace":
      return pod.metadata?.namespace ?? "";
    case "metadata.uid":
      return pod.metadata?.uid ?? "";
    default:
      return undefined;
  }
}

/** What a limit the container does not set stands for: the node's (upstream: allocatable; here capacity). */
export interface NodeCapacity {
  memoryBytes: number;
  cpuMilli: number;
}

/**
 * A container's `limits.<r>` or `requests.<r>` divided by `divisor` and rounded up, as upstream; a limit it does
 * not set is the node's capacity for cpu and memory. Undefined: not a `limits.`/`requests.` resource.
 */
export function containerResourceValue(container: V1Container, resource: string, divisor: string | number | undefined, node: NodeCapacity): string | undefined {
  const [kind, name] = resource.split(".") as [string, string | undefined];
  if ((kind !== "limits" && kind !== "requests") || name === undefined) return undefined;
  const source = (kind === "limits" ? container.resources?.limits : container.resources?.requests) as Record<string, string | number> | undefined;
  const raw = source?.[name];
  let value = raw === undefined ? undefined : quantityAsFloat(raw);
  if (value === undefined && kind === "limits") value = name === "memory" ? node.memoryBytes : name === "cpu" ? node.cpuMilli / 1000 : undefined;
  const div = divisor === undefined || divisor === "" ? 1 : quantityAsFloat(divisor) || 1;
  return String(Math.ceil((value ?? 0) / div));
}
