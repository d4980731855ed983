/**
 * The service account token end to end, as an in-cluster client uses it: the kubelet mounts the API server's
 * kube-api-access-* volume, and a pod reads its token and calls the API through the `kubernetes` Service's
 * ClusterIP, routed by the real kube-proxy inside the node. The API serves that Service with an EndpointSlice
 * as a real one does; here its endpoint is an address of the node (the node IP, where the test forwards to
 * the control plane on the host), as an API server's address reachable from pods would be.
 */
import type { ChildProcess } from "node:child_process";
import { realpathSync } from "node:fs";
import { dirname } from "node:path";
import type { V1Pod, V1Service } from "@kubernetes/client-node";
import { afterAll, describe, expect, it } from "vitest";
import { clusterWithOneNode } from "../../harness/cluster-suite.ts";
import { startNetnsForwarder } from "../../harness/cluster.ts";
import { eventually } from "../../harness/wait.ts";

// Short tokens allowed, for the refresh test (kube-apiserver's minimum is 10 minutes).
const suite = clusterWithOneNode({}, { minTokenExpirationSeconds: 10 });
const cluster = suite.cluster;
const SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";
const API_PORT = 6443;
let proxy: ChildProcess | undefined;
let forwarder: ChildProcess | undefined;
let proxyLog: () => string = () => "";

/** A pod on the suite's node, by the API. */
function createPod(name: string, spec: Omit<NonNullable<V1Pod["spec"]>, "nodeName" | "terminationGracePeriodSeconds">): Promise<V1Pod> {
  return cluster.client.create<V1Pod>({ group: "", version: "v1", resource: "pods", namespace: "default" }, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: { nodeName: suite.node.name, terminationGracePeriodSeconds: 1, ...spec },
  });
}

afterAll(() => {
  proxy?.kill("SIGKILL");
  forwarder?.kill("SIGKILL");
  if (proxyLog()) console.log(`kube-proxy log tail:\n${proxyLog().split("\n").slice(-15).join("\n")}`);
});

describe("service account token", () => {
  it("lets a pod call the API with its token through the kubernetes Service's ClusterIP", async () => {
    const node = suite.node;
    const nodeIP = node.sandbox.nodeIP ?? "";
    // The API reachable at the node's address, and the kubernetes EndpointSlice pointing there.
    forwarder = await startNetnsForwarder(node.sandbox.netnsPath, API_PORT, node.apiLink.socketPath ?? "", "the pods' API forwarder", nodeIP);
    await cluster.client.patch(
      { group: "discovery.k8s.io", version: "v1", resource: "endpointslices", namespace: "default", name: "kubernetes" },
      "merge",
      { endpoints: [{ addresses: [nodeIP], conditions: { ready: true, serving: true, terminating: false } }], ports: [{ name: "https", port: API_PORT, protocol: "TCP" }] },
    );
    const svc = await cluster.client.get<V1Service>({ group: "", version: "v1", resource: "services", namespace: "default", name: "kubernetes" });
    const vip = svc.spec?.clusterIP ?? "";
    expect(vip).toBe("10.96.0.1");

    const started = await node.startKubeProxy();
    proxy = started.child;
    proxyLog = started.log;

    // The pod asks the API who it is (SelfSubjectReview) as an in-cluster client does: the token and the CA of the
    // mounted volume, the server's certificate verified for the VIP. busybox's TLS cannot talk to the API, so the
    // client is the host's Node, given to the pod by read-only hostPath volumes (its binary and the libraries).
    const client = [
      'const fs = require("fs"), https = require("https"), d = "' + SA_PATH + '";',
      "const ask = () => {",
      `  const req = https.request({ host: "${vip}", port: 443, method: "POST", path: "/apis/authentication.k8s.io/v1/selfsubjectreviews", ca: fs.readFileSync(d + "/ca.crt"),`,
      '    headers: { authorization: "Bearer " + fs.readFileSync(d + "/token", "utf8"), "content-type": "application/json" } }, (res) => {',
      '    let body = ""; res.on("data", (c) => (body += c)); res.on("end", () => fs.writeFileSync(res.statusCode === 201 ? "/tmp/whoami" : "/tmp/err", res.statusCode + " " + body));',
      "  });",
      '  req.on("error", (e) => fs.writeFileSync("/tmp/err", String(e)));',
      '  req.end(JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }));',
      "};",
      "ask(); setInterval(ask, 1000);",
    ].join("\n");
    const nodeBin = dirname(realpathSync(process.execPath));
    const ro = (name: string, path: string, mountPath: string) => ({ volume: { name, hostPath: { path, type: "Directory" } }, mount: { name, mountPath, readOnly: true } });
    const host = [ro("node-bin", nodeBin, "/nodebin"), ro("usr", "/usr", "/usr"), ro("lib", "/usr/lib", "/lib"), ro("lib64", "/usr/lib64", "/lib64")];
    const created = await createPod("in-cluster-client", {
      volumes: host.map((h) => h.volume),
      containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["/nodebin/node", "-e", client], volumeMounts: host.map((h) => h.mount) }],
    });
    const cri = node.sandbox.criClient();
    let podError = "";
    const whoami = await eventually(async () => {
      const { containers } = await cri.runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.uid": created.metadata?.uid ?? "" }, state: { state: "CONTAINER_RUNNING" } } });
      const id = containers[0]?.id;
      if (!id) return undefined;
      const res = await cri.runtime("ExecSync", { container_id: id, cmd: ["cat", "/tmp/whoami"], timeout: 5 });
      if (res.exit_code === 0) return Buffer.from(res.stdout).toString("utf8").replace(/^201 /, "");
      podError = Buffer.from((await cri.runtime("ExecSync", { container_id: id, cmd: ["cat", "/tmp/err"], timeout: 5 })).stdout).toString("utf8");
      return undefined;
    }, { timeoutMs: 60_000, intervalMs: 500, message: "the pod's API call through the VIP", diagnose: () => `pod: ${podError}\nkube-proxy: ${proxyLog().split("\n").slice(-5).join("\n")}` });
    const review = JSON.parse(whoami) as { kind?: string; status?: { userInfo?: { username?: string; extra?: Record<string, string[]> } } };
    expect(review.kind).toBe("SelfSubjectReview");
    expect(review.status?.userInfo?.username).toBe("system:serviceaccount:default:default");
    expect(review.status?.userInfo?.extra?.["authentication.kubernetes.io/pod-name"]).toEqual(["in-cluster-client"]);
    expect(review.status?.userInfo?.extra?.["authentication.kubernetes.io/pod-uid"]).toEqual([created.metadata?.uid]);
  }, 180_000);

  it("refreshes a projected token at 80% of its life, the new one written atomically and accepted as the pod's", async () => {
    const node = suite.node;
    const created = await createPod("short-token", {
      automountServiceAccountToken: false,
      volumes: [{ name: "tok", projected: { sources: [{ serviceAccountToken: { path: "token", audience: "vault", expirationSeconds: 20 } }] } }],
      containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"], volumeMounts: [{ name: "tok", mountPath: "/tok" }] }],
    });
    const cri = node.sandbox.criClient();
    const read = async (): Promise<string | undefined> => {
      const { containers } = await cri.runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.uid": created.metadata?.uid ?? "" }, state: { state: "CONTAINER_RUNNING" } } });
      const id = containers[0]?.id;
      if (!id) return undefined;
      const res = await cri.runtime("ExecSync", { container_id: id, cmd: ["cat", "/tok/token"], timeout: 5 });
      return res.exit_code === 0 ? Buffer.from(res.stdout).toString("utf8") : undefined;
    };
    const first = await eventually(read, { timeoutMs: 60_000, message: "the first token" });
    const t0 = Date.now();
    // 80% of 20 s is 16 s, less up to 10 s of jitter: between 6 and 16 s after it was issued.
    const second = await eventually(async () => {
      const t = await read();
      return t !== undefined && t !== first ? t : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500, message: "the refreshed token" });
    expect(Date.now() - t0).toBeLessThan(17_000);
    const review = async (token: string) =>
      cluster.client.create<{ status?: { authenticated?: boolean; audiences?: string[]; user?: { extra?: Record<string, string[]> } } }>(
        { group: "authentication.k8s.io", version: "v1", resource: "tokenreviews" },
        { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences: ["vault"] } },
      );
    const r = await review(second);
    expect(r.status?.authenticated).toBe(true);
    expect(r.status?.audiences).toEqual(["vault"]);
    expect(r.status?.user?.extra?.["authentication.kubernetes.io/pod-uid"]).toEqual([created.metadata?.uid]);
  }, 120_000);
});
