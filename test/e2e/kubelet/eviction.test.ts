/**
 * Node-pressure eviction and image GC end to end, with real pressure on sandbox nodes of one test cluster:
 *
 * - memory: allocatable made small with kubeReserved (MemTotal − 400 Mi), hard memory.available 250Mi (copied to
 *   allocatableMemory.available: enforceNodeAllocatable pods), so pods' working set past 150 Mi crosses it with
 *   little real allocation (the host is shared: it is never pushed near real pressure). A best-effort pod fills
 *   a memory emptyDir past it: it is evicted first (Failed/Evicted, upstream's message, DisruptionTarget, event),
 *   within a couple of seconds (the memory watch), a guaranteed and a burstable pod keep running, MemoryPressure
 *   goes True, a best-effort pod is refused meanwhile, and the condition clears after the transition period;
 * - an emptyDir past its sizeLimit, and a container's writable layer past its ephemeral-storage limit, evict the pod;
 * - nodefs.available set just below what is free now: a pod filling an emptyDir crosses it, DiskPressure, node
 *   reclaim attempted (EvictionThresholdMet), the pod evicted, the condition cleared;
 * - pid.available set just below what is free now: a fork loop crosses it, PIDPressure and that pod evicted;
 * - image GC (high 1%, low 0%, minimum age 15 s: time for the pod to use its image): an unused image removed, the one a pod uses kept.
 */
import type { CoreV1Event, V1Node, V1Pod } from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";
import type { ClusterNode } from "../../harness/cluster.ts";
import { buildTestImages, importImages, variantImage } from "../../harness/images.ts";
import { eventually } from "../../harness/wait.ts";

const Mi = 1024 * 1024;
const memTotal = Number(/MemTotal:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? "0") * 1024;
const TRANSITION_S = 15;

const suite = clusterWithOneNode({
  config: {
    kubeReserved: { memory: `${memTotal - 400 * Mi}` },
    evictionHard: { "memory.available": "250Mi" },
    evictionPressureTransitionPeriod: `${TRANSITION_S}s`,
  },
});
const cluster = suite.cluster;
const run = `ev${Date.now().toString(36)}`;

type Spec = NonNullable<V1Pod["spec"]>;

function pod(name: string, nodeName: string, script: string, spec: Partial<Spec> = {}, resources?: { requests?: Record<string, string>; limits?: Record<string, string> }): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `${run}-${name}`, namespace: "default", labels: { run } },
    spec: {
      nodeName,
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      containers: [{
        name,
        image: "localhost/busybox:1",
        imagePullPolicy: "IfNotPresent",
        command: ["sh", "-c", script],
        // Each volume at /<its name>.
        volumeMounts: (spec.volumes ?? []).map((v) => ({ name: v.name, mountPath: `/${v.name}` })),
        ...(resources ? { resources } : {}),
      }],
      ...spec,
    },
  };
}

const get = (name: string): Promise<V1Pod> => cluster.client.get<V1Pod>(podsRef(`${run}-${name}`));

async function waitFor(name: string, ok: (p: V1Pod) => boolean, what: string, timeoutMs = 60_000): Promise<V1Pod> {
  return eventually(async () => {
    const p = await get(name);
    return ok(p) ? p : undefined;
  }, { timeoutMs, message: `pod ${name}: ${what}`, diagnose: async () => JSON.stringify((await get(name)).status) });
}

async function nodeCondition(node: string, type: string): Promise<{ status?: string; reason?: string } | undefined> {
  const n = await cluster.client.get<V1Node>({ group: "", version: "v1", resource: "nodes", name: node });
  return n.status?.conditions?.find((c) => c.type === type);
}

async function events(name: string): Promise<CoreV1Event[]> {
  const res = await cluster.kubectl(["get", "events", "-n", "default", "--field-selector", `involvedObject.kind=Pod,involvedObject.name=${run}-${name}`, "-o", "json"]);
  return (JSON.parse(res.stdout) as { items: CoreV1Event[] }).items;
}

/** The pod's containers as the runtime has them (the source of truth for "keeps running"). */
async function runtimeContainers(node: ClusterNode, p: V1Pod): Promise<{ state: string; attempt: number }[]> {
  const { containers } = await node.sandbox.criClient().runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.uid": p.metadata?.uid ?? "" } } });
  return containers.map((c) => ({ state: c.state, attempt: c.metadata?.attempt ?? 0 }));
}

const evicted = (p: V1Pod): boolean => p.status?.phase === "Failed" && p.status.reason === "Evicted";

describe("memory pressure", () => {
  it("evicts the best-effort pod over its request first, fast, with upstream's status, condition and event; the others keep running", async () => {
    const node = suite.node;
    const guaranteed = await cluster.client.create<V1Pod>(podsRef(), pod("guaranteed", node.name, "exec sleep 3600", {}, { requests: { cpu: "10m", memory: "20Mi" }, limits: { cpu: "10m", memory: "20Mi" } }));
    const burstable = await cluster.client.create<V1Pod>(podsRef(), pod("burstable", node.name, "exec sleep 3600", {}, { requests: { memory: "10Mi" } }));
    // The hog fills a memory emptyDir (tmpfs pages are charged to its cgroup) once told to, then sleeps.
    await cluster.client.create<V1Pod>(podsRef(), pod("hog", node.name, "while [ ! -e /fill/go ]; do sleep 0.1; done; dd if=/dev/zero of=/fill/data bs=1M count=200 2>/dev/null; exec sleep 3600", {
      volumes: [{ name: "fill", emptyDir: { medium: "Memory", sizeLimit: "300Mi" } }],
    }));
    for (const n of ["guaranteed", "burstable", "hog"]) await waitFor(n, (p) => p.status?.phase === "Running", "Running");
    expect((await nodeCondition(node.name, "MemoryPressure"))?.status).toBe("False");

    const hog = await get("hog");
    const cri = node.sandbox.criClient();
    const { containers } = await cri.runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.uid": hog.metadata?.uid ?? "" } } });
    const hogId = containers.find((c) => c.state === "CONTAINER_RUNNING")?.id ?? "";
    // The marker is made inside the container (CRI ExecSync): from then on the hog writes.
    const mark = Date.now();
    await cri.runtime("ExecSync", { container_id: hogId, cmd: ["touch", "/fill/go"], timeout: 10 });
    const out = await waitFor("hog", evicted, "evicted", 30_000);
    const took = Date.now() - mark;
    // The write itself takes a fraction of a second; the 10 s pass alone would often take longer than this.
    expect(took).toBeLessThan(8000);
    const message = out.status?.message ?? "";
    expect(message).toMatch(/^The node was low on resource: memory\. Threshold quantity: 250Mi, available: \d+(Ki|Mi)?\. Container hog was using \d+(Ki|Mi)?, request is 0, has larger consumption of memory\. $/);
    expect(out.status?.conditions?.find((c) => c.type === "DisruptionTarget")).toMatchObject({ status: "True", reason: "TerminationByKubelet", message });
    await eventually(async () => (await events("hog")).find((e) => e.reason === "Evicted" && e.type === "Warning" && e.message === message), { timeoutMs: 10_000, message: "Evicted event" });
    await eventually(async () => (await nodeCondition(node.name, "MemoryPressure"))?.reason === "KubeletHasInsufficientMemory", { timeoutMs: 10_000, message: "MemoryPressure True" });

    const metrics = await cluster.kubectl(["get", "--raw", `/api/v1/nodes/${node.name}/proxy/metrics`]);
    expect(metrics.stdout).toContain('kubelet_evictions{eviction_signal="allocatableMemory.available"} 1\n');

    // Under memory pressure, a best-effort pod is refused with upstream's reason.
    await cluster.client.create<V1Pod>(podsRef(), pod("late", node.name, "exec sleep 3600"));
    const late = await waitFor("late", (p) => p.status?.phase === "Failed", "refused", 20_000);
    expect(late.status).toMatchObject({ reason: "Evicted", message: "The node had condition: [MemoryPressure]. " });

    // The others were never touched: same containers, running, first attempt.
    for (const p of [guaranteed, burstable]) expect(await runtimeContainers(node, p)).toEqual([{ state: "CONTAINER_RUNNING", attempt: 0 }]);
    expect((await get("guaranteed")).status?.phase).toBe("Running");

    // The hog's memory is gone with its volume; the condition clears once the transition period has passed.
    await eventually(async () => (await nodeCondition(node.name, "MemoryPressure"))?.reason === "KubeletHasSufficientMemory", { timeoutMs: (TRANSITION_S + 30) * 1000, message: "MemoryPressure back to False" });
    for (const p of [guaranteed, burstable]) expect(await runtimeContainers(node, p)).toEqual([{ state: "CONTAINER_RUNNING", attempt: 0 }]);
  });

  it("evicts a pod whose emptyDir grows past its sizeLimit", async () => {
    const node = suite.node;
    await cluster.client.create<V1Pod>(podsRef(), pod("scratch", node.name, "dd if=/dev/zero of=/scratch/data bs=1M count=4 2>/dev/null; exec sleep 3600", { volumes: [{ name: "scratch", emptyDir: { sizeLimit: "1Mi" } }] }));
    const p = await waitFor("scratch", evicted, "evicted for its emptyDir", 40_000);
    expect(p.status?.message).toBe('Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ');
    await eventually(async () => (await events("scratch")).some((e) => e.reason === "Evicted" && e.message === p.status?.message), { timeoutMs: 10_000, message: "Evicted event" });
  });

  it("evicts a pod whose container writes past its ephemeral-storage limit (writable layer, as containerd measures it)", async () => {
    const node = suite.node;
    await cluster.client.create<V1Pod>(podsRef(), pod("layer", node.name, "dd if=/dev/zero of=/data bs=1M count=4 2>/dev/null; exec sleep 3600", {}, { limits: { "ephemeral-storage": "2Mi" } }));
    const p = await waitFor("layer", evicted, "evicted for its writable layer", 40_000);
    // The pod's total is checked before each container's, as upstream.
    expect(p.status?.message).toBe("Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ");
  });
});

describe("disk pressure", () => {
  let node: ClusterNode;
  beforeAll(async () => {
    // nodefs.available now, less a margin a pod's write passes (the disk is shared: others' writes move it too).
    const fs = await statfs("/var/lib");
    const available = fs.bavail * fs.bsize;
    node = await cluster.addNode({ config: { evictionHard: { "nodefs.available": String(available - 300 * Mi) }, evictionPressureTransitionPeriod: `${TRANSITION_S}s` } });
  });

  it("a pod filling the node's filesystem past nodefs.available sets DiskPressure and is evicted after node-level reclaim", async () => {
    await cluster.client.create<V1Pod>(podsRef(), pod("writer", node.name, "dd if=/dev/zero of=/data/fill bs=1M count=700 2>/dev/null; exec sleep 3600", { volumes: [{ name: "data", emptyDir: {} }] }));
    const p = await waitFor("writer", evicted, "evicted for disk pressure", 90_000);
    // Upstream's container part counts the writable layer and logs (not volumes): the writer's shell wrote little.
    expect(p.status?.message).toMatch(/^The node was low on resource: ephemeral-storage\. Threshold quantity: \d+, available: \d+(Ki|Mi)?\. Container writer was using \d+(Ki|Mi)?, request is 0, has larger consumption of ephemeral-storage\. $/);
    await eventually(async () => (await nodeCondition(node.name, "DiskPressure"))?.reason === "KubeletHasDiskPressure", { timeoutMs: 10_000, message: "DiskPressure True" });
    const nodeEvents = JSON.parse((await cluster.kubectl(["get", "events", "-n", "default", "--field-selector", `involvedObject.kind=Node,involvedObject.name=${node.name},reason=EvictionThresholdMet`, "-o", "json"])).stdout) as { items: CoreV1Event[] };
    expect(nodeEvents.items[0]).toMatchObject({ type: "Warning", message: "Attempting to reclaim ephemeral-storage" });
    // Its emptyDir goes with it: the pressure ends, and the condition after the transition period.
    await eventually(async () => (await nodeCondition(node.name, "DiskPressure"))?.reason === "KubeletHasNoDiskPressure", { timeoutMs: (TRANSITION_S + 30) * 1000, message: "DiskPressure back to False" });
  });
});

describe("PID pressure", () => {
  let node: ClusterNode;
  beforeAll(async () => {
    // pid.available now, less a margin the fork loop below passes and the machine's own churn does not.
    const maxPid = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8"));
    const procs = Number(readFileSync("/proc/loadavg", "utf8").split(" ")[3]?.split("/")[1]);
    node = await cluster.addNode({ config: { evictionHard: { "pid.available": String(maxPid - procs - 600) }, evictionPressureTransitionPeriod: `${TRANSITION_S}s` } });
  });

  it("a fork loop crossing pid.available sets PIDPressure and evicts that pod", async () => {
    await cluster.client.create<V1Pod>(podsRef(), pod("quiet", node.name, "exec sleep 3600"));
    await waitFor("quiet", (p) => p.status?.phase === "Running", "Running");
    await cluster.client.create<V1Pod>(podsRef(), pod("forker", node.name, "i=0; while [ $i -lt 1500 ]; do sleep 3600 & i=$((i+1)); done; wait"));
    const p = await waitFor("forker", evicted, "evicted", 60_000);
    expect(p.status?.message).toMatch(/^The node was low on resource: pids\. Threshold quantity: \d+k?, available: \d+k?\. $/);
    expect((await nodeCondition(node.name, "PIDPressure"))?.status).toBe("True");
    expect((await get("quiet")).status?.phase).toBe("Running");
  });
});

describe("image GC", () => {
  let node: ClusterNode;
  let dir: string;
  beforeAll(async () => {
    node = await cluster.addNode({ config: { imageGCHighThresholdPercent: 1, imageGCLowThresholdPercent: 0, imageMinimumGCAge: "15s" } });
    dir = await mkdtemp(join(tmpdir(), `${run}-img-`));
    const unused = await variantImage((await buildTestImages()).busybox, "localhost/unused:1", { "deckhand.test/variant": run }, dir);
    await importImages({ address: node.sandbox.containerdSocket, images: [unused] });
    return () => rm(dir, { recursive: true, force: true });
  });

  it("removes an unused image and keeps the one a pod uses", async () => {
    await cluster.client.create<V1Pod>(podsRef(), pod("user", node.name, "exec sleep 3600"));
    await waitFor("user", (p) => p.status?.phase === "Running", "Running");
    const cri = node.sandbox.criClient();
    const tags = async (): Promise<string[]> => (await cri.image("ListImages", { filter: null })).images.flatMap((i) => i.repo_tags);
    await eventually(async () => !(await tags()).includes("localhost/unused:1"), { timeoutMs: 60_000, message: "unused image removed" });
    const left = await tags();
    expect(left).toContain("localhost/busybox:1");
    expect(left).toContain("localhost/pause:1");
  });
});
