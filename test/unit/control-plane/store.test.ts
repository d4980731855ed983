import { describe, expect, it } from "vitest";
import { Store } from "../../control-plane/store.ts";
import { ApiError } from "../../control-plane/status.ts";
import type { KubeObject } from "../../control-plane/types.ts";

const obj = (ns: string, name: string, extra: Record<string, unknown> = {}): KubeObject => ({ metadata: { namespace: ns, name }, ...extra });

describe("Store", () => {
  it("stamps one increasing resourceVersion across storages and lists sorted by key", () => {
    const s = new Store();
    const a = s.create("core/pods", obj("b", "x"));
    const b = s.create("core/configmaps", obj("a", "y"));
    const c = s.create("core/pods", obj("a", "z"));
    expect([a, b, c].map((o) => Number(o.metadata.resourceVersion))).toEqual([1, 2, 3]);
    expect(s.list("core/pods").map((o) => o.metadata.name)).toEqual(["z", "x"]);
    expect(s.list("core/pods", "b").map((o) => o.metadata.name)).toEqual(["x"]);
    expect(s.list("core/pods", undefined, "a/z").map((o) => o.metadata.name)).toEqual(["x"]);
    expect(() => s.create("core/pods", obj("b", "x"))).toThrow(ApiError);
  });

  it("replays history after a resourceVersion and answers 410 once it is compacted", () => {
    const s = new Store({ historyLimit: 3 });
    s.create("core/pods", obj("n", "a"));
    s.create("core/pods", obj("n", "b"));
    s.update("core/pods", obj("n", "a", { spec: 1 }));
    s.delete("core/pods", "n", "b");
    const since = s.since("core/pods", 2);
    expect(since.map((e) => [e.type, e.rv])).toEqual([
      ["MODIFIED", 3],
      ["DELETED", 4],
    ]);
    expect(since[1]?.object.metadata.resourceVersion).toBe("4");
    let err: unknown;
    try {
      s.since("core/pods", 0);
    } catch (e) {
      err = e;
    }
    expect((err as ApiError).code).toBe(410);
    expect((err as ApiError).message).toBe("too old resource version: 0 (2)");
    s.compact();
    expect(() => s.since("core/pods", 3)).toThrow(ApiError);
    expect(s.since("core/pods", 4)).toEqual([]);
  });

  it("delivers events to subscribers synchronously", () => {
    const s = new Store();
    const seen: string[] = [];
    const stop = s.subscribe("core/pods", (e) => seen.push(`${e.type} ${e.object.metadata.name ?? ""}`));
    s.create("core/pods", obj("n", "a"));
    s.create("core/nodes", { metadata: { name: "n1" } });
    stop();
    s.delete("core/pods", "n", "a");
    expect(seen).toEqual(["ADDED a"]);
  });
});
