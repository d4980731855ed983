/**
 * Pod-level cgroups with the cgroupfs driver, laid out as upstream: `<cgroupRoot>/kubepods/pod<uid>` for
 * Guaranteed pods, `<cgroupRoot>/kubepods/{burstable,besteffort}/pod<uid>` for the others. The kubelet creates
 * them with the pod's limits (pod-resources.ts podResourceConfig) before the sandbox, and removes them after the
 * pod: containerd never does. A new pod cgroup first has the QoS cgroups updated (upstream's syncPod calls
 * UpdateQOSCgroups when the pod's cgroup does not exist yet), and so does a removal.
 */
import { removeCgroupTree } from "../../src-shared/cgroups.ts";
import type { Logger } from "../../src-shared/log.ts";
import type { QOSClass } from "../qos.ts";
import { Cgroupfs } from "./cgroupfs.ts";
import type { PodResourceConfig } from "./pod-resources.ts";

export function qosCgroupPath(cgroupRoot: string, qos: QOSClass): string {
  const root = cgroupRoot === "/" ? "" : cgroupRoot.replace(/\/$/, "");
  if (qos === "Guaranteed") return `${root}/kubepods`;
  return `${root}/kubepods/${qos.toLowerCase()}`;
}

export function podCgroupPath(cgroupRoot: string, qos: QOSClass, uid: string): string {
  return `${qosCgroupPath(cgroupRoot, qos)}/pod${uid}`;
}

/** What the runtime manager needs of pod cgroups (an in-memory stand-in in unit tests). */
export interface PodCgroups {
  /** Creates (or updates the limits of) the pod's cgroup; returns its path below the hierarchies. */
  ensure(uid: string, qos: QOSClass, resources: PodResourceConfig): Promise<string>;
  /** Removes the pod's cgroup wherever it is. */
  remove(uid: string, signal?: AbortSignal): Promise<void>;
}

/** The QoS cgroups' part the pod cgroups call on (qos-cgroups.ts). */
export interface QosCgroupUpdates {
  update(): Promise<void>;
}

export class PodCgroupManager implements PodCgroups {
  private readonly cgroupRoot: string;
  private readonly fs: Cgroupfs;
  private readonly qos: QosCgroupUpdates | undefined;

  constructor(options: { cgroupRoot: string; logger?: Logger; fs?: Cgroupfs; qos?: QosCgroupUpdates }) {
    this.cgroupRoot = options.cgroupRoot;
    this.fs = options.fs ?? new Cgroupfs(options.logger ? { logger: options.logger } : {});
    this.qos = options.qos;
  }

  /** Creates (or updates the limits of) the pod's cgroup in every hierarchy. */
  async ensure(uid: string, qos: QOSClass, resources: PodResourceConfig): Promise<string> {
    const path = podCgroupPath(this.cgroupRoot, qos, uid);
    if (this.qos && !(await this.fs.exists(path))) await this.qos.update();
    await this.fs.ensure(path, resources);
    return path;
  }

  /** Removes the pod's cgroup wherever it is (its QoS class may have been any). */
  async remove(uid: string, signal?: AbortSignal): Promise<void> {
    const hierarchies = await this.fs.all();
    await Promise.all((["Guaranteed", "Burstable", "BestEffort"] as const).map((qos) => removeCgroupTree(podCgroupPath(this.cgroupRoot, qos, uid), hierarchies, signal)));
    await this.qos?.update();
  }
}
