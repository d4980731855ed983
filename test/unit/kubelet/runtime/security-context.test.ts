import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { testNode } from "../../../harness/runtime-fixture.ts";
import { containerConfig, nonRootPolicy, verifyRunAsNonRoot } from "../../../../kubelet/runtime/container-config.ts";
import { sandboxConfig, seccompProfile, type NodeContext } from "../../../../kubelet/runtime/sandbox-config.ts";

const node: NodeContext = testNode();

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

describe("runAsNonRoot as upstream's verifyRunAsNonRoot", () => {
  const nonRoot = (podRunAs?: number, containerRunAs?: number): V1Pod => ({
    metadata: { name: "p", namespace: "default", uid: "u1" },
    spec: {
      securityContext: { runAsNonRoot: true, ...(podRunAs !== undefined ? { runAsUser: podRunAs } : {}) },
      containers: [{ name: "main", image: "busybox", ...(containerRunAs !== undefined ? { securityContext: { runAsUser: containerRunAs } } : {}) }],
    },
  });
  const check = (p: V1Pod, user?: { uid: number } | { username: string }) => () => verifyRunAsNonRoot(p, p.spec!.containers[0]!, user);

  it("refuses a runAsUser of 0, and lets any other uid through without asking the image", () => {
    expect(check(nonRoot(0))).toThrow(`container's runAsUser breaks non-root policy (pod: "p_default(u1)", container: main)`);
    expect(check(nonRoot(0, 1000))).not.toThrow();
    expect(check(nonRoot(undefined, 1000))).not.toThrow();
  });

  it("judges by the image's user when the pod sets none: root and a bare name are refused", () => {
    expect(check(nonRoot(), { uid: 0 })).toThrow(`container has runAsNonRoot and image will run as root (pod: "p_default(u1)", container: main)`);
    expect(check(nonRoot(), { username: "app" })).toThrow("container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root");
    expect(check(nonRoot(), { uid: 65534 })).not.toThrow();
  });

  it("asks nothing of a pod without runAsNonRoot, and the container's false overrides the pod's true", () => {
    expect(nonRootPolicy(pod(), pod().spec!.containers[0]!)).toEqual({ runAsNonRoot: false, runAsUser: undefined });
    const p = nonRoot();
    p.spec!.containers[0]!.securityContext = { runAsNonRoot: false };
    expect(check(p, { uid: 0 })).not.toThrow();
  });
});
