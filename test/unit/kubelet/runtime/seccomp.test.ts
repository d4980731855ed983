import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { containerConfig } from "../../../../kubelet/runtime/container-config.ts";
import { sandboxConfig, seccompProfile, type NodeContext } from "../../../../kubelet/runtime/sandbox-config.ts";

const node: NodeContext = {
  nodeName: "node-1",
  cgroupRoot: "/",
  podLogsDir: "/var/log/pods",
  clusterDNS: [],
  clusterDomain: "cluster.local",
  hostDNS: { servers: [], searches: [], options: [] },
  hostIPs: ["10.0.0.1"],
  memoryCapacityBytes: 1024 ** 3,
  cpuCFSQuota: true,
  cpuCFSQuotaPeriodUs: 100_000,
};

function pod(podType?: string, containerType?: string): V1Pod {
  return {
    metadata: { name: "p", namespace: "default", uid: "u1" },
    spec: {
      ...(podType ? { securityContext: { seccompProfile: { type: podType } } } : {}),
      containers: [{ name: "main", image: "busybox", ...(containerType ? { securityContext: { seccompProfile: { type: containerType } } } : {}) }],
    },
  };
}

describe("seccomp profiles as upstream's getSeccompProfile (seccompDefault off)", () => {
  it("sends Unconfined explicitly when nothing asks for a profile", () => {
    expect(seccompProfile(pod())).toEqual({ profile_type: "Unconfined" });
  });

  it("takes the container's profile over the pod's, and the pod's when the container has none", () => {
    expect(seccompProfile(pod("RuntimeDefault"), pod("RuntimeDefault").spec?.containers[0])).toEqual({ profile_type: "RuntimeDefault" });
    const p = pod("RuntimeDefault", "Unconfined");
    expect(seccompProfile(p, p.spec?.containers[0])).toEqual({ profile_type: "Unconfined" });
    const q = pod("Unconfined", "RuntimeDefault");
    expect(seccompProfile(q, q.spec?.containers[0])).toEqual({ profile_type: "RuntimeDefault" });
  });

  it("puts the pod's profile on the sandbox and the effective one on each container", () => {
    const p = pod("RuntimeDefault", "Unconfined");
    expect(sandboxConfig(p, 0, node).linux?.security_context?.seccomp).toEqual({ profile_type: "RuntimeDefault" });
    const c = containerConfig({ pod: p, container: p.spec!.containers[0]!, kind: "regular", restartCount: 0, image: "busybox", node, facts: { podIPs: [] } });
    expect(c.linux?.security_context?.seccomp).toEqual({ profile_type: "Unconfined" });
  });
});
