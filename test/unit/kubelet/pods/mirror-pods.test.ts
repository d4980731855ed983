/**
 * Mirror pods against a fake API: a mirror pod whose static pod no longer exists (its manifest removed while
 * the kubelet was down) is deleted with its uid as precondition; the mirror of an existing static pod stays.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../../../src-shared/log.ts";
import { ApiError, type KubeClient, type RequestOptions, type ResourceRef } from "../../../../src-shared/kube/client.ts";
import { MirrorPods } from "../../../../kubelet/pods/mirror-pods.ts";
import { FakeClock } from "../../../harness/fake-clock.ts";

/** The few calls MirrorPods makes, against an in-memory set of pods. */
class FakeApi {
  pods = new Map<string, V1Pod>();
  deletes: { name: string; uid: string | undefined }[] = [];
  get<T>(ref: ResourceRef): Promise<T> {
    const p = this.pods.get(ref.name ?? "");
    return p ? Promise.resolve(p as T) : Promise.reject(new ApiError(404, "GET", ref.name ?? "", { kind: "Status", reason: "NotFound" }, "not found"));
  }
  create<T>(_ref: ResourceRef, object: V1Pod): Promise<T> {
    const created = { ...object, metadata: { ...object.metadata, uid: `mirror-${object.metadata?.name ?? ""}` } };
    this.pods.set(object.metadata?.name ?? "", created);
    return Promise.resolve(created as T);
  }
  delete<T>(ref: ResourceRef, options?: { preconditions?: { uid?: string } }, _o?: RequestOptions): Promise<T> {
    this.deletes.push({ name: ref.name ?? "", uid: options?.preconditions?.uid });
    this.pods.delete(ref.name ?? "");
    return Promise.resolve({} as T);
  }
}

function mirror(name: string, uid: string): V1Pod {
  return { metadata: { name, namespace: "kube-system", uid, annotations: { "kubernetes.io/config.mirror": "hash", "kubernetes.io/config.source": "file" } } };
}

function staticPod(name: string, hash: string): V1Pod {
  return { metadata: { name, namespace: "kube-system", uid: hash, annotations: { "kubernetes.io/config.source": "file" } }, spec: { containers: [{ name: "c" }] } };
}

describe("MirrorPods", () => {
  it("deletes the mirror pods whose static pod is gone, keeps the others", async () => {
    const api = new FakeApi();
    const mirrors = new MirrorPods({ client: api as unknown as KubeClient, nodeName: "n1", logger: silentLogger(), nodeUid: () => "node-uid" });
    await mirrors.ensure(staticPod("kept-n1", "h1"));
    const kept = api.pods.get("kept-n1");
    expect(kept).toBeDefined();
    mirrors.observe(kept as V1Pod);
    mirrors.observe(mirror("orphan-n1", "m2"));
    expect(mirrors.orphans().map((p) => p.metadata?.name)).toEqual(["orphan-n1"]);
    expect(await mirrors.deleteOrphans()).toBe(1);
    expect(api.deletes).toEqual([{ name: "orphan-n1", uid: "m2" }]);
    expect(mirrors.orphans()).toEqual([]);
  });

  it("forgets a mirror pod the API removed: it is no orphan to delete any more", () => {
    const api = new FakeApi();
    const mirrors = new MirrorPods({ client: api as unknown as KubeClient, nodeName: "n1", logger: silentLogger(), nodeUid: () => "node-uid" });
    const m = mirror("orphan-n1", "m2");
    mirrors.observe(m);
    mirrors.forget(m);
    expect(mirrors.orphans()).toEqual([]);
  });

  it("retries a failed creation every second on its clock until it is made, and not after close()", async () => {
    const api = new FakeApi();
    const clock = new FakeClock();
    let nodeUid: string | undefined; // the Node is not registered yet: creation fails
    const mirrors = new MirrorPods({ client: api as unknown as KubeClient, nodeName: "n1", logger: silentLogger(), nodeUid: () => nodeUid, clock });
    mirrors.start(new AbortController().signal);
    await mirrors.ensure(staticPod("web-n1", "h1"));
    expect(api.pods.has("web-n1")).toBe(false);
    expect(clock.waiting).toBe(1);
    await clock.advance(1000);
    expect(api.pods.has("web-n1")).toBe(false); // still no Node: retried and failed again
    nodeUid = "node-uid";
    await clock.advance(1000);
    expect(api.pods.get("web-n1")?.metadata?.ownerReferences?.[0]?.uid).toBe("node-uid");
    expect(clock.waiting).toBe(0);

    nodeUid = undefined;
    await mirrors.ensure(staticPod("db-n1", "h2"));
    expect(clock.waiting).toBe(1);
    await mirrors.close();
    expect(clock.waiting).toBe(0);
    nodeUid = "node-uid";
    await clock.advance(5000);
    expect(api.pods.has("db-n1")).toBe(false);
  });
});
