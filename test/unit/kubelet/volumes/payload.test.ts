import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { checkPath, configMapData, downwardPayload, formatMap, keysPayload, secretData, payloadKey } from "../../../../kubelet/volumes/payload.ts";

const text = (b: Buffer | undefined): string | undefined => b?.toString("utf8");
const node = { memoryCapacityBytes: 8 << 30, cpuCapacityMilli: 2000 };

describe("keysPayload", () => {
  const cm = configMapData({ data: { "app.conf": "a=1", other: "x" }, binaryData: { bin: Buffer.from([0, 1, 2]).toString("base64") } });

  it("projects every key with the default mode, binaryData decoded", () => {
    const p = keysPayload("configmap", "cfg", cm, undefined, undefined, false, "configMap");
    expect([...p.keys()].sort()).toEqual(["app.conf", "bin", "other"]);
    expect(p.get("app.conf")).toEqual({ data: Buffer.from("a=1"), mode: 0o644 });
    expect([...(p.get("bin")?.data ?? [])]).toEqual([0, 1, 2]);
  });

  it("projects only the items, at their paths, with their own mode over defaultMode", () => {
    const p = keysPayload("configmap", "cfg", cm, [{ key: "app.conf", path: "etc/app.conf", mode: 0o600 }, { key: "other", path: "o" }], 0o440, false, "configMap");
    expect([...p.keys()].sort()).toEqual(["etc/app.conf", "o"]);
    expect(p.get("etc/app.conf")?.mode).toBe(0o600);
    expect(p.get("o")?.mode).toBe(0o440);
  });

  it("fails on a missing object or key unless optional, with upstream's messages", () => {
    expect(() => keysPayload("configmap", "cfg", undefined, undefined, undefined, false, "configMap")).toThrow('configmap "cfg" not found');
    expect(keysPayload("configmap", "cfg", undefined, undefined, undefined, true, "configMap").size).toBe(0);
    expect(() => keysPayload("configmap", "cfg", cm, [{ key: "nope", path: "n" }], undefined, false, "configMap")).toThrow("configmap references non-existent config key: nope");
    expect(keysPayload("configmap", "cfg", cm, [{ key: "nope", path: "n" }], undefined, true, "configMap").size).toBe(0);
    expect(() => keysPayload("secret", "s", undefined, undefined, undefined, false, "secret")).toThrow('secret "s" not found');
    expect(() => keysPayload("secret", "s", secretData({ data: {} }), [{ key: "k", path: "k" }], undefined, false, "secret")).toThrow("secret references non-existent secret key: k");
  });

  it("decodes Secret data from base64", () => {
    const p = keysPayload("secret", "s", secretData({ data: { password: Buffer.from("hunter2").toString("base64") } }), undefined, 0o400, false, "secret");
    expect(p.get("password")).toEqual({ data: Buffer.from("hunter2"), mode: 0o400 });
  });

  it("refuses item paths that leave the volume", () => {
    for (const bad of ["../x", "a/../../x", "/etc/passwd", "..data"]) {
      expect(() => keysPayload("configmap", "cfg", cm, [{ key: "other", path: bad }], undefined, false, "configMap")).toThrow(/Invalid value/);
    }
    expect(() => checkPath("a/b..c", "p")).not.toThrow();
  });
});

describe("downwardPayload", () => {
  const pod: V1Pod = {
    metadata: { name: "web", namespace: "prod", uid: "u1", labels: { tier: "front", app: "web" }, annotations: { note: 'say "hi"' } },
    spec: { containers: [{ name: "main", image: "i", resources: { requests: { memory: "64Mi" }, limits: { cpu: "500m" } } }] },
  };

  it("writes metadata fields, whole maps in upstream's sorted key=\"value\" form, and resources with divisors", () => {
    const p = downwardPayload(
      pod,
      [
        { path: "name", fieldRef: { fieldPath: "metadata.name" } },
        { path: "labels", fieldRef: { fieldPath: "metadata.labels" } },
        { path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } },
        { path: "tier", fieldRef: { fieldPath: "metadata.labels['tier']" } },
        { path: "cpu", resourceFieldRef: { containerName: "main", resource: "limits.cpu", divisor: "1m" } },
        { path: "mem", resourceFieldRef: { containerName: "main", resource: "requests.memory", divisor: "1Mi" } },
        { path: "memlimit", resourceFieldRef: { containerName: "main", resource: "limits.memory" }, mode: 0o400 },
      ],
      undefined,
      node,
      "downwardAPI",
    );
    expect(text(p.get("name")?.data)).toBe("web");
    expect(text(p.get("labels")?.data)).toBe('app="web"\ntier="front"');
    expect(text(p.get("annotations")?.data)).toBe('note="say \\"hi\\""');
    expect(text(p.get("tier")?.data)).toBe("front");
    expect(text(p.get("cpu")?.data)).toBe("500");
    expect(text(p.get("mem")?.data)).toBe("64");
    expect(p.get("memlimit")).toEqual({ data: Buffer.from(String(8 << 30)), mode: 0o400 });
    expect(formatMap({})).toBe("");
  });

  it("refuses env-only fields and unknown containers", () => {
    expect(() => downwardPayload(pod, [{ path: "ip", fieldRef: { fieldPath: "status.podIP" } }], undefined, node, "d")).toThrow(/Unsupported value: "status.podIP"/);
    expect(() => downwardPayload(pod, [{ path: "c", resourceFieldRef: { containerName: "x", resource: "limits.cpu" } }], undefined, node, "d")).toThrow(/container not found/);
  });
});

describe("payloadKey", () => {
  it("changes with content or mode, not with insertion order", () => {
    const a = new Map([["x", { data: Buffer.from("1"), mode: 0o644 }], ["y", { data: Buffer.from("2"), mode: 0o644 }]]);
    const b = new Map([["y", { data: Buffer.from("2"), mode: 0o644 }], ["x", { data: Buffer.from("1"), mode: 0o644 }]]);
    expect(payloadKey(a)).toBe(payloadKey(b));
    expect(payloadKey(a)).not.toBe(payloadKey(new Map([...a, ["x", { data: Buffer.from("1"), mode: 0o600 }]])));
  });
});
