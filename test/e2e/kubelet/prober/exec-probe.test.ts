/**
 * Exec probes against the real containerd of a sandbox node: what the prober reports for a command that
 * succeeds, fails with output, and outlives the probe's timeout (containerd kills it and answers
 * DeadlineExceeded, which the prober turns into upstream's "timed out" failure), asked of CRI itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { NodeSandbox } from "../../../harness/node-sandbox.ts";
import { testContainerConfig, testPodConfig, type TestPod } from "../../../harness/cri-pods.ts";
import type { CriClient } from "../../../../kubelet/cri/client.ts";
import type { EventRecorder, EventType, ObjectReference } from "../../../../kubelet/events.ts";
import { Prober } from "../../../../kubelet/prober/prober.ts";
import { removeCgroupTree } from "../../../../src-shared/cgroups.ts";
import { silentLogger } from "../../../../src-shared/log.ts";

const node = new NodeSandbox();
let cri: CriClient;
let pod: TestPod;
let sandboxId = "";
let containerId = "";

beforeAll(async () => {
  await node.start();
  cri = node.criClient();
  pod = testPodConfig(node, "probed", "default", { "io.kubernetes.pod.name": "probed", "io.kubernetes.pod.namespace": "default" });
  ({ pod_sandbox_id: sandboxId } = await cri.runtime("RunPodSandbox", { config: pod.config }));
  ({ container_id: containerId } = await cri.runtime("CreateContainer", {
    pod_sandbox_id: sandboxId,
    config: testContainerConfig("main", ["sh", "-c", "touch /tmp/healthy; exec sleep 3600"], { image: { image: "localhost/busybox:1" } }),
    sandbox_config: pod.config,
  }));
  await cri.runtime("StartContainer", { container_id: containerId });
});

afterAll(async () => {
  if (sandboxId) {
    await cri.runtime("StopPodSandbox", { pod_sandbox_id: sandboxId });
    await cri.runtime("RemovePodSandbox", { pod_sandbox_id: sandboxId });
    await removeCgroupTree(pod.cgroupParent);
  }
  await node.teardown();
});

class Recorder implements EventRecorder {
  readonly messages: string[] = [];
  event(_ref: ObjectReference, _type: EventType, _reason: string, message: string): void {
    this.messages.push(message);
  }
}

const apiPod: V1Pod = { metadata: { name: "probed", namespace: "default", uid: "u1" }, spec: { containers: [] } };

describe("exec probes on real containerd", () => {
  it("reports success, a failure with the command's output, and a timeout as upstream does", async () => {
    const recorder = new Recorder();
    const prober = new Prober({ runtime: cri, recorder, logger: silentLogger() });
    const signal = new AbortController().signal;
    const target = (command: string[], timeoutSeconds = 1) => {
      const container: V1Container = { name: "main", livenessProbe: { exec: { command }, timeoutSeconds } };
      return { pod: apiPod, container, containerId, podIP: "" };
    };

    expect(await prober.probe("liveness", target(["cat", "/tmp/healthy"]), signal)).toEqual({ result: "Success" });
    expect(await prober.probe("liveness", target(["cat", "/tmp/missing"]), signal)).toEqual({ result: "Failure" });
    expect(recorder.messages.at(-1)).toBe("Liveness probe failed: cat: can't open '/tmp/missing': No such file or directory\n");

    const started = performance.now();
    expect(await prober.probe("liveness", target(["sleep", "10"], 1), signal)).toEqual({ result: "Failure" });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(recorder.messages.at(-1)).toBe('Liveness probe failed: command "sleep 10" timed out');
    // containerd killed the command at the timeout: no sleep 10 is left in the container.
    const ps = await cri.runtime("ExecSync", { container_id: containerId, cmd: ["ps", "-o", "args"], timeout: 5 });
    expect(ps.stdout.toString()).not.toContain("sleep 10");
  });
});
