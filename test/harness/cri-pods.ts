/**
 * Pod sandbox and container configs for tests and benchmarks that drive CRI directly, shaped as the kubelet
 * sends them (metadata, log directory under /var/log/pods, the pod cgroup under the node's cgroup root, and
 * upstream's namespace modes repeated on every container, without which a container joins the pause's PID
 * namespace).
 */
import { randomUUID } from "node:crypto";
import type { ContainerConfig, Input, PodSandboxConfig } from "../../kubelet/cri/types.ts";

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
