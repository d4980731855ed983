/**
 * Pod sandbox and container configs for tests and benchmarks that drive CRI directly, shaped as the kubelet
 * sends them (metadata, log directory under /var/log/pods, the pod cgroup under the node's cgroup root, and
 * upstream's namespace modes repeated on every container, without which a container joins the pause's PID
 * namespace).
 */
import { randomUUID } from "node:crypto";
import type { CriServices } from "../../kubelet/cri/services.ts";
import type { ContainerConfig, ContainerStatus, Input, PodSandboxConfig } from "../../kubelet/cri/types.ts";

export const POD_NAMESPACE_MODES = { network: "POD", pid: "CONTAINER", ipc: "POD" } as const;

export interface TestPod {
  uid: string;
  config: Input<PodSandboxConfig>;
  cgroupParent: string;
  logDir: string;
}

export function testPodConfig(node: { cgroupRoot: string }, name: string, namespace = "default", labels: Record<string, string> = {}): TestPod {
  const uid = randomUUID();
  const cgroupParent = `${node.cgroupRoot}/kubepods/besteffort/pod${uid}`;
  const logDir = `/var/log/pods/${namespace}_${name}_${uid}`;
  return {
    uid,
    cgroupParent,
    logDir,
    config: {
      metadata: { name, namespace, uid, attempt: 0 },
      hostname: name,
      log_directory: logDir,
      labels,
      linux: { cgroup_parent: cgroupParent, security_context: { namespace_options: POD_NAMESPACE_MODES } },
    },
  };
}

export function testContainerConfig(name: string, command: string[], extra: Partial<Input<ContainerConfig>> = {}): Input<ContainerConfig> {
  return {
    metadata: { name, attempt: 0 },
    image: { image: "localhost/busybox:1" },
    command,
    log_path: `${name}/0.log`,
    ...extra,
    linux: { ...(extra.linux ?? {}), security_context: { namespace_options: POD_NAMESPACE_MODES } },
  };
}

/**
 * What the runtime says about containers, for tests that judge the kubelet against it: "was this container
 * restarted?" is a question for CRI (its id and start time), not for the kubelet's own report.
 */
export interface CriContainerFact {
  id: string;
  podName: string;
  containerName: string;
  attempt: number;
  state: string;
  /** ns since the epoch, as CRI reports them (decimal strings). */
  startedAt: string;
  finishedAt: string;
  exitCode: number;
}

/** Every container CRI lists with these labels (e.g. `{ "io.kubernetes.pod.uid": uid }`), with its status. */
export async function criContainers(cri: Pick<CriServices, "runtime">, labels: Record<string, string> = {}): Promise<CriContainerFact[]> {
  const { containers } = await cri.runtime("ListContainers", { filter: { label_selector: labels } });
  const facts: CriContainerFact[] = [];
  for (const c of containers) {
    const { status } = await cri.runtime("ContainerStatus", { container_id: c.id });
    if (!status) continue;
    facts.push(factOf(status, c.labels));
  }
  return facts.sort((a, b) => `${a.podName}/${a.containerName}/${a.attempt}`.localeCompare(`${b.podName}/${b.containerName}/${b.attempt}`));
}

/** CRI's status of one container, given the API's `containerID` (`containerd://<id>`) or the bare id. */
export async function criContainer(cri: Pick<CriServices, "runtime">, containerID: string): Promise<CriContainerFact> {
  const id = containerID.replace(/^[a-z]+:\/\//, "");
  const { status } = await cri.runtime("ContainerStatus", { container_id: id });
  if (!status) throw new Error(`CRI has no status for container ${id}`);
  return factOf(status, status.labels);
}

function factOf(status: ContainerStatus, labels: Record<string, string>): CriContainerFact {
  return {
    id: status.id,
    podName: labels["io.kubernetes.pod.name"] ?? "",
    containerName: labels["io.kubernetes.container.name"] ?? status.metadata?.name ?? "",
    attempt: status.metadata?.attempt ?? 0,
    state: status.state,
    startedAt: status.started_at,
    finishedAt: status.finished_at,
    exitCode: status.exit_code,
  };
}

/** A CRI time (ns since the epoch) as the API writes a metav1.Time: RFC 3339, UTC, whole seconds. */
export function apiTimeOf(ns: string): string {
  const seconds = BigInt(ns) / 1_000_000_000n;
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}
