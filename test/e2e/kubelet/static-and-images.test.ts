/**
 * Static pods from the manifest folder (with their mirror pods in the API), and real image pulls: from a
 * private registry (TLS from a test CA, htpasswd) through an imagePullSecret, with a wrong secret and a
 * missing image giving messages that say which.
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, type ClusterNode } from "../../harness/cluster.ts";
import { eventually } from "../../harness/wait.ts";
import { PrivateRegistry } from "../../harness/registry.ts";
import { buildTestImages } from "../../harness/images.ts";

const cluster = new TestCluster();
let node: ClusterNode;
let registry: PrivateRegistry;
const pods = (name?: string) => ({ group: "", version: "v1", resource: "pods", namespace: "default", ...(name ? { name } : {}) });

beforeAll(async () => {
  await cluster.start();
  node = await cluster.addNode();
  registry = new PrivateRegistry({ netnsPath: node.sandbox.netnsPath });
  await registry.start();
  await node.sandbox.trustRegistry(registry.host, registry.caCertPem);
  await registry.push((await buildTestImages()).busybox, "team/busybox:1");
});

afterAll(async () => {
  if (node?.kubelet) console.log(`kubelet log tail:\n${await node.kubelet.logTail(Number(process.env["KUBELET_LOG_LINES"] ?? 20))}`);
  await registry?.stop();
  await cluster.teardown();
});

async function getPod(name: string): Promise<V1Pod | undefined> {
  return cluster.client.get<V1Pod>(pods(name)).catch(() => undefined);
}

function dockerConfigSecret(name: string, password: string): unknown {
  const auth = Buffer.from(`${registry.username}:${password}`).toString("base64");
  const config = JSON.stringify({ auths: { [registry.host]: { auth } } });
  return { apiVersion: "v1", kind: "Secret", metadata: { name }, type: "kubernetes.io/dockerconfigjson", data: { ".dockerconfigjson": Buffer.from(config).toString("base64") } };
}

function pullingPod(name: string, image: string, secret?: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      nodeName: node.name,
      ...(secret ? { imagePullSecrets: [{ name: secret }] } : {}),
      containers: [{ name: "main", image, imagePullPolicy: "Always", command: ["sleep", "3600"] }],
    },
  };
}

async function waitingReason(name: string, reasons: string[]): Promise<{ reason: string; message: string }> {
  return eventually(async () => {
    const w = (await getPod(name))?.status?.containerStatuses?.[0]?.state?.waiting;
    return w?.reason && reasons.includes(w.reason) ? { reason: w.reason, message: w.message ?? "" } : undefined;
  }, { timeoutMs: 40_000, message: `${name} waiting with ${reasons.join("/")}` });
}

describe("static pods", () => {
  it("runs a manifest from the folder, mirrors it in the API, and removes both when the file goes", async () => {
    const manifests = join(node.sandbox.dir, "manifests");
    await writeFile(
      join(manifests, "static-web.yaml"),
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: static-web\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: web\n    image: localhost/busybox:1\n    imagePullPolicy: IfNotPresent\n    command: ["sleep", "3600"]\n`,
    );
    await writeFile(join(manifests, "broken.yaml"), "kind: Pod\napiVersion: v1\nmetadata: {}\n");
    const mirrorName = `static-web-${node.name}`;
    const mirror = await eventually(async () => {
      const p = await getPod(mirrorName);
      return p?.status?.phase === "Running" ? p : undefined;
    }, { timeoutMs: 60_000, message: "the mirror pod to report Running" });
    // The mirror names the static pod it stands for: its hash, which is the uid the pod runs under in the runtime.
    const hash = mirror.metadata?.annotations?.["kubernetes.io/config.hash"] ?? "";
    expect(mirror.metadata?.annotations?.["kubernetes.io/config.mirror"]).toBe(hash);
    // (The ready one: a first attempt may have failed while the node's network was not configured yet.)
    const { items: sandboxes } = await node.sandbox.criClient().runtime("ListPodSandbox", { filter: { state: { state: "SANDBOX_READY" }, label_selector: { "io.kubernetes.pod.name": mirrorName } } });
    expect(sandboxes.map((sb) => sb.metadata?.uid)).toEqual([hash]);
    expect(mirror.metadata?.uid).not.toBe(hash);
    expect(mirror.metadata?.annotations?.["kubernetes.io/config.source"]).toBe("file");
    expect(mirror.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "Node", name: node.name });
    expect(mirror.spec?.nodeName).toBe(node.name);

    // Deleting the mirror pod does not stop the static pod: the kubelet recreates the mirror.
    const firstUid = mirror.metadata?.uid;
    await cluster.client.delete(pods(mirrorName), { gracePeriodSeconds: 0 });
    await eventually(async () => {
      const p = await getPod(mirrorName);
      return p && p.metadata?.uid !== firstUid ? p : undefined;
    }, { timeoutMs: 30_000, message: "the mirror pod to come back" });

    await rm(join(manifests, "static-web.yaml"));
    await eventually(async () => ((await getPod(mirrorName)) ? undefined : true), { timeoutMs: 60_000, message: "the mirror pod to go" });
    await eventually(async () => {
      const { items } = await node.sandbox.criClient().runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.name": mirrorName } } });
      return items.length === 0 ? true : undefined;
    }, { timeoutMs: 30_000, message: "the static pod's sandbox to go" });
  }, 150_000);
});

describe("image pulls", () => {
  it("pulls from a private registry with an imagePullSecret, with Pulling and Pulled events", async () => {
    await cluster.client.create({ group: "", version: "v1", resource: "secrets", namespace: "default" }, dockerConfigSecret("good-creds", registry.password));
    await cluster.client.create(pods(), pullingPod("private", registry.ref("team/busybox:1"), "good-creds"));
    const pod = await eventually(async () => {
      const p = await getPod("private");
      return p?.status?.phase === "Running" ? p : undefined;
    }, { timeoutMs: 60_000, message: "private to run" });
    expect(pod.status?.containerStatuses?.[0]?.imageID).toContain("sha256:");
    const events = await cluster.kubectl(["get", "events", "--field-selector", "involvedObject.name=private", "-o", "json"]);
    const reasons = (JSON.parse(events.stdout) as { items: { reason: string }[] }).items.map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(["Pulling", "Pulled", "Created", "Started"]));
  });

  it("says ErrImagePull then ImagePullBackOff for a wrong secret, naming the registry's refusal", async () => {
    await cluster.client.create({ group: "", version: "v1", resource: "secrets", namespace: "default" }, dockerConfigSecret("bad-creds", "wrong"));
    await cluster.client.create(pods(), pullingPod("wrong-secret", registry.ref("team/busybox:1"), "bad-creds"));
    const first = await waitingReason("wrong-secret", ["ErrImagePull", "ImagePullBackOff"]);
    expect(first.message).toMatch(/401|unauthorized/i);
    expect(first.message).toContain(registry.ref("team/busybox:1"));
    await waitingReason("wrong-secret", ["ImagePullBackOff"]);
  });

  it("says which image is missing", async () => {
    await cluster.client.create(pods(), pullingPod("missing", registry.ref("team/nothing-here:1"), "good-creds"));
    const w = await waitingReason("missing", ["ErrImagePull", "ImagePullBackOff"]);
    expect(w.message).toContain("team/nothing-here:1");
    expect(w.message).toMatch(/not found/i);
  });
});
