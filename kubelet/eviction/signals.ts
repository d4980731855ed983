/**
 * The eviction signals from the node's and pods' statistics, as upstream's makeSignalObservations
 * (pkg/kubelet/eviction/helpers.go):
 *
 *   memory.available             node capacity − node working set (the root cgroup)
 *   allocatableMemory.available  the pods cgroup's (`kubepods`) limit − its working set; while nothing puts a limit on
 *                                kubepods (node allocatable not enforced), capacity − kube/system reserved − working
 *                                set: the same figure the enforced limit would give
 *   nodefs.*                     statfs of the kubelet's root dir: available bytes, free inodes
 *   imagefs.*                    statfs of the image store (the nodefs figures when they share a device)
 *   containerfs.*                the nodefs figures (containers' writable layers live with the images here, on
 *                                the node's filesystem unless imagefs is dedicated: then imagefs)
 *   pid.available                pid_max − processes running
 *
 * Pure: the figures come in, the observations go out.
 */
import type { Observation, Signal } from "./thresholds.ts";

export interface FsFigures {
  availableBytes: number;
  capacityBytes: number;
  inodesFree?: number;
  inodes?: number;
}

/** What the signals are computed from. Absent parts give no observation (that signal is not evaluated). */
export interface NodeFigures {
  timeMs: number;
  memoryCapacityBytes: number;
  /** The root cgroup's working set. */
  nodeWorkingSetBytes?: number;
  /** The pods cgroup's working set and limit (undefined: none). */
  podsWorkingSetBytes?: number;
  podsLimitBytes?: number;
  /** Capacity − kube/system reserved memory: the pods cgroup's limit when allocatable is enforced. */
  allocatableMemoryBytes?: number;
  nodeFs?: FsFigures;
  imageFs?: FsFigures;
  /** Whether the image store is on another device than the kubelet's root dir. */
  dedicatedImageFs?: boolean;
  maxPid?: number;
  processes?: number;
}

export function makeSignalObservations(f: NodeFigures): Map<Signal, Observation> {
  const out = new Map<Signal, Observation>();
  const put = (signal: Signal, available: number, capacity: number): void => {
    out.set(signal, { available, capacity, timeMs: f.timeMs });
  };
  if (f.nodeWorkingSetBytes !== undefined) {
    const available = Math.max(0, f.memoryCapacityBytes - f.nodeWorkingSetBytes);
    put("memory.available", available, available + f.nodeWorkingSetBytes);
  }
  if (f.podsWorkingSetBytes !== undefined) {
    const limit = f.podsLimitBytes ?? f.allocatableMemoryBytes;
    if (limit !== undefined) {
      const available = Math.max(0, limit - f.podsWorkingSetBytes);
      put("allocatableMemory.available", available, available + f.podsWorkingSetBytes);
    }
  }
  const fs = (prefix: "nodefs" | "imagefs" | "containerfs", figures: FsFigures | undefined): void => {
    if (!figures) return;
    put(`${prefix}.available`, figures.availableBytes, figures.capacityBytes);
    if (figures.inodesFree !== undefined && figures.inodes !== undefined) put(`${prefix}.inodesFree`, figures.inodesFree, figures.inodes);
  };
  fs("nodefs", f.nodeFs);
  fs("imagefs", f.imageFs ?? f.nodeFs);
  fs("containerfs", f.dedicatedImageFs ? f.imageFs : f.nodeFs);
  if (f.maxPid !== undefined && f.processes !== undefined) put("pid.available", f.maxPid - f.processes, f.maxPid);
  return out;
}

/** Memory available for a signal from one memory cgroup reading (the fast watch, see memory-watch.ts). */
export function memoryAvailable(capacityBytes: number, workingSetBytes: number): number {
  return Math.max(0, capacityBytes - workingSetBytes);
}
