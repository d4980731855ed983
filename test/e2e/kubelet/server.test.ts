/**
 * The kubelet API (:10250) and health server (:10248) on a sandbox node, reached as the control plane reaches
 * them (through the node's CONNECT proxy) and through the control plane with real kubectl: `kubectl logs`
 * (tail, timestamps, limit, -f seeing new lines and reading on across rotations, --previous after a restart),
 * `exec` (exit code, stdin, large output, a TTY), `cp` both ways, `attach`, `port-forward`, `get --raw` through
 * the node proxy (/healthz, /pods, /metrics checked by promtool, /configz), and direct calls refused as
 * upstream refuses them (401 without or with bad credentials, 403 for a user without rights, RBAC honoured).
 * kubectl 1.32 streams over WebSocket: exec and attach translated to SPDY by the control plane, port-forward
 * tunnelled, checked through the control plane's count of how each session was served (no SPDY fallback);
 * SPDY itself with kubectl's WebSocket switches off; and the kubelet taking WebSocket directly (v4).
 */
import http from "node:http";
import tls from "node:tls";
import { spawn } from "node:child_process";
import { readFile, readdir, readlink, writeFile, mkdtemp, rm } from "node:fs/promises";
import { createHash, X509Certificate } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, describe, expect, it } from "vitest";
import { busyboxPod, clusterWithOneNode, createRunningPod, podsRef } from "../../harness/cluster-suite.ts";
import { eventually } from "../../harness/wait.ts";
import { run } from "../../../src-shared/exec.ts";
import { hasPromtool, promtoolCheck } from "../../harness/promtool.ts";
import { createCA, issueCert, type KeyAndCert } from "../../control-plane/pki.ts";
import { connectWebSocket } from "../../control-plane/websocket.ts";

// Small logs rotate within a test: 4 KiB, looked at every 3 s (upstream's minimum).
// --v=2: debug, where the kubelet logs each API request and stream with its identity and verdict.
const suite = clusterWithOneNode({ config: { containerLogMaxSize: "4Ki", containerLogMonitorInterval: "3s", containerLogMaxFiles: 3 }, flags: ["--v=2"] });
const cluster = suite.cluster;
const scratch = mkdtemp(join(tmpdir(), "deckhand-kubelet-api-"));
afterAll(async () => rm(await scratch, { recursive: true, force: true }));

/** How the control plane served streaming upgrades since `before` ("spdy 101", "websocket-translated 200", …). */
function streamCounts(): Map<string, number> {
  return new Map(cluster.controlPlane.streamRequests);
}
function streamsSince(before: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of cluster.controlPlane.streamRequests) if (v !== (before.get(k) ?? 0)) out[k] = v - (before.get(k) ?? 0);
  return out;
}
/** kubectl with WebSocket streaming turned off: it speaks SPDY (remote command and port-forward). */
const SPDY_ONLY = { ...process.env, KUBECTL_REMOTE_COMMAND_WEBSOCKETS: "false", KUBECTL_PORT_FORWARD_WEBSOCKETS: "false" };

function podSpec(name: string, script: string, restartPolicy = "Always"): V1Pod {
  return busyboxPod(name, suite.node.name, script, { spec: { restartPolicy } });
}

function runningPod(name: string, script: string): Promise<V1Pod> {
  return createRunningPod(cluster, podSpec(name, script));
}

interface Answer {
  status: number;
  body: string;
  peerCert?: tls.PeerCertificate;
}

/** A request to the node's kubelet from inside the node's network (as the control plane makes it). */
async function kubelet(path: string, o: { token?: string; cert?: KeyAndCert; port?: number; plain?: boolean; host?: string } = {}): Promise<Answer> {
  const host = o.host ?? suite.node.sandbox.nodeIP ?? "";
  const raw = await suite.node.dial(host, o.port ?? 10250);
  const socket = o.plain ? raw : tls.connect({ socket: raw, rejectUnauthorized: false, ...(o.cert ? { key: o.cert.keyPem, cert: o.cert.certPem } : {}) });
  return new Promise((resolve, reject) => {
    const req = http.request({ path, headers: o.token ? { Authorization: `Bearer ${o.token}` } : {}, createConnection: () => socket }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const a: Answer = { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") };
        if (!o.plain) a.peerCert = (socket as tls.TLSSocket).getPeerCertificate();
        resolve(a);
      });
    });
    req.on("error", reject);
    req.end();
  });
}

/** The kubelet's health server answers (the kubelet started its servers). */
function serving(): Promise<Answer> {
  return eventually(() => kubelet("/healthz", { host: "127.0.0.1", port: 10248, plain: true }).catch(() => undefined), { timeoutMs: 30_000, message: "the health server" });
}

describe("the kubelet API", () => {
  it("serves /healthz on 127.0.0.1:10248 and, over TLS with the self-signed certificate it wrote, on 10250", async () => {
    const plain = await serving();
    expect(plain).toMatchObject({ status: 200, body: "ok" });
    const admin = await cluster.controlPlane.issueClientCert("kubernetes-admin", ["system:masters"]);
    const tlsAnswer = await kubelet("/healthz", { cert: admin });
    expect(tlsAnswer).toMatchObject({ status: 200, body: "ok" });
    // The certificate served is the one written under --cert-dir (default /var/lib/kubelet/pki), for the node name.
    const written = await readFile(suite.node.sandbox.hostPath("/var/lib/kubelet/pki/kubelet.crt"), "utf8");
    const leaf = new X509Certificate(written);
    expect(tlsAnswer.peerCert?.fingerprint256).toBe(leaf.fingerprint256);
    expect(leaf.subject).toMatch(new RegExp(`^CN=${suite.node.name}@\\d+$`));
    expect(leaf.subjectAltName).toBe(`DNS:${suite.node.name}`);
  });

  it("refuses requests without or with bad credentials (401) and users without rights (403), with upstream's bodies", async () => {
    await serving();
    expect(await kubelet("/pods")).toEqual(expect.objectContaining({ status: 401, body: "Unauthorized" }));
    expect(await kubelet("/pods", { token: "not-a-token" })).toEqual(expect.objectContaining({ status: 401, body: "Unauthorized" }));
    const otherCA = await createCA("someone-else");
    const stranger = await issueCert(otherCA, { commonName: "kubernetes-admin", organizations: ["system:masters"] });
    expect(await kubelet("/pods", { cert: stranger })).toEqual(expect.objectContaining({ status: 401, body: "Unauthorized" }));
    cluster.controlPlane.addToken("bob-token", { username: "bob", groups: [] });
    expect(await kubelet("/pods", { token: "bob-token" })).toEqual(expect.objectContaining({ status: 403, body: "Forbidden (user=bob, verb=get, resource=nodes, subresource=proxy)" }));
    expect(await kubelet("/metrics", { token: "bob-token" })).toEqual(expect.objectContaining({ status: 403, body: "Forbidden (user=bob, verb=get, resource=nodes, subresource=metrics)" }));
    expect(await kubelet("/containerLogs/default/x/y", { token: "bob-token" })).toEqual(expect.objectContaining({ status: 403, body: "Forbidden (user=bob, verb=get, resource=nodes, subresource=proxy)" }));
    // An admin token goes through the same TokenReview and SubjectAccessReview and is let in.
    const ok = await kubelet("/runningpods/", { token: cluster.controlPlane.adminToken });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ kind: "PodList", apiVersion: "v1" });
  });

  it("honours RBAC through its SubjectAccessReview: a role on nodes/metrics lets in /metrics and nothing else; a namespaced Role grants no node access", async () => {
    await serving();
    const rbac = (resource: string) => ({ group: "rbac.authorization.k8s.io", version: "v1", resource });
    await cluster.client.create(rbac("clusterroles"), { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "node-metrics-reader" }, rules: [{ apiGroups: [""], resources: ["nodes/metrics", "nodes/stats"], verbs: ["get"] }] });
    await cluster.client.create(rbac("clusterrolebindings"), { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: "carol-metrics" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "node-metrics-reader" }, subjects: [{ kind: "User", name: "carol", apiGroup: "rbac.authorization.k8s.io" }] });
    cluster.controlPlane.addToken("carol-token", { username: "carol", groups: [] });
    const metrics = await kubelet("/metrics", { token: "carol-token" });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain(`kubelet_node_name{node="${suite.node.name}"} 1`);
    expect(await kubelet("/pods", { token: "carol-token" })).toEqual(expect.objectContaining({ status: 403, body: "Forbidden (user=carol, verb=get, resource=nodes, subresource=proxy)" }));
    // A Role cannot grant a cluster-scoped resource: dave stays forbidden.
    await cluster.client.create({ ...rbac("roles"), namespace: "default" }, { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "stats", namespace: "default" }, rules: [{ apiGroups: [""], resources: ["nodes/stats", "nodes/metrics"], verbs: ["get"] }] });
    await cluster.client.create({ ...rbac("rolebindings"), namespace: "default" }, { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "dave-stats", namespace: "default" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "stats" }, subjects: [{ kind: "User", name: "dave", apiGroup: "rbac.authorization.k8s.io" }] });
    cluster.controlPlane.addToken("dave-token", { username: "dave", groups: [] });
    expect(await kubelet("/metrics", { token: "dave-token" })).toEqual(expect.objectContaining({ status: 403, body: "Forbidden (user=dave, verb=get, resource=nodes, subresource=metrics)" }));
  });

  it("asks for an upgrade on the streaming routes, and answers /run (not implemented) with 501", async () => {
    const admin = await cluster.controlPlane.issueClientCert("kubernetes-admin", ["system:masters"]);
    expect(await kubelet("/exec/default/x/main?command=true", { cert: admin })).toMatchObject({ status: 400, body: "Upgrade request required" });
    const r = await kubelet("/run/default/x/main", { cert: admin });
    expect(r.status).toBe(501);
  });
});

describe("the kubelet's streaming, called directly", () => {
  it("accepts a WebSocket exec (channel.k8s.io v4, as older API servers and direct clients speak it) as well as SPDY", async () => {
    const pod = await runningPod("direct-ws", "exec sleep 3600");
    const admin = await cluster.controlPlane.issueClientCert("kubernetes-admin", ["system:masters"]);
    const raw = await suite.node.dial(suite.node.sandbox.nodeIP ?? "", 10250);
    const socket = tls.connect({ socket: raw, rejectUnauthorized: false, key: admin.keyPem, cert: admin.certPem });
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    const channels = new Map<number, string>();
    let closed!: () => void;
    const done = new Promise<void>((resolve) => (closed = resolve));
    const q = new URLSearchParams([["command", "sh"], ["command", "-c"], ["command", "echo direct-out; echo direct-err >&2; exit 4"], ["stdout", "true"], ["stderr", "true"]]);
    const r = await connectWebSocket(
      socket,
      { path: `/exec/default/${pod.metadata?.name ?? ""}/main?${q.toString()}`, host: "kubelet", protocols: ["v4.channel.k8s.io"] },
      { message: (d) => d.length > 0 && channels.set(d[0] ?? 0, (channels.get(d[0] ?? 0) ?? "") + d.subarray(1).toString()), close: () => closed() },
    );
    expect(r.head.status).toBe(101);
    expect(r.protocol).toBe("v4.channel.k8s.io");
    await done;
    expect(channels.get(1)).toBe("direct-out\n");
    expect(channels.get(2)).toBe("direct-err\n");
    expect(JSON.parse(channels.get(3) ?? "{}")).toMatchObject({ status: "Failure", reason: "NonZeroExitCode", details: { causes: [{ reason: "ExitCode", message: "4" }] } });
  });
});

describe("through the control plane", () => {
  it("get --raw through the node proxy: /healthz, /pods, /configz, /metrics and /metrics/probes", async () => {
    const pod = await runningPod("raw-proxy", "exec sleep 3600");
    const base = `/api/v1/nodes/${suite.node.name}/proxy`;
    const healthz = await cluster.kubectl(["get", "--raw", `${base}/healthz`]);
    expect(healthz).toMatchObject({ code: 0, stdout: "ok" });
    const list = JSON.parse((await cluster.kubectl(["get", "--raw", `${base}/pods`])).stdout) as { kind: string; items: V1Pod[] };
    expect(list.kind).toBe("PodList");
    expect(list.items.map((p) => p.metadata?.uid)).toContain(pod.metadata?.uid);
    const configz = JSON.parse((await cluster.kubectl(["get", "--raw", `${base}/configz`])).stdout) as { kubeletconfig: Record<string, unknown> };
    expect(configz.kubeletconfig).toMatchObject({ port: 10250, syncFrequency: "1m0s", authentication: { webhook: { enabled: true, cacheTTL: "2m0s" } } });
    const metrics = await cluster.kubectl(["get", "--raw", `${base}/metrics`]);
    expect(metrics.stdout).toContain(`kubelet_node_name{node="${suite.node.name}"} 1`);
    expect(metrics.stdout).toMatch(/kubelet_running_pods [1-9]/);
    const probes = await cluster.kubectl(["get", "--raw", `${base}/metrics/probes`]);
    expect(probes.code).toBe(0);
  });

  it.skipIf(!hasPromtool)("/metrics passes promtool check metrics, with the pod start and pod worker histograms and the API client's request counter", async () => {
    const metrics = (await cluster.kubectl(["get", "--raw", `/api/v1/nodes/${suite.node.name}/proxy/metrics`])).stdout;
    expect(promtoolCheck(metrics)).toEqual({ output: "", code: 0 });
    // raw-proxy (running) was seen, created and started by this kubelet: one start at least, under an hour.
    expect(Number(/^kubelet_pod_start_duration_seconds_count (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(/^kubelet_pod_start_duration_seconds_bucket\{le="3600"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(/^kubelet_pod_worker_duration_seconds_count\{operation_type="create"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    // The kubelet's own API calls (node status, pod status, TokenReviews...) to the control plane, by code, method and host.
    const requests = [...metrics.matchAll(/^rest_client_requests_total\{code="(\d+|<error>)",method="([A-Z]+)",host="([^"]+)"\} (\d+)$/gm)];
    expect(requests.some((m) => m[1] === "200" && m[2] === "GET" && Number(m[4]) > 0)).toBe(true);
    expect(requests.some((m) => m[1] === "201" && m[2] === "POST")).toBe(true);
    expect(new Set(requests.map((m) => m[3])).size).toBe(1); // one API server, named host:port
  });

  it("kubectl logs: all, --tail, --timestamps, --limit-bytes, and the kubelet's error for --previous without a restart", async () => {
    await runningPod("logs", "for i in 1 2 3 4 5; do echo line-$i; done; exec sleep 3600");
    const all = await eventually(async () => {
      const r = await cluster.kubectl(["logs", "logs"]);
      return r.stdout.includes("line-5") ? r.stdout : undefined;
    }, { message: "the five lines" });
    expect(all).toBe("line-1\nline-2\nline-3\nline-4\nline-5\n");
    expect((await cluster.kubectl(["logs", "logs", "--tail=2"])).stdout).toBe("line-4\nline-5\n");
    expect((await cluster.kubectl(["logs", "logs", "--limit-bytes=9"])).stdout).toBe("line-1\nli");
    // Timestamps as the CRI file holds them (trailing zeros trimmed), the source of truth.
    const dir = (await readdir(suite.node.sandbox.hostPath("/var/log/pods"))).find((d) => d.startsWith("default_logs_"));
    const file = await readFile(suite.node.sandbox.hostPath(`/var/log/pods/${dir ?? ""}/main/0.log`), "utf8");
    const firstTs = file.split(" ")[0] ?? "";
    const stamped = (await cluster.kubectl(["logs", "logs", "--timestamps", "--tail=5"])).stdout.split("\n")[0] ?? "";
    expect(stamped).toBe(`${firstTs.replace(/\.(\d*?)0+Z$/, ".$1Z").replace(/\.Z$/, "Z")} line-1`);
    // The legacy symlink log shippers read, to the same file.
    const podObj = await cluster.client.get<V1Pod>(podsRef("logs"));
    const id = (podObj.status?.containerStatuses?.[0]?.containerID ?? "").replace("containerd://", "");
    const link = suite.node.sandbox.hostPath(`/var/log/containers/logs_default_main-${id}.log`);
    const target = await eventually(() => readlink(link).catch(() => undefined), { timeoutMs: 10_000, message: "the /var/log/containers symlink" });
    expect(target).toBe(`/var/log/pods/${dir ?? ""}/main/0.log`);
    const prev = await cluster.kubectl(["logs", "logs", "--previous"]);
    expect(prev.code).not.toBe(0);
    expect(prev.stderr).toContain(`Error from server (BadRequest): previous terminated container "main" in pod "logs_default" not found`);
  });

  it("kubectl logs -f sees new lines as they are written, and the kubelet lets go of the file when the client leaves", async () => {
    await runningPod("follow", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.3; done");
    const child = spawn("kubectl", ["--kubeconfig", cluster.adminKubeconfig, "logs", "-f", "follow", "--tail=1"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    try {
      const first = await eventually(() => /tick-(\d+)/.exec(out)?.[1], { timeoutMs: 20_000, message: "the first line" });
      // Lines written after kubectl started arrive while it runs.
      await eventually(() => out.includes(`tick-${Number(first) + 3}`), { timeoutMs: 10_000, message: "new lines through -f" });
      // The kubelet holds the log file open while following.
      const pid = suite.node.kubelet?.pid ?? 0;
      const openLogs = async (): Promise<string[]> => {
        const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
        const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")));
        return targets.filter((t) => t.includes("default_follow_") && t.endsWith(".log"));
      };
      expect((await openLogs()).length).toBeGreaterThan(0);
      child.kill("SIGTERM");
      await eventually(async () => ((await openLogs()).length === 0 ? true : undefined), { timeoutMs: 10_000, message: "the kubelet to close the log file" });
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("kubectl exec: output, stderr and the exit code, and stdin", async () => {
    await eventually(async () => ((await cluster.client.get<V1Pod>(podsRef("raw-proxy"))).status?.phase === "Running" ? true : undefined), { message: "raw-proxy running" });
    const before = streamCounts();
    const r = await cluster.kubectl(["exec", "raw-proxy", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toContain("err\n");
    expect(r.stderr).toContain("command terminated with exit code 3");
    expect(r.code).toBe(3);
    const big = await cluster.kubectl(["exec", "raw-proxy", "--", "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"]);
    expect(big.stdout.length).toBe(3_000_000);
    const cat = await cluster.kubectl(["exec", "-i", "raw-proxy", "--", "sh", "-c", "tr a-z A-Z"], "hello through stdin\n");
    expect(cat).toMatchObject({ code: 0, stdout: "HELLO THROUGH STDIN\n" });
    // Nothing left running in the container once the sessions ended: only the pod's own sleep.
    const ps = await cluster.kubectl(["exec", "raw-proxy", "--", "ps", "-o", "args"]);
    expect(ps.stdout.split("\n").filter((l) => l.includes("tr ") || l.includes("head ")).length).toBe(0);
    // kubectl 1.32 went over WebSocket (v5.channel.k8s.io), translated to SPDY by the control plane, and never
    // fell back to SPDY: four sessions, all finished (200, the exit code travelling in the status).
    expect(streamsSince(before)).toEqual({ "websocket-translated 200": 4 });
  });

  it("with WebSocket streaming turned off kubectl speaks SPDY, passed through to the kubelet: exit code, stdin (port-forward: below)", async () => {
    const before = streamCounts();
    const r = await run("kubectl", ["--kubeconfig", cluster.adminKubeconfig, "exec", "raw-proxy", "--", "sh", "-c", "echo spdy-out; exit 5"], { allowFailure: true, env: SPDY_ONLY, timeoutMs: 60_000 });
    expect(r).toMatchObject({ code: 5, stdout: "spdy-out\n" });
    expect(r.stderr).toContain("command terminated with exit code 5");
    const cat = await run("kubectl", ["--kubeconfig", cluster.adminKubeconfig, "exec", "-i", "raw-proxy", "--", "tr", "a-z", "A-Z"], { allowFailure: true, env: SPDY_ONLY, input: "spdy stdin\n", timeoutMs: 60_000 });
    expect(cat).toMatchObject({ code: 0, stdout: "SPDY STDIN\n" });
    expect(streamsSince(before)).toEqual({ "spdy 101": 2 });
  });

  it("an exec client that goes away mid-stream ends the control plane's session and the kubelet's stream", async () => {
    const before = streamCounts();
    const child = spawn("kubectl", ["--kubeconfig", cluster.adminKubeconfig, "exec", "raw-proxy", "--", "sh", "-c", "echo started-abandoned; exec sleep 600"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    await eventually(() => out.includes("started-abandoned"), { timeoutMs: 20_000, message: "the exec to start" });
    const streamEnded = async (): Promise<boolean> => {
      const log = await readFile(suite.node.kubelet?.logPath ?? "", "utf8");
      return log.split("\n").some((l) => l.includes('"msg":"kubelet API stream"') && l.includes("started-abandoned"));
    };
    expect(await streamEnded()).toBe(false);
    // The request itself was logged with its identity and verdict when it came in.
    const log = await readFile(suite.node.kubelet?.logPath ?? "", "utf8");
    expect(log.split("\n").some((l) => l.includes('"msg":"kubelet API request"') && l.includes('"user":"kube-apiserver-kubelet-client"') && l.includes('"verdict":"allowed"'))).toBe(true);
    child.kill("SIGKILL");
    // The kubelet logs a stream when both of its ends are closed.
    await eventually(async () => ((await streamEnded()) ? true : undefined), { timeoutMs: 15_000, message: "the kubelet to end the stream" });
    // The control plane's translator saw its client go (499) and closed its SPDY side.
    await eventually(() => (streamsSince(before)["websocket-translated 499"] === 1 ? true : undefined), { timeoutMs: 15_000, message: "the translator to end" });
  });

  it("kubectl exec -it gets a terminal (driven through a pseudo-terminal), and kubectl cp copies both ways", async () => {
    const before = streamCounts();
    // The pseudo-terminal is 33x111: kubectl sends that size on the resize channel, the container's terminal takes it.
    const tty = await run("script", ["-qec", `stty rows 33 cols 111; kubectl --kubeconfig ${cluster.adminKubeconfig} exec -it raw-proxy -- sh -c 'tty; sleep 1; stty size'`, "/dev/null"], { allowFailure: true, timeoutMs: 30_000 });
    expect(tty.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(tty.stdout).toContain("33 111");
    expect(streamsSince(before)).toEqual({ "websocket-translated 200": 1 });
    const dir = await scratch;
    const local = join(dir, "to-pod.txt");
    await writeFile(local, "copied into the pod\n".repeat(1000));
    const up = await cluster.kubectl(["cp", local, "raw-proxy:/tmp/in.txt"]);
    expect(up.code).toBe(0);
    const inPod = await cluster.kubectl(["exec", "raw-proxy", "--", "md5sum", "/tmp/in.txt"]);
    expect(inPod.stdout.split(" ")[0]).toBe(createHash("md5").update(await readFile(local)).digest("hex"));
    const down = await cluster.kubectl(["cp", "raw-proxy:/tmp/in.txt", join(dir, "from-pod.txt")]);
    expect(down.code).toBe(0);
    expect(await readFile(join(dir, "from-pod.txt"), "utf8")).toBe(await readFile(local, "utf8"));
  });

  it("kubectl port-forward carries an HTTP exchange to the pod", async () => {
    await runningPod("pf", "mkdir -p /tmp/w && echo hello-through-port-forward > /tmp/w/index.html && head -c 52428800 /dev/urandom > /tmp/w/big && exec httpd -f -p 8080 -h /tmp/w");
    // httpd starts once the 50 MiB file is written; kubectl port-forward gives up on a refused connection.
    await eventually(async () => ((await cluster.kubectl(["exec", "pf", "--", "sh", "-c", "netstat -ltn | grep -q ':8080 '"])).code === 0 ? true : undefined), { timeoutMs: 30_000, message: "httpd listening in the pod" });
    const before = streamCounts();
    const child = spawn("kubectl", ["--kubeconfig", cluster.adminKubeconfig, "port-forward", "pod/pf", "0:8080"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    try {
      const port = await eventually(() => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out)?.[1], { timeoutMs: 20_000, message: `kubectl port-forward to listen (${out})` });
      const res = await fetch(`http://127.0.0.1:${port}/index.html`);
      expect(await res.text()).toBe("hello-through-port-forward\n");
      // 50 MiB intact through kubectl, the control plane, the kubelet and containerd.
      const big = Buffer.from(await (await fetch(`http://127.0.0.1:${port}/big`)).arrayBuffer());
      expect(big.length).toBe(52_428_800);
      const inPod = await cluster.kubectl(["exec", "pf", "--", "sha256sum", "/tmp/w/big"]);
      expect(createHash("sha256").update(big).digest("hex")).toBe(inPod.stdout.split(" ")[0]);
    } finally {
      child.kill("SIGTERM");
    }
    // One WebSocket session carrying kubectl's SPDY (SPDY/3.1+portforward.k8s.io), no SPDY fallback; the exec
    // of sha256sum and the readiness probes went by WebSocket too.
    await eventually(() => (streamsSince(before)["websocket-tunneled 101"] === 1 ? true : undefined), { timeoutMs: 10_000, message: "the tunnel to close" });
    expect(Object.keys(streamsSince(before)).filter((k) => k.startsWith("spdy"))).toEqual([]);
    // The same through SPDY when kubectl is told not to use WebSocket.
    const spdyBefore = streamCounts();
    const spdy = spawn("kubectl", ["--kubeconfig", cluster.adminKubeconfig, "port-forward", "pod/pf", "0:8080"], { stdio: ["ignore", "pipe", "pipe"], env: SPDY_ONLY });
    let spdyOut = "";
    spdy.stdout.on("data", (c: Buffer) => (spdyOut += c.toString()));
    try {
      const port = await eventually(() => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(spdyOut)?.[1], { timeoutMs: 20_000, message: `kubectl port-forward (SPDY) to listen (${spdyOut})` });
      expect(await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).toBe("hello-through-port-forward\n");
    } finally {
      spdy.kill("SIGTERM");
    }
    expect(streamsSince(spdyBefore)).toEqual({ "spdy 101": 1 });
  });

  it("the kubelet takes a WebSocket port-forward directly too (v4.channel.k8s.io: a data and an error channel per port, each opened with the port)", async () => {
    const admin = await cluster.controlPlane.issueClientCert("kubernetes-admin", ["system:masters"]);
    const raw = await suite.node.dial(suite.node.sandbox.nodeIP ?? "", 10250);
    const socket = tls.connect({ socket: raw, rejectUnauthorized: false, key: admin.keyPem, cert: admin.certPem });
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    const channels = new Map<number, Buffer>();
    const r = await connectWebSocket(
      socket,
      { path: "/portForward/default/pf?port=8080", host: "kubelet", protocols: ["v4.channel.k8s.io"] },
      { message: (d) => d.length > 0 && channels.set(d[0] ?? 0, Buffer.concat([channels.get(d[0] ?? 0) ?? Buffer.alloc(0), d.subarray(1)])), close: () => undefined },
    );
    expect(r.head.status).toBe(101);
    try {
      r.ws?.send(Buffer.concat([Buffer.from([0]), Buffer.from("GET /index.html HTTP/1.0\r\n\r\n")]));
      const data = await eventually(() => (channels.get(0)?.includes("hello-through-port-forward") ? channels.get(0) : undefined), { timeoutMs: 15_000, message: "the answer on the data channel" });
      // Each channel starts with the port, little-endian.
      expect(data.readUInt16LE(0)).toBe(8080);
      expect(data.subarray(2).toString()).toMatch(/^HTTP\/1\.[01] 200 OK\r\n/);
    } finally {
      r.ws?.destroy();
    }
  });

  it("kubectl attach streams the container's output as it is written", async () => {
    await runningPod("attach", "i=0; while true; do i=$((i+1)); echo attached-$i; sleep 0.3; done");
    const before = streamCounts();
    const child = spawn("kubectl", ["--kubeconfig", cluster.adminKubeconfig, "attach", "attach"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    try {
      const first = await eventually(() => /attached-(\d+)/.exec(out)?.[1], { timeoutMs: 20_000, message: "attached output" });
      await eventually(() => out.includes(`attached-${Number(first) + 2}`), { timeoutMs: 10_000, message: "more attached output" });
    } finally {
      child.kill("SIGTERM");
    }
    // Over WebSocket, translated; the session ends (client gone: 499) once kubectl is stopped.
    await eventually(() => (Object.keys(streamsSince(before)).length > 0 ? true : undefined), { timeoutMs: 10_000, message: "the attach session to end" });
    expect(Object.keys(streamsSince(before))).toEqual(["websocket-translated 499"]);
  });

  it("logs rotate at containerLogMaxSize (older ones gzipped) and kubectl logs -f reads on across rotations", async () => {
    await runningPod("rotating", "i=0; while true; do i=$((i+1)); echo seq-$i-................................................; sleep 0.02; done");
    const child = spawn("kubectl", ["--kubeconfig", cluster.adminKubeconfig, "logs", "-f", "rotating"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    try {
      const dir = await eventually(async () => (await readdir(suite.node.sandbox.hostPath("/var/log/pods"))).find((d) => d.startsWith("default_rotating_")), { message: "the pod's log folder" });
      const logDir = suite.node.sandbox.hostPath(`/var/log/pods/${dir ?? ""}/main`);
      // At least two rotations: the older one compressed, at most containerLogMaxFiles (3) files.
      const files = await eventually(async () => {
        const f = await readdir(logDir);
        return f.some((x) => x.endsWith(".gz")) ? f : undefined;
      }, { timeoutMs: 30_000, message: "a compressed rotated log" });
      expect(files.length).toBeLessThanOrEqual(3);
      expect(files).toContain("0.log");
      expect(files.filter((x) => /^0\.log\.\d{8}-\d{6}$/.test(x)).length).toBe(1);
      // The follower went on across both rotations: every line once, in order, from the first.
      const last = await eventually(async () => {
        const current = await readFile(join(logDir, "0.log"), "utf8");
        const n = Number(/seq-(\d+)-/.exec(current)?.[1] ?? 0);
        return n > 0 && out.includes(`seq-${n}-`) ? n : undefined;
      }, { timeoutMs: 10_000, message: "kubectl logs -f to reach the current file" });
      const seen = [...out.matchAll(/^seq-(\d+)-/gm)].map((m) => Number(m[1]));
      expect(seen.slice(0, last)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    } finally {
      child.kill("SIGTERM");
      await cluster.client.delete(podsRef("rotating"), { gracePeriodSeconds: 0 }).catch(() => undefined);
    }
  });

  it("kubectl logs --previous shows the run before a restart", async () => {
    await cluster.client.create(podsRef(), podSpec("restarts", "echo run-$RANDOM-$RANDOM; sleep 1; exit 1"));
    await eventually(async () => {
      const p = await cluster.client.get<V1Pod>(podsRef("restarts"));
      return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? p : undefined;
    }, { timeoutMs: 60_000, message: "a restart" });
    const dir = (await readdir(suite.node.sandbox.hostPath("/var/log/pods"))).find((d) => d.startsWith("default_restarts_"));
    const restarts = async (): Promise<number> => (await cluster.client.get<V1Pod>(podsRef("restarts"))).status?.containerStatuses?.[0]?.restartCount ?? 0;
    // The previous run is the attempt before the current one: read its file around the call (a restart in
    // between makes that round inconclusive, and it is tried again).
    const [expected, got] = await eventually(async () => {
      const before = await restarts();
      const prev = await cluster.kubectl(["logs", "restarts", "--previous"]);
      if ((await restarts()) !== before) return undefined;
      const file = await readFile(suite.node.sandbox.hostPath(`/var/log/pods/${dir ?? ""}/main/${before - 1}.log`), "utf8");
      return [/stdout F (run-\d+-\d+)/.exec(file)?.[1], prev.stdout] as const;
    }, { timeoutMs: 30_000, message: "a --previous read between restarts" });
    expect(expected).toMatch(/^run-\d+-\d+$/);
    expect(got).toBe(`${expected ?? ""}\n`);
  });
});
