/**
 * Per-pod cancellation: deleting a pod interrupts its in-progress image pull within a second. The image comes
 * from the test registry through a front that holds blob downloads (stalling-registry.ts), so the pull is
 * provably in progress (its blob request sits at the front) when the pod is deleted; the kubelet giving it up
 * is seen at the same place: the runtime closes that request's connection once the kubelet's PullImage call
 * is cancelled.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, type ClusterNode } from "../../harness/cluster.ts";
import { buildTestImages, variantImage } from "../../harness/images.ts";
import { PrivateRegistry } from "../../harness/registry.ts";
import { StallingRegistry, type HeldRequest } from "../../harness/stalling-registry.ts";
import { eventually, eventuallyGone } from "../../harness/wait.ts";

const cluster = new TestCluster();
let node: ClusterNode;
let registry: PrivateRegistry;
let front: StallingRegistry;
let imageDir = "";
const pods = (name?: string) => ({ group: "", version: "v1", resource: "pods", namespace: "default", ...(name ? { name } : {}) });

beforeAll(async () => {
  await cluster.start();
  node = await cluster.addNode();
  // On the host's loopback, behind the front the node reaches.
  registry = new PrivateRegistry();
  await registry.start();
  // An image the node's containerd does not have: its config blob must be downloaded (the layer is shared).
  imageDir = await mkdtemp(join(tmpdir(), "deckhand-variant-"));
  const image = await variantImage((await buildTestImages()).busybox, "localhost/stall:1", { "deckhand.test/variant": imageDir }, imageDir);
  await registry.push(image, "team/stall:1");
  front = new StallingRegistry({ registry, netnsPath: node.sandbox.netnsPath, dir: node.sandbox.dir });
  await front.start();
  await node.sandbox.trustRegistry(front.host, registry.caCertPem);
  const auth = Buffer.from(`${registry.username}:${registry.password}`).toString("base64");
  const dockerConfig = JSON.stringify({ auths: { [front.host]: { auth } } });
  await cluster.client.create({ group: "", version: "v1", resource: "secrets", namespace: "default" }, {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "creds" },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": Buffer.from(dockerConfig).toString("base64") },
  });
}, 180_000);

afterAll(async () => {
  if (node?.kubelet) console.log(`kubelet log tail:\n${await node.kubelet.logTail(Number(process.env["KUBELET_LOG_LINES"] ?? 30))}`);
  // Let any pull still waiting end, so that the node tears down.
  await front?.close();
  await registry?.stop();
  await cluster.teardown();
  if (imageDir) await rm(imageDir, { recursive: true, force: true });
});

describe("per-pod cancellation", () => {
  // The harness's own check, without the kubelet: a PullImage call cancelled by its caller makes containerd
  // close the held download at once. Without it, the test below could not tell a kubelet that does not
  // cancel from a runtime that does not react.
  it("sees the runtime give up a held pull as soon as its PullImage call is cancelled", async () => {
    front.holdBlobs = true;
    const cri = node.sandbox.criClient();
    const caller = new AbortController();
    const pulling = cri
      .image("PullImage", { image: { image: front.ref("team/stall:1") }, auth: { username: registry.username, password: registry.password } }, { signal: caller.signal })
      .then(() => "pulled", (err: unknown) => err);
    const held = await eventually(() => front.held.find((h) => h.closedAt === undefined), { timeoutMs: 30_000, message: "the pull to reach a held blob download" });
    const cancelledAt = performance.now();
    caller.abort();
    const closedAt = await eventually(() => held.closedAt, { timeoutMs: 5000, intervalMs: 20, message: "containerd to close the held download" });
    expect(closedAt - cancelledAt).toBeLessThanOrEqual(1000);
    expect(await pulling).not.toBe("pulled");
    expect((await cri.image("ImageStatus", { image: { image: front.ref("team/stall:1") } })).image).toBeNull();
  }, 60_000);

  // Expected to fail until the kubelet aborts a pod's own signal on deletion (the core rework): today the pull
  // runs on, and the deletion waits for it.
  it("a deletion interrupts an in-progress image pull within a second", async () => {
    front.holdBlobs = true;
    const created = await cluster.client.create<V1Pod>(pods(), {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "stalled", namespace: "default" },
      spec: {
        nodeName: node.name,
        terminationGracePeriodSeconds: 30,
        imagePullSecrets: [{ name: "creds" }],
        containers: [{ name: "main", image: front.ref("team/stall:1"), imagePullPolicy: "Always", command: ["sleep", "3600"] }],
      },
    });
    const uid = created.metadata?.uid ?? "";
    // The kubelet says it is pulling, and the pull has reached a blob download that gets no answer.
    await eventually(async () => {
      const res = await cluster.kubectl(["get", "events", "--field-selector", "involvedObject.name=stalled", "-o", "jsonpath={.items[*].reason}"]);
      return res.stdout.split(" ").includes("Pulling");
    }, { timeoutMs: 60_000, message: "the Pulling event" });
    const held: HeldRequest = await eventually(() => front.held.find((h) => h.closedAt === undefined), { timeoutMs: 30_000, message: "the pull to reach a held blob download" });

    const deletedAt = performance.now();
    await cluster.client.delete(pods("stalled"));
    // At the source: the runtime closes the held download once the kubelet cancels its PullImage call.
    const closedAt = await eventually(() => held.closedAt, {
      timeoutMs: 15_000,
      intervalMs: 20,
      message: "the kubelet to give up the held image pull (the runtime closing the blob download)",
    });
    expect(closedAt - deletedAt, "ms from the delete to the pull's connection closed").toBeLessThanOrEqual(1000);

    // And the pod is gone, from the API and from the runtime, with no image pulled.
    await eventuallyGone(() => cluster.client.get(pods("stalled")), { timeoutMs: 30_000, message: "the pod to be gone from the API" });
    const cri = node.sandbox.criClient();
    expect((await cri.runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.uid": uid } } })).items).toEqual([]);
    expect((await cri.runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.uid": uid } } })).containers).toEqual([]);
    expect((await cri.image("ImageStatus", { image: { image: front.ref("team/stall:1") } })).image).toBeNull();
  }, 180_000);
});
