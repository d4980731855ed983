/** The downward API's shared values: metadata fields and container resources rounded up by their divisor. */
import { describe, expect, it } from "vitest";
import { containerResourceValue, podMetadataField } from "../../../kubelet/downward-api.ts";

const node = { memoryBytes: 8 * 1024 ** 3, cpuMilli: 2000 };

describe("downward API values", () => {
  it("reads metadata fields and single labels or annotations, and leaves other paths to the caller", () => {
    const pod = { metadata: { name: "web", namespace: "ns", uid: "u1", labels: { app: "web" }, annotations: { "a.b/c": "d" } } };
    expect(podMetadataField(pod, "metadata.name")).toBe("web");
    expect(podMetadataField(pod, "metadata.labels['app']")).toBe("web");
    expect(podMetadataField(pod, "metadata.annotations['a.b/c']")).toBe("d");
    expect(podMetadataField(pod, "metadata.labels['missing']")).toBe("");
    expect(podMetadataField(pod, "spec.nodeName")).toBeUndefined();
  });

  it("rounds a request or limit up by the divisor; an unset limit is the node's capacity, cpu included", () => {
    const c = { name: "c", resources: { requests: { cpu: "250m", memory: "100Mi" }, limits: { memory: "1Gi" } } };
    expect(containerResourceValue(c, "requests.cpu", undefined, node)).toBe("1");
    expect(containerResourceValue(c, "requests.cpu", "1m", node)).toBe("250");
    expect(containerResourceValue(c, "limits.memory", "1Mi", node)).toBe("1024");
    expect(containerResourceValue(c, "limits.cpu", "1m", node)).toBe("2000");
    expect(containerResourceValue(c, "limits.memory", undefined, { ...node, memoryBytes: 5 })).toBe(String(1024 ** 3));
    expect(containerResourceValue(c, "status.cpu", undefined, node)).toBeUndefined();
  });
});
