import { describe, expect, it } from "vitest";
import { DEFAULT_PREFERRED_ADDRESS_TYPES, kubeletError, nodeAddress } from "../../control-plane/kubelet-proxy.ts";
import type { KubeObject } from "../../control-plane/types.ts";

describe("the control plane's kubelet proxy", () => {
  const node = { metadata: { name: "n" }, status: { addresses: [{ type: "InternalIP", address: "10.0.0.5" }, { type: "Hostname", address: "n" }] } } as unknown as KubeObject;

  it("picks the node address by preferred type (upstream's default order puts Hostname first)", () => {
    expect(nodeAddress(node, DEFAULT_PREFERRED_ADDRESS_TYPES)).toBe("n");
    expect(nodeAddress(node, ["InternalIP", "Hostname"])).toBe("10.0.0.5");
    expect(nodeAddress(node, ["ExternalIP"])).toBeUndefined();
  });

  it("turns a kubelet error answer into the Status kube-apiserver's response checker makes", () => {
    expect(kubeletError(400, 'previous terminated container "c" in pod "p_ns" not found', "pods/log", "p").toStatus()).toMatchObject({ code: 400, reason: "BadRequest", message: 'previous terminated container "c" in pod "p_ns" not found' });
    expect(kubeletError(500, "boom", "pods/log", "p").toStatus()).toMatchObject({ code: 500, reason: "InternalError", message: "Internal error occurred: boom" });
    expect(kubeletError(403, "Forbidden (user=x, verb=get, resource=nodes, subresource=proxy)", "pods/log", "p").toStatus()).toMatchObject({ code: 403, reason: "Forbidden", message: "Forbidden (user=x, verb=get, resource=nodes, subresource=proxy)" });
  });
});
