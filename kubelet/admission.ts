/**
 * Pod admission, the resource part of upstream's predicate admit handler (pkg/kubelet/lifecycle/predicate.go):
 * a pod whose requests do not fit the node's allocatable beside the pods already admitted is rejected, never
 * run, and fails with reason `OutOf<resource>` and upstream's message. Pure.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { milliValue, quantityValue } from "../src-shared/quantity.ts";
import { isSidecar } from "./pod-helpers.ts";

export interface Allocatable {
  cpuMilli: number;
  memoryBytes: number;
  pods: number;
}

export type AdmitResult = { admit: true } | { admit: false; reason: string; message: string };

/** Effective requests as the scheduler counts them: max(sum of app containers, largest init container). */
export function podRequests(pod: V1Pod): { cpuMilli: number; memoryBytes: number } {
  const sum = { cpuMilli: 0, memoryBytes: 0 };
  const of = (c: { resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> } }): { cpuMilli: number; memoryBytes: number } => {
    const req = (c.resources?.requests ?? {}) as Record<string, string | number>;
    const lim = (c.resources?.limits ?? {}) as Record<string, string | number>;
    const cpu = req["cpu"] ?? lim["cpu"];
    const mem = req["memory"] ?? lim["memory"];
    return { cpuMilli: cpu === undefined ? 0 : milliValue(cpu), memoryBytes: mem === undefined ? 0 : quantityValue(mem) };
  };
  let sidecars = { cpuMilli: 0, memoryBytes: 0 };
  let initMax = { cpuMilli: 0, memoryBytes: 0 };
  for (const c of pod.spec?.initContainers ?? []) {
    const r = of(c);
    if (isSidecar(c)) {
      sidecars = { cpuMilli: sidecars.cpuMilli + r.cpuMilli, memoryBytes: sidecars.memoryBytes + r.memoryBytes };
    } else {
      initMax = { cpuMilli: Math.max(initMax.cpuMilli, sidecars.cpuMilli + r.cpuMilli), memoryBytes: Math.max(initMax.memoryBytes, sidecars.memoryBytes + r.memoryBytes) };
    }
  }
  for (const c of pod.spec?.containers ?? []) {
    const r = of(c);
    sum.cpuMilli += r.cpuMilli;
    sum.memoryBytes += r.memoryBytes;
  }
  sum.cpuMilli += sidecars.cpuMilli;
  sum.memoryBytes += sidecars.memoryBytes;
  const overhead = (pod.spec?.overhead ?? {}) as Record<string, string | number>;
  return {
    cpuMilli: Math.max(sum.cpuMilli, initMax.cpuMilli) + (overhead["cpu"] === undefined ? 0 : milliValue(overhead["cpu"])),
    memoryBytes: Math.max(sum.memoryBytes, initMax.memoryBytes) + (overhead["memory"] === undefined ? 0 : quantityValue(overhead["memory"])),
  };
}

/** Whether `pod` fits beside `admitted` (the active pods already running or accepted on this node). */
export function admitPod(pod: V1Pod, admitted: readonly V1Pod[], allocatable: Allocatable): AdmitResult {
  let used;
  try {
    used = admitted.reduce(
      (acc, p) => {
        const r = podRequests(p);
        return { cpuMilli: acc.cpuMilli + r.cpuMilli, memoryBytes: acc.memoryBytes + r.memoryBytes };
      },
      { cpuMilli: 0, memoryBytes: 0 },
    );
  } catch {
    used = { cpuMilli: 0, memoryBytes: 0 };
  }
  let want;
  try {
    want = podRequests(pod);
  } catch (err) {
    return { admit: false, reason: "UnexpectedAdmissionError", message: `Pod was rejected: ${err instanceof Error ? err.message : String(err)}` };
  }
  const checks: [string, number, number, number][] = [
    ["pods", 1, admitted.length, allocatable.pods],
    ["cpu", want.cpuMilli, used.cpuMilli, allocatable.cpuMilli],
    ["memory", want.memoryBytes, used.memoryBytes, allocatable.memoryBytes],
  ];
  for (const [name, requested, inUse, capacity] of checks) {
    if (requested > 0 && inUse + requested > capacity) {
      return {
        admit: false,
        reason: `OutOf${name}`,
        message: `Pod was rejected: Node didn't have enough resource: ${name}, requested: ${requested}, used: ${inUse}, capacity: ${capacity}`,
      };
    }
  }
  return { admit: true };
}
