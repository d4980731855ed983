/**
 * The kubelet end to end on a sandbox node and the local control plane, driven through the API as a user
 * would: the node registers and goes Ready once its pod CIDR is assigned, keeps its Lease, runs a pod to
 * Running with a faithful status and a reachable IP, applies each restart policy, deletes gracefully leaving
 * nothing behind, and fails a bad pod alone while carrying on.
 */
import { existsSync } from "node:fs";
import { open, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";
import { eventually, eventuallyGone, pollUntil } from "../../harness/wait.ts";
import { apiTimeOf, criContainer, criContainers } from "../../harness/cri-pods.ts";
import { cgroupHierarchies } from "../../../src-shared/cgroups.ts";

const suite = clusterWithOneNode();
const cluster = suite.cluster;
const pods = podsRef;

function podSpec(name: string, spec: Partial<NonNullable<V1Pod["spec"]>> & { script?: string } = {}): V1Pod {
  const { script, ...rest } = spec;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels: { app: name } },
    spec: {
      nodeName: suite.node.name,
      terminationGracePeriodSeconds: 5,
      containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script ?? "exec sleep 3600"] }],
      ...rest,
    },
  };
}

async function getPod(name: string): Promise<V1Pod> {
  return cluster.client.get<V1Pod>(pods(name));
}

async function waitForPhase(name: string, phase: string, timeoutMs = 30_000): Promise<V1Pod> {
  return eventually(async () => {
    const p = await getPod(name);
    return p.status?.phase === phase ? p : undefined;
  }, { timeoutMs: timeoutMs, message: `pod ${name} to be ${phase}` });
}

describe("node", () => {
  it("registers with upstream's labels, addresses, capacity and node info, and goes Ready with a pod CIDR", async () => {
    const n = await eventually(async () => {
      const got = await cluster.client.get<V1Node>({ group: "", version: "v1", resource: "nodes", name: suite.node.name });
      return got.status?.conditions?.find((c) => c.type === "Ready")?.status === "True" ? got : undefined;
    }, { timeoutMs: 60_000, message: "the node to be Ready" });
    expect(n.metadata?.labels).toMatchObject({ "kubernetes.io/hostname": suite.node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": expect.any(String) as string });
    expect(n.status?.addresses).toEqual(expect.arrayContaining([{ type: "InternalIP", address: suite.node.sandbox.nodeIP }]));
    expect(n.status?.capacity).toMatchObject({ pods: "110", cpu: expect.any(String) as string, memory: expect.stringMatching(/Ki$/) as string });
    expect(n.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\//);
    expect(n.spec?.podCIDR).toMatch(/^10\.244\.\d+\.0\/24$/);
    // Upstream's default thresholds are far from this machine's figures: each condition False with upstream's
    // reason and message (eviction.test.ts sees them go True under real pressure, and clear).
    const condition = (t: string) => n.status?.conditions?.find((c) => c.type === t);
    expect(condition("MemoryPressure")).toMatchObject({ reason: "KubeletHasSufficientMemory", message: "kubelet has sufficient memory available" });
    expect(condition("DiskPressure")).toMatchObject({ reason: "KubeletHasNoDiskPressure", message: "kubelet has no disk pressure" });
    expect(condition("PIDPressure")).toMatchObject({ reason: "KubeletHasSufficientPID", message: "kubelet has sufficient PID available" });
    // Upstream's node events, as `kubectl describe node` shows them.
    const reasons = await eventually(async () => {
      const res = await cluster.kubectl(["get", "events", "--field-selector", `involvedObject.kind=Node,involvedObject.name=${suite.node.name}`, "-o", "jsonpath={.items[*].reason}"]);
      const got = res.stdout.split(" ");
      return got.includes("NodeReady") ? got : undefined;
    }, { message: "the node's events" });
    expect(reasons).toEqual(expect.arrayContaining(["Starting", "NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeReady"]));
  });

  it("keeps its Lease renewed", async () => {
    const lease = (): Promise<{ spec?: { renewTime?: string; holderIdentity?: string; leaseDurationSeconds?: number } }> =>
      cluster.client.get({ group: "coordination.k8s.io", version: "v1", resource: "leases", namespace: "kube-node-lease", name: suite.node.name });
    const first = await eventually(lease, { message: "the lease" });
    expect(first.spec).toMatchObject({ holderIdentity: suite.node.name, leaseDurationSeconds: 40 });
    const renewed = await eventually(async () => {
      const l = await lease();
      return l.spec?.renewTime !== first.spec?.renewTime ? l : undefined;
    }, { timeoutMs: 25_000, message: "a renewal" });
    expect(Date.parse(renewed.spec?.renewTime ?? "")).toBeGreaterThan(Date.parse(first.spec?.renewTime ?? ""));
  });
});

describe("pods", () => {
  it("runs a pod to Running with a faithful status and an IP the node reaches", async () => {
    await cluster.client.create(pods(), podSpec("web", { script: "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 8080 -h /www" }));
    const pod = await eventually(async () => {
      const p = await getPod("web");
      return p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True" ? p : undefined;
    }, { message: "web to be Ready" });
    const s = pod.status;
    expect(s?.phase).toBe("Running");
    expect(s?.qosClass).toBe("BestEffort");
    expect(s?.hostIP).toBe(suite.node.sandbox.nodeIP);
    expect(s?.podIP).toMatch(/^10\.244\./);
    expect(s?.podIPs).toEqual([{ ip: s?.podIP }]);
    // The kubelet's startTime is when it first took the pod on: before its container started.
    expect(Date.parse(String(s?.startTime))).toBeLessThanOrEqual(Date.parse(String(s?.containerStatuses?.[0]?.state?.running?.startedAt)));
    for (const t of ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled"]) {
      expect(s?.conditions?.find((c) => c.type === t)?.status, t).toBe("True");
    }
    const cs = s?.containerStatuses?.[0];
    expect(cs).toMatchObject({ name: "main", ready: true, started: true, restartCount: 0, image: "localhost/busybox:1" });
    expect(cs?.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    expect(cs?.imageID).toMatch(/sha256:[0-9a-f]{64}/);
    // startedAt is the runtime's, not the kubelet's clock.
    const cri = await criContainer(suite.node.sandbox.criClient(), cs?.containerID ?? "");
    expect(cri.state).toBe("CONTAINER_RUNNING");
    expect(cs?.state?.running?.startedAt).toBe(apiTimeOf(cri.startedAt));
    const res = await suite.node.exec("timeout", ["3", "busybox", "wget", "-q", "-O", "-", `http://${s?.podIP ?? ""}:8080/`]);
    expect(res.stdout).toBe("hi\n");
  });

  it.each([
    ["Never", 0, "Succeeded", 0],
    ["Never", 3, "Failed", 0],
    ["OnFailure", 0, "Succeeded", 0],
  ] as const)("restartPolicy %s, exit %i → %s", async (restartPolicy, exitCode, phase, restarts) => {
    const name = `exit-${restartPolicy.toLowerCase()}-${exitCode}`;
    await cluster.client.create(pods(), podSpec(name, { restartPolicy, script: `exit ${exitCode}` }));
    const pod = await waitForPhase(name, phase);
    const cs = pod.status?.containerStatuses?.[0];
    expect(cs?.state?.terminated?.exitCode).toBe(exitCode);
    expect(cs?.state?.terminated?.reason).toBe(exitCode === 0 ? "Completed" : "Error");
    expect(cs?.restartCount).toBe(restarts);
    expect(pod.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("False");
  });

  it("restarts a failing container under CrashLoopBackOff, with upstream's reason and message, and collects dead attempts", async () => {
    await cluster.client.create(pods(), podSpec("crasher", { restartPolicy: "Always", script: "echo boom; exit 2" }));
    const backoff = await eventually(async () => {
      const p = await getPod("crasher");
      const cs = p.status?.containerStatuses?.[0];
      return cs?.state?.waiting?.reason === "CrashLoopBackOff" && (cs.restartCount ?? 0) >= 1 ? p : undefined;
    }, { timeoutMs: 40_000, message: "CrashLoopBackOff" });
    const cs = backoff.status?.containerStatuses?.[0];
    expect(cs?.lastState?.terminated?.exitCode).toBe(2);
    expect(cs?.state?.waiting?.message).toMatch(/^back-off (10|20)s restarting failed container=main pod=crasher_default\(/);
    expect(backoff.status?.phase).toBe("Running");
    // A third attempt comes (after the back-off; its length is unit-tested in pod-actions.test.ts).
    const third = await eventually(async () => {
      const p = await getPod("crasher");
      return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2 ? p : undefined;
    }, { timeoutMs: 40_000, message: "restart count 2" });
    // lastState is the previous attempt as the runtime saw it end: its id, exit code and times are CRI's.
    const last = third.status?.containerStatuses?.[0]?.lastState?.terminated;
    const cri = suite.node.sandbox.criClient();
    const dead = await criContainer(cri, last?.containerID ?? "");
    expect(dead.state).toBe("CONTAINER_EXITED");
    expect(last?.exitCode).toBe(dead.exitCode);
    expect(last?.startedAt).toBe(apiTimeOf(dead.startedAt));
    expect(last?.finishedAt).toBe(apiTimeOf(dead.finishedAt));
    // No order is asserted between one attempt's own times: containerd may stamp started_at after a process
    // this quick has already exited. Across a restart the order is real: each attempt starts after the one
    // before it finished (the runtime's times, as kept for the attempts not yet collected).
    const attempts = (await criContainers(cri, { "io.kubernetes.pod.uid": third.metadata?.uid ?? "" })).filter((a) => a.startedAt !== "0").sort((a, b) => a.attempt - b.attempt);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < attempts.length; i++) expect(BigInt(attempts[i]?.startedAt ?? "0")).toBeGreaterThanOrEqual(BigInt(attempts[i - 1]?.finishedAt ?? "0"));
    // Dead attempts are collected: only the newest two (current and last state) stay in the runtime.
    await eventually(async () => {
      const { containers } = await cri.runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.uid": third.metadata?.uid ?? "" } } });
      return containers.length <= 2 ? true : undefined;
    }, { timeoutMs: 30_000, message: "old attempts to be removed" });
  }, 90_000);

  it("deletes gracefully: SIGTERM, then the pod is gone and leaves nothing on the node", async () => {
    await cluster.client.create(pods(), podSpec("graceful", { script: "echo ready; trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.2; done" }));
    const running = await waitForPhase("graceful", "Running");
    const uid = running.metadata?.uid ?? "";
    // The container's CRI log is the trap's witness. The kubelet removes the pod's log folder with the pod, so
    // the file is held open from before the delete and read through that descriptor afterwards.
    const logFile = suite.node.sandbox.hostPath(`/var/log/pods/default_graceful_${uid}/main/0.log`);
    await pollUntil(() => readFile(logFile, "utf8"), (t) => t.includes(" ready"), { message: "the container's first log line" });
    const log = await open(logFile, "r");
    try {
      await cluster.client.delete(pods("graceful"), { gracePeriodSeconds: 20 });
      const t0 = Date.now();
      await eventuallyGone(() => getPod("graceful"), { message: "the pod to be gone" });
      // It honoured SIGTERM: the trap ran (and the pod went well before the 20 s grace, so no SIGKILL was needed).
      const lines = (await log.readFile("utf8")).trim().split("\n");
      expect(lines.at(-1)).toMatch(/ stdout F got TERM$/);
      expect(Date.now() - t0).toBeLessThan(15_000);
    } finally {
      await log.close();
    }
    const cri = suite.node.sandbox.criClient();
    const left = await cri.runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.uid": uid } } });
    expect(left.items).toEqual([]);
    expect((await cri.runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.uid": uid } } })).containers).toEqual([]);
    const logDirs = await readdir(suite.node.sandbox.hostPath("/var/log/pods")).catch(() => []);
    expect(logDirs.filter((d) => d.includes(uid))).toEqual([]);
    for (const h of await cgroupHierarchies()) {
      for (const qos of ["", "besteffort/", "burstable/"]) expect(existsSync(join(h.mountPoint, suite.node.sandbox.cgroupRoot, "kubepods", `${qos}pod${uid}`))).toBe(false);
    }
  });

  it("fails a pod with a bad spec alone, with a clear reason, and carries on", async () => {
    await cluster.client.create(pods(), podSpec("bad-image", { containers: [{ name: "main", image: "localhost/Not A Valid Name", command: ["true"] }] }));
    await cluster.client.create(pods(), podSpec("bad-env", { containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["true"], env: [{ name: "X", valueFrom: { fieldRef: { fieldPath: "spec.nope" } } }] }] }));
    const badImage = await eventually(async () => {
      const p = await getPod("bad-image");
      return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === "InvalidImageName" ? p : undefined;
    }, { message: "InvalidImageName" });
    expect(badImage.status?.containerStatuses?.[0]?.state?.waiting?.message).toContain("Not A Valid Name");
    const badEnv = await eventually(async () => {
      const p = await getPod("bad-env");
      return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === "CreateContainerConfigError" ? p : undefined;
    }, { message: "CreateContainerConfigError" });
    expect(badEnv.status?.containerStatuses?.[0]?.state?.waiting?.message).toContain("spec.nope");
    // Requests no node can meet: admission rejects the pod, which fails without ever running.
    await cluster.client.create(pods(), podSpec("too-big", { containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["true"], resources: { requests: { cpu: "4000" } } }] }));
    const tooBig = await waitForPhase("too-big", "Failed");
    expect(tooBig.status?.reason).toBe("OutOfcpu");
    expect(tooBig.status?.message).toMatch(/^Pod was rejected: Node didn't have enough resource: cpu, requested: 4000000, used: \d+, capacity: \d+$/);
    // The kubelet carries on: a good pod still starts.
    await cluster.client.create(pods(), podSpec("after-bad"));
    await waitForPhase("after-bad", "Running");
  });

  it("runs containers under the seccomp profile asked for: the runtime's default, or none", async () => {
    const confined = podSpec("seccomp-default", { securityContext: { seccompProfile: { type: "RuntimeDefault" } } });
    const open = podSpec("seccomp-none");
    await cluster.client.create(pods(), confined);
    await cluster.client.create(pods(), open);
    const cri = suite.node.sandbox.criClient();
    // The kernel's own word on the container's main process: 2 is SECCOMP_MODE_FILTER, 0 is no filter.
    const seccompMode = async (name: string): Promise<string> => {
      const id = (await waitForPhase(name, "Running")).status?.containerStatuses?.[0]?.containerID?.replace(/^containerd:\/\//, "") ?? "";
      const res = await cri.runtime("ExecSync", { container_id: id, cmd: ["sh", "-c", "grep '^Seccomp:' /proc/1/status"], timeout: 10 });
      return res.stdout.toString().trim();
    };
    expect(await seccompMode("seccomp-default")).toMatch(/^Seccomp:\s+2$/);
    expect(await seccompMode("seccomp-none")).toMatch(/^Seccomp:\s+0$/);
  });

  it("verifies runAsNonRoot before start: an image that runs as root is refused, a non-root runAsUser runs", async () => {
    await cluster.client.create(pods(), podSpec("as-root", { securityContext: { runAsNonRoot: true } }));
    await cluster.client.create(pods(), podSpec("as-nobody", { securityContext: { runAsNonRoot: true, runAsUser: 65534 } }));
    const refused = await pollUntil(() => getPod("as-root"), (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === "CreateContainerConfigError", { timeoutMs: 30_000, message: "as-root to be refused" });
    expect(refused.status?.containerStatuses?.[0]?.state?.waiting?.message).toMatch(/^container has runAsNonRoot and image will run as root \(pod: "as-root_default\(.+\)", container: main\)$/);
    const running = await waitForPhase("as-nobody", "Running");
    // The kernel's word on who the container's process is.
    const id = running.status?.containerStatuses?.[0]?.containerID?.replace(/^containerd:\/\//, "") ?? "";
    const res = await suite.node.sandbox.criClient().runtime("ExecSync", { container_id: id, cmd: ["sh", "-c", "grep '^Uid:' /proc/1/status"], timeout: 10 });
    expect(res.stdout.toString()).toMatch(/^Uid:\s+65534\s/);
    // And no container of the refused pod was ever created in the runtime.
    expect(await criContainers(suite.node.sandbox.criClient(), { "io.kubernetes.pod.uid": refused.metadata?.uid ?? "" })).toEqual([]);
  });

  it("ends a pod past activeDeadlineSeconds with reason DeadlineExceeded", async () => {
    await cluster.client.create(pods(), podSpec("deadline", { activeDeadlineSeconds: 3 }));
    const pod = await waitForPhase("deadline", "Failed", 30_000);
    expect(pod.status?.reason).toBe("DeadlineExceeded");
    expect(pod.status?.message).toBe("Pod was active on the node longer than the specified deadline");
  });

  it("shows the pod with node and IP in `kubectl get pods -o wide`, and its events in `kubectl describe`", async () => {
    const wide = await cluster.kubectl(["get", "pods", "web", "-o", "wide"]);
    expect(wide.code, wide.stderr).toBe(0);
    const web = await getPod("web");
    expect(wide.stdout).toContain(suite.node.name);
    expect(wide.stdout).toContain(web.status?.podIP ?? "?");
    expect(wide.stdout).toMatch(/web\s+1\/1\s+Running/);
    const describe = await cluster.kubectl(["describe", "pod", "web"]);
    for (const reason of ["Created", "Started"]) expect(describe.stdout).toContain(reason);
  });
});
