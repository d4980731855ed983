import { describe, expect, it } from "vitest";
import { CriClient, CriError } from "../../../../kubelet/cri/client.ts";

// What the client decides on its own, before or without a runtime. Its behaviour against a real runtime is
// covered by test/e2e/kubelet/cri/cri-client.test.ts on a sandbox node's containerd.
describe("CriClient without a runtime", () => {
  it("refuses CreateContainer without sandbox_config before sending anything", async () => {
    const cri = new CriClient({ endpoint: "/nonexistent/containerd.sock" });
    const err = await cri.runtime("CreateContainer", { pod_sandbox_id: "abc", config: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CriError);
    expect((err as CriError).code).toBe("InvalidArgument");
    expect((err as CriError).message).toContain("sandbox_config");
    cri.close();
  });

  it("reports a runtime that is not there as Unavailable or DeadlineExceeded, within the deadline", async () => {
    const cri = new CriClient({ endpoint: "unix:///nonexistent/containerd.sock" });
    const t0 = Date.now();
    const err = await cri.runtime("Version", {}, { timeoutMs: 700 }).catch((e: unknown) => e);
    expect(["Unavailable", "DeadlineExceeded"]).toContain((err as CriError).code);
    expect(Date.now() - t0).toBeLessThan(5000);
    cri.close();
  });

  it("rejects calls after close", async () => {
    const cri = new CriClient({ endpoint: "/nonexistent/containerd.sock" });
    cri.close();
    const err = await cri.runtime("Version", {}).catch((e: unknown) => e);
    expect((err as CriError).code).toBe("Cancelled");
  });
});
