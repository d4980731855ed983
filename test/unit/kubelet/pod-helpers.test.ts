import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { isPodDeleting, isSidecar, podSandboxChanged, podsDifferSemantically, readinessGatesChanged, restartPolicy, shouldContainerBeRestarted } from "../../../kubelet/pod-helpers.ts";
import type { PodRuntimeStatus, RuntimeContainer, RuntimeSandbox } from "../../../kubelet/runtime/types.ts";

function pod(spec: Partial<NonNullable<V1Pod["spec"]>> = {}, deleted = false): V1Pod {
  return { metadata: { name: "p", namespace: "ns", uid: "u1", ...(deleted ? { deletionTimestamp: new Date(0) } : {}) }, spec: { containers: [{ name: "app" }], ...spec } };
}

function ctr(state: RuntimeContainer["state"], exitCode = 0): RuntimeContainer {
  return { id: "c", name: "app", attempt: 0, state, image: "i", imageRef: "sha256:i", hash: "h", createdAt: 1, startedAt: 1, finishedAt: state === "exited" ? 2 : 0, exitCode, reason: "", message: "", kind: "regular" };
}

function sandboxes(...s: Partial<RuntimeSandbox>[]): PodRuntimeStatus {
  return { uid: "u1", name: "p", namespace: "ns", containers: [], sandboxes: s.map((x, i) => ({ id: `sb${i}`, attempt: s.length - 1 - i, state: "ready", createdAt: 10 - i, ips: ["10.0.0.2"], ...x })) };
}

describe("restartPolicy and isSidecar", () => {
  it("defaults the restart policy to Always, as the API server does", () => {
    expect(restartPolicy(pod())).toBe("Always");
    expect(restartPolicy(pod({ restartPolicy: "Never" }))).toBe("Never");
    expect(restartPolicy(pod({ restartPolicy: "OnFailure" }))).toBe("OnFailure");
  });

  it("calls an init container with restartPolicy Always a sidecar, and nothing else", () => {
    expect(isSidecar({ name: "s", restartPolicy: "Always" })).toBe(true);
    expect(isSidecar({ name: "i" })).toBe(false);
  });

  it("tells a pod with a deletionTimestamp", () => {
    expect(isPodDeleting(pod({}, true))).toBe(true);
    expect(isPodDeleting(pod())).toBe(false);
  });
});

describe("shouldContainerBeRestarted (upstream container/helpers.go)", () => {
  const cases: [string, V1Pod, RuntimeContainer | undefined, boolean][] = [
    ["never ran", pod(), undefined, true],
    ["running", pod(), ctr("running"), false],
    ["unknown state", pod({ restartPolicy: "Never" }), ctr("unknown"), true],
    ["created but not started", pod({ restartPolicy: "Never" }), ctr("created"), true],
    ["exited 0 under Always", pod(), ctr("exited", 0), true],
    ["exited 0 under OnFailure", pod({ restartPolicy: "OnFailure" }), ctr("exited", 0), false],
    ["exited 1 under OnFailure", pod({ restartPolicy: "OnFailure" }), ctr("exited", 1), true],
    ["exited 1 under Never", pod({ restartPolicy: "Never" }), ctr("exited", 1), false],
    // The rule both sides now share: a pod being deleted restarts nothing, not even a never-run container.
    ["pod deleted, exited under Always", pod({}, true), ctr("exited", 1), false],
    ["pod deleted, never ran", pod({}, true), undefined, false],
  ];
  it.each(cases)("%s", (_name, p, latest, want) => {
    expect(shouldContainerBeRestarted(p, latest)).toBe(want);
  });
});

describe("podSandboxChanged (upstream kuberuntime_manager.go)", () => {
  it("needs a first sandbox at attempt 0 when there is none", () => {
    expect(podSandboxChanged(pod(), undefined)).toEqual({ changed: true, attempt: 0, sandboxId: "" });
  });

  it("keeps the newest ready sandbox with an IP", () => {
    expect(podSandboxChanged(pod(), sandboxes({}))).toEqual({ changed: false, attempt: 0, sandboxId: "sb0" });
  });

  it("needs the next attempt when the newest is not ready", () => {
    expect(podSandboxChanged(pod(), sandboxes({ state: "notready" }, {}))).toEqual({ changed: true, attempt: 2, sandboxId: "sb0" });
  });

  it("needs a new one when more than one sandbox is ready", () => {
    expect(podSandboxChanged(pod(), sandboxes({}, {})).changed).toBe(true);
  });

  it("needs a new one when a pod-network sandbox has no IP, but not for a host-network pod", () => {
    expect(podSandboxChanged(pod(), sandboxes({ ips: [] })).changed).toBe(true);
    expect(podSandboxChanged(pod({ hostNetwork: true }), sandboxes({ ips: [] })).changed).toBe(false);
  });
});

describe("podsDifferSemantically (which pod updates are synced)", () => {
  const base = (): V1Pod => ({
    metadata: { name: "web", uid: "u1", labels: { app: "web" }, annotations: { note: "a", "kubernetes.io/config.seen": "t1" }, resourceVersion: "1" },
    spec: { containers: [{ name: "c", image: "busybox" }] },
    status: { phase: "Pending" },
  });

  it("ignores status, resourceVersion and the sources' own annotations", () => {
    const next = base();
    next.status = { phase: "Running", podIP: "10.0.0.2" };
    next.metadata = { ...next.metadata, resourceVersion: "2", annotations: { note: "a", "kubernetes.io/config.seen": "t2" } };
    expect(podsDifferSemantically(base(), next)).toBe(false);
  });

  it("sees a change of spec, labels, annotations or deletion", () => {
    const spec = base();
    spec.spec = { containers: [{ name: "c", image: "busybox:2" }] };
    const labels = base();
    labels.metadata = { ...labels.metadata, labels: { app: "db" } };
    const annotations = base();
    annotations.metadata = { ...annotations.metadata, annotations: { note: "b" } };
    const deleted = base();
    deleted.metadata = { ...deleted.metadata, deletionTimestamp: new Date(0), deletionGracePeriodSeconds: 30 };
    for (const next of [spec, labels, annotations, deleted]) expect(podsDifferSemantically(base(), next)).toBe(true);
  });

  it("syncs a status-only update when a readiness gate's condition changed, and only then", () => {
    const gated = (status?: string): V1Pod => ({ ...base(), spec: { ...base().spec, containers: base().spec?.containers ?? [], readinessGates: [{ conditionType: "example.com/lb" }] }, status: { phase: "Running", conditions: status ? [{ type: "example.com/lb", status }] : [] } });
    expect(readinessGatesChanged(gated(), gated("True"))).toBe(true);
    expect(readinessGatesChanged(gated("True"), gated("True"))).toBe(false);
    expect(readinessGatesChanged(base(), { ...base(), status: { phase: "Running", conditions: [{ type: "example.com/lb", status: "True" }] } })).toBe(false);
  });
});
