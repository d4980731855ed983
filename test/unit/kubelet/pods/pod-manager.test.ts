/**
 * The pod manager's pieces: admission after a restart in creation-time order (a source's first full list is
 * held and handed over oldest first, as upstream's HandlePodAdditions sorts), and one forget per pod.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { InitialBatch, PodManager, byCreationTime } from "../../../../kubelet/pods/pod-manager.ts";
import { admitPod } from "../../../../kubelet/admission.ts";

function pod(name: string, created?: string, cpu = "1"): V1Pod {
  return {
    metadata: { name, namespace: "default", uid: `uid-${name}`, ...(created ? { creationTimestamp: new Date(created) } : {}) },
    spec: { containers: [{ name: "c", resources: { requests: { cpu } } }] },
  };
}

describe("InitialBatch", () => {
  it("holds a source's first list and releases it oldest first, whatever the list order", () => {
    const batch = new InitialBatch();
    for (const p of [pod("c", "2026-01-03T00:00:00Z"), pod("a", "2026-01-01T00:00:00Z"), pod("static"), pod("b", "2026-01-02T00:00:00Z")]) expect(batch.hold(p)).toBe(true);
    expect(batch.release().map((p) => p.metadata?.name)).toEqual(["static", "a", "b", "c"]);
    expect(batch.open).toBe(false);
    expect(batch.hold(pod("d"))).toBe(false);
  });

  it("keeps the latest version of a held pod and drops one deleted before the release", () => {
    const batch = new InitialBatch();
    batch.hold(pod("a", "2026-01-01T00:00:00Z"));
    batch.hold({ ...pod("a", "2026-01-01T00:00:00Z"), status: { phase: "Running" } });
    batch.hold(pod("b", "2026-01-02T00:00:00Z"));
    expect(batch.drop("uid-b")).toBe(true);
    expect(batch.drop("uid-zz")).toBe(false);
    expect(batch.release()).toEqual([{ ...pod("a", "2026-01-01T00:00:00Z"), status: { phase: "Running" } }]);
  });

  it("makes admission on a full node refuse the newest pods, not those listed last", () => {
    // Two CPUs: of three one-CPU pods listed newest first, the two oldest are admitted.
    const batch = new InitialBatch();
    for (const p of [pod("new", "2026-01-03T00:00:00Z"), pod("old", "2026-01-01T00:00:00Z"), pod("mid", "2026-01-02T00:00:00Z")]) batch.hold(p);
    const admitted: V1Pod[] = [];
    const refused: string[] = [];
    for (const p of batch.release()) {
      if (admitPod(p, admitted, { cpuMilli: 2000, memoryBytes: 1 << 30, pods: 110 }).admit) admitted.push(p);
      else refused.push(p.metadata?.name ?? "");
    }
    expect(admitted.map((p) => p.metadata?.name)).toEqual(["old", "mid"]);
    expect(refused).toEqual(["new"]);
  });
});

describe("byCreationTime", () => {
  it("accepts the API's string timestamps as well as dates", () => {
    const a = { metadata: { creationTimestamp: "2026-01-02T00:00:00Z" } } as unknown as V1Pod;
    const b = pod("b", "2026-01-01T00:00:00Z");
    expect([a, b].sort(byCreationTime)).toEqual([b, a]);
  });
});

describe("PodManager", () => {
  it("forgets what it knows of a pod, desired and refused alike", () => {
    const m = new PodManager();
    m.set(pod("a"));
    m.reject("uid-a");
    m.forgetPod("uid-a");
    expect(m.has("uid-a")).toBe(false);
    expect(m.isRejected("uid-a")).toBe(false);
  });
});
