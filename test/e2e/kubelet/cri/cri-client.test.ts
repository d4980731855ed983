/**
 * The CRI client against the real containerd of a sandbox node: a pod sandbox and a container run, exec,
 * stats, CRI-format logs, typed errors, removal that leaves nothing, and a containerd crash mid-test.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pollUntil } from "../../../harness/wait.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeSandbox } from "../../../harness/node-sandbox.ts";
import { CriError, type CriClient } from "../../../../kubelet/cri/client.ts";
import { cgroupHierarchies, removeCgroupTree } from "../../../../src-shared/cgroups.ts";
import type { Input, ContainerConfig } from "../../../../kubelet/cri/types.ts";
import { testContainerConfig, testPodConfig, type TestPod } from "../../../harness/cri-pods.ts";

const node = new NodeSandbox();
let cri: CriClient;

beforeAll(async () => {
  await node.start();
  cri = node.criClient();
});

afterAll(async () => {
  await node.teardown();
});

function podConfig(name: string): TestPod {
  return testPodConfig(node, name, "default", { "io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": "default" });
}

function containerConfig(name: string, script: string, image = "localhost/busybox:1"): Input<ContainerConfig> {
  return testContainerConfig(name, ["sh", "-c", script], {
    image: { image },
    linux: { resources: { memory_limit_in_bytes: 64 * 1024 * 1024, cpu_shares: 2 } },
  });
}

async function runPodWithContainer(name: string, script: string): Promise<{ pod: TestPod; sandboxId: string; containerId: string }> {
  const pod = podConfig(name);
  const { pod_sandbox_id: sandboxId } = await cri.runtime("RunPodSandbox", { config: pod.config });
  const { container_id: containerId } = await cri.runtime("CreateContainer", {
    pod_sandbox_id: sandboxId,
    config: containerConfig("main", script),
    sandbox_config: pod.config,
  });
  await cri.runtime("StartContainer", { container_id: containerId });
  return { pod, sandboxId, containerId };
}

async function removePod(pod: TestPod, sandboxId: string): Promise<void> {
  await cri.runtime("StopPodSandbox", { pod_sandbox_id: sandboxId });
  await cri.runtime("RemovePodSandbox", { pod_sandbox_id: sandboxId });
  // containerd never removes the pod-level cgroup: the kubelet must (runtime-facts.md).
  await removeCgroupTree(pod.cgroupParent);
}

describe("CRI client on real containerd", () => {
  it("reports the runtime's version and readiness", async () => {
    const version = await cri.runtime("Version", {});
    expect(version.runtime_name).toBe("containerd");
    expect(version.runtime_api_version).toBe("v1");
    const status = await cri.runtime("Status", {});
    const conditions = Object.fromEntries((status.status?.conditions ?? []).map((c) => [c.type, c.status]));
    expect(conditions).toEqual({ RuntimeReady: true, NetworkReady: true });
  });

  it("runs a sandbox and a container, execs in it, reads stats and CRI-format logs, and removes it all", async () => {
    const { pod, sandboxId, containerId } = await runPodWithContainer("web", "echo hello; echo oops >&2; exec sleep 3600");

    const sandbox = await cri.runtime("PodSandboxStatus", { pod_sandbox_id: sandboxId });
    expect(sandbox.status?.state).toBe("SANDBOX_READY");
    const podIp = sandbox.status?.network?.ip ?? "";
    expect(podIp).toMatch(/^10\.88\.0\.\d+$/);

    const status = await cri.runtime("ContainerStatus", { container_id: containerId });
    expect(status.status?.state).toBe("CONTAINER_RUNNING");
    expect(status.status?.image_ref).toMatch(/^sha256:[0-9a-f]{64}$/);

    // The pod's own network namespace holds its IP; the node reaches it across the bridge.
    const addr = await node.execInPod(sandboxId, "ip", ["-4", "-o", "addr", "show", "eth0"]);
    expect(addr.stdout).toContain(podIp);
    const ping = await node.exec("busybox", ["ping", "-c", "1", "-W", "2", podIp], { allowFailure: true });
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);

    const exec = await cri.runtime("ExecSync", { container_id: containerId, cmd: ["cat", "/etc/hostname"], timeout: 10 });
    expect(exec.exit_code).toBe(0);
    expect(exec.stdout.toString().trim()).toBe("web");
    // Its own PID namespace: the container's command is PID 1, not the pause process.
    const ps = await cri.runtime("ExecSync", { container_id: containerId, cmd: ["cat", "/proc/1/cmdline"], timeout: 10 });
    expect(ps.stdout.toString().split("\0")[0]).toBe("sleep");
    expect(ps.stdout.toString()).toContain("3600");
    const failing = await cri.runtime("ExecSync", { container_id: containerId, cmd: ["sh", "-c", "echo bad >&2; exit 3"], timeout: 10 });
    expect(failing.exit_code).toBe(3);
    expect(failing.stderr.toString()).toBe("bad\n");

    // The limits landed in the container's cgroup, under the parent we asked for.
    const memory = (await cgroupHierarchies()).find((h) => h.fsType === "cgroup" && h.options.split(",").includes("memory"));
    if (memory) {
      const limit = await readFile(join(memory.mountPoint, pod.cgroupParent, containerId, "memory.limit_in_bytes"), "utf8");
      expect(Number(limit)).toBe(64 * 1024 * 1024);
    }

    const stats = await pollUntil(() => cri.runtime("ContainerStats", { container_id: containerId }), (s) => Number(s.stats?.memory?.working_set_bytes?.value ?? "0") > 0);
    expect(stats.stats?.attributes?.id).toBe(containerId);
    expect(Number(stats.stats?.memory?.working_set_bytes?.value)).toBeGreaterThan(0);
    expect(Number(stats.stats?.cpu?.timestamp)).toBeGreaterThan(0);
    const listed = await cri.runtime("ListContainerStats", { filter: { pod_sandbox_id: sandboxId } });
    expect(listed.stats.map((s) => s.attributes?.id)).toEqual([containerId]);
    const podStats = await cri.runtime("ListPodSandboxStats", {});
    expect(podStats.stats.map((s) => s.attributes?.id)).toContain(sandboxId);

    const logFile = node.hostPath(`${pod.logDir}/main/0.log`);
    const lines = (await pollUntil(() => readFile(logFile, "utf8"), (t) => t.split("\n").length >= 3)).trim().split("\n");
    const rfc3339Nano = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`;
    expect(lines.find((l) => l.includes("hello"))).toMatch(new RegExp(`^${rfc3339Nano} stdout F hello$`));
    expect(lines.find((l) => l.includes("oops"))).toMatch(new RegExp(`^${rfc3339Nano} stderr F oops$`));

    await cri.runtime("StopContainer", { container_id: containerId, timeout: 1 });
    const stopped = await cri.runtime("ContainerStatus", { container_id: containerId });
    expect(stopped.status?.state).toBe("CONTAINER_EXITED");
    await cri.runtime("RemoveContainer", { container_id: containerId });
    await removePod(pod, sandboxId);

    expect((await cri.runtime("ListContainers", {})).containers).toEqual([]);
    expect((await cri.runtime("ListPodSandbox", {})).items).toEqual([]);
    for (const h of await cgroupHierarchies()) expect(existsSync(join(h.mountPoint, pod.cgroupParent))).toBe(false);
    // Stop and remove are idempotent, as the kubelet relies on.
    await cri.runtime("StopPodSandbox", { pod_sandbox_id: sandboxId }).catch((e: unknown) => expect((e as CriError).code).toBe("NotFound"));
  });

  it("gives a typed NotFound for a missing image, and refuses CreateContainer without sandbox_config", async () => {
    const pod = podConfig("missing-image");
    const { pod_sandbox_id: sandboxId } = await cri.runtime("RunPodSandbox", { config: pod.config });
    try {
      const err = await cri
        .runtime("CreateContainer", {
          pod_sandbox_id: sandboxId,
          config: containerConfig("main", "true", "localhost/no-such-image:1"),
          sandbox_config: pod.config,
        })
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(CriError);
      expect((err as CriError).code).toBe("NotFound");
      expect((err as CriError).method).toBe("CreateContainer");

      const guard = await cri
        .runtime("CreateContainer", { pod_sandbox_id: sandboxId, config: containerConfig("main", "true") })
        .then(() => undefined, (e: unknown) => e);
      expect((guard as CriError).code).toBe("InvalidArgument");
      // containerd is still alive (the guard kept the request from reaching it).
      expect((await cri.runtime("Version", {})).runtime_name).toBe("containerd");

      const image = await cri.image("ImageStatus", { image: { image: "localhost/no-such-image:1" } });
      expect(image.image).toBeNull();
      const images = await cri.image("ListImages", {});
      expect(images.images.flatMap((i) => i.repo_tags)).toEqual(expect.arrayContaining(["localhost/busybox:1", "localhost/pause:1"]));
      const fs = await cri.image("ImageFsInfo", {});
      expect(fs.image_filesystems[0]?.fs_id?.mountpoint).toContain(node.dir);
    } finally {
      await removePod(pod, sandboxId);
    }
  });

  it("honours deadlines and aborts", async () => {
    const pod = podConfig("deadline");
    const { pod_sandbox_id: sandboxId } = await cri.runtime("RunPodSandbox", { config: pod.config });
    try {
      const { container_id: containerId } = await cri.runtime("CreateContainer", {
        pod_sandbox_id: sandboxId,
        config: containerConfig("main", "exec sleep 3600"),
        sandbox_config: pod.config,
      });
      await cri.runtime("StartContainer", { container_id: containerId });
      const slow = await cri
        .runtime("ExecSync", { container_id: containerId, cmd: ["sleep", "30"], timeout: 0 }, { timeoutMs: 300 })
        .then(() => undefined, (e: unknown) => e);
      expect((slow as CriError).code).toBe("DeadlineExceeded");
      const controller = new AbortController();
      const pending = cri.runtime("ExecSync", { container_id: containerId, cmd: ["sleep", "30"] }, { signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      const aborted = await pending.then(() => undefined, (e: unknown) => e);
      expect((aborted as CriError).code).toBe("Cancelled");
    } finally {
      await removePod(pod, sandboxId);
    }
  });

  it("keeps working, and the pod keeps running, across a containerd crash and restart", async () => {
    const { pod, sandboxId, containerId } = await runPodWithContainer("survivor", "exec sleep 3600");
    try {
      const pidBefore = await node.sandboxPid(sandboxId);
      await node.killContainerd();
      const down = await cri.runtime("Version", {}, { timeoutMs: 500 }).then(() => undefined, (e: unknown) => e);
      expect(["Unavailable", "DeadlineExceeded"]).toContain((down as CriError).code);

      await node.startContainerd();
      // The same client object, without any reset: the channel reconnects by itself.
      const status = await cri.runtime("ContainerStatus", { container_id: containerId }, { timeoutMs: 10_000 });
      expect(status.status?.state).toBe("CONTAINER_RUNNING");
      expect(status.status?.started_at).not.toBe("0");
      expect(await node.sandboxPid(sandboxId)).toBe(pidBefore);
      const exec = await cri.runtime("ExecSync", { container_id: containerId, cmd: ["echo", "still here"], timeout: 10 });
      expect(exec.stdout.toString()).toBe("still here\n");
    } finally {
      await removePod(pod, sandboxId);
    }
  });
});
