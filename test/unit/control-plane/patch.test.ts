import { describe, expect, it } from "vitest";
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, createTwoWayMergePatch, patchMetaFor } from "../../control-plane/patch.ts";
import { ApiError } from "../../control-plane/status.ts";

describe("JSON patch (RFC 6902)", () => {
  const doc = { metadata: { labels: { a: "1" } }, spec: { list: [1, 2, 3] } };
  it("applies add, remove, replace, move, copy and test", () => {
    const out = applyJsonPatch(doc, [
      { op: "add", path: "/metadata/labels/b", value: "2" },
      { op: "add", path: "/spec/list/-", value: 4 },
      { op: "add", path: "/spec/list/0", value: 0 },
      { op: "remove", path: "/spec/list/1" },
      { op: "replace", path: "/metadata/labels/a", value: "x" },
      { op: "copy", from: "/metadata/labels/a", path: "/metadata/labels/c" },
      { op: "move", from: "/metadata/labels/b", path: "/metadata/labels/d" },
      { op: "test", path: "/metadata/labels/d", value: "2" },
      { op: "add", path: "/metadata/labels/e~1f", value: "slash" },
    ]);
    expect(out).toEqual({ metadata: { labels: { a: "x", c: "x", d: "2", "e/f": "slash" } }, spec: { list: [0, 2, 3, 4] } });
    expect(doc.metadata.labels).toEqual({ a: "1" });
  });
  it("fails a test or a missing path with 422", () => {
    for (const ops of [[{ op: "test", path: "/metadata/labels/a", value: "2" }], [{ op: "remove", path: "/nope" }], [{ op: "replace", path: "/spec/list/9", value: 1 }]]) {
      let err: unknown;
      try {
        applyJsonPatch(doc, ops);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe(422);
    }
  });
});

describe("JSON merge patch (RFC 7386)", () => {
  it("merges objects, deletes with null and replaces lists", () => {
    expect(applyMergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { a: null, b: { c: null, e: 4 }, l: [3] })).toEqual({ b: { d: 3, e: 4 }, l: [3] });
  });
  it("RFC 7386 appendix examples", () => {
    expect(applyMergePatch({ a: "b" }, { a: "c" })).toEqual({ a: "c" });
    expect(applyMergePatch({ a: [{ b: "c" }] }, { a: [1] })).toEqual({ a: [1] });
    expect(applyMergePatch(["a", "b"], ["c", "d"])).toEqual(["c", "d"]);
    expect(applyMergePatch({ a: "foo" }, "bar")).toEqual("bar");
    expect(applyMergePatch({ e: null }, { a: 1 })).toEqual({ e: null, a: 1 });
  });
});

describe("strategic merge patch", () => {
  const pod = patchMetaFor("Pod");
  const node = patchMetaFor("Node");
  const status = {
    status: {
      phase: "Pending",
      conditions: [
        { type: "PodScheduled", status: "True" },
        { type: "Ready", status: "False" },
      ],
      podIPs: [{ ip: "10.0.0.1" }],
      containerStatuses: [
        { name: "a", ready: false },
        { name: "b", ready: false },
      ],
    },
  };

  it("merges pod conditions by type and podIPs by ip", () => {
    const out = applyStrategicMergePatch(status, { status: { conditions: [{ type: "Ready", status: "True" }, { type: "Initialized", status: "True" }], podIPs: [{ ip: "fd00::1" }] } }, pod);
    expect(out).toMatchObject({
      status: {
        conditions: [
          { type: "PodScheduled", status: "True" },
          { type: "Ready", status: "True" },
          { type: "Initialized", status: "True" },
        ],
        podIPs: [{ ip: "10.0.0.1" }, { ip: "fd00::1" }],
      },
    });
  });

  it("replaces containerStatuses (atomic, as in the Go types)", () => {
    const out = applyStrategicMergePatch(status, { status: { containerStatuses: [{ name: "b", ready: true }] } }, pod) as { status: { containerStatuses: unknown[] } };
    expect(out.status.containerStatuses).toEqual([{ name: "b", ready: true }]);
  });

  it("merges containers by name, ports by containerPort and env by name", () => {
    const orig = { spec: { containers: [{ name: "c", image: "x:1", env: [{ name: "A", value: "1" }], ports: [{ containerPort: 80 }] }, { name: "d", image: "y" }] } };
    const out = applyStrategicMergePatch(orig, { spec: { containers: [{ name: "c", image: "x:2", env: [{ name: "B", value: "2" }], ports: [{ containerPort: 443 }] }] } }, pod);
    expect(out).toEqual({
      spec: {
        containers: [
          { name: "c", image: "x:2", env: [{ name: "A", value: "1" }, { name: "B", value: "2" }], ports: [{ containerPort: 80 }, { containerPort: 443 }] },
          { name: "d", image: "y" },
        ],
      },
    });
  });

  it("handles $patch delete/replace, $deleteFromPrimitiveList, $setElementOrder and $retainKeys", () => {
    const orig = { metadata: { finalizers: ["a", "b"] }, spec: { containers: [{ name: "x" }, { name: "y" }, { name: "z" }], volumes: [{ name: "v", emptyDir: {} }] } };
    const out = applyStrategicMergePatch(
      orig,
      {
        metadata: { "$deleteFromPrimitiveList/finalizers": ["a"], finalizers: ["c"] },
        spec: {
          "$setElementOrder/containers": [{ name: "z" }, { name: "x" }, { name: "y" }],
          containers: [{ name: "y", $patch: "delete" }],
          volumes: [{ name: "v", $retainKeys: ["name", "hostPath"], hostPath: { path: "/p" } }],
        },
      },
      pod,
    );
    expect(out).toEqual({
      metadata: { finalizers: ["b", "c"] },
      spec: { containers: [{ name: "z" }, { name: "x" }], volumes: [{ name: "v", hostPath: { path: "/p" } }] },
    });
    expect(applyStrategicMergePatch(orig, { spec: { containers: [{ name: "only" }, { $patch: "replace" }] } }, pod)).toMatchObject({ spec: { containers: [{ name: "only" }] } });
    expect(applyStrategicMergePatch(orig, { spec: { $patch: "replace", nodeName: "n" } }, pod)).toEqual({ metadata: { finalizers: ["a", "b"] }, spec: { nodeName: "n" } });
  });

  it("merges node addresses and conditions by type; taints and images are atomic", () => {
    const orig = {
      spec: { taints: [{ key: "a", effect: "NoSchedule" }] },
      status: { addresses: [{ type: "InternalIP", address: "1.1.1.1" }, { type: "Hostname", address: "n" }], images: [{ names: ["a"] }], conditions: [{ type: "Ready", status: "False" }] },
    };
    const out = applyStrategicMergePatch(
      orig,
      { spec: { taints: [{ key: "b", effect: "NoExecute" }] }, status: { addresses: [{ type: "InternalIP", address: "2.2.2.2" }], images: [{ names: ["b"] }], conditions: [{ type: "Ready", status: "True" }] } },
      node,
    );
    expect(out).toEqual({
      spec: { taints: [{ key: "b", effect: "NoExecute" }] },
      status: { addresses: [{ type: "InternalIP", address: "2.2.2.2" }, { type: "Hostname", address: "n" }], images: [{ names: ["b"] }], conditions: [{ type: "Ready", status: "True" }] },
    });
  });

  it("merges service ports by port", () => {
    const out = applyStrategicMergePatch({ spec: { ports: [{ port: 80, targetPort: 8080 }] } }, { spec: { ports: [{ port: 80, name: "http" }, { port: 443 }] } }, patchMetaFor("Service"));
    expect(out).toEqual({ spec: { ports: [{ port: 80, targetPort: 8080, name: "http" }, { port: 443 }] } });
  });

  it("two-way patches round-trip", () => {
    const from = { status: { conditions: [{ type: "Ready", status: "False" }, { type: "X", status: "True" }], phase: "Pending" } };
    const to = { status: { conditions: [{ type: "Ready", status: "True" }], phase: "Running", podIP: "1.2.3.4" } };
    const p = createTwoWayMergePatch(from, to, pod);
    expect(applyStrategicMergePatch(from, p, pod)).toEqual(to);
  });
});
