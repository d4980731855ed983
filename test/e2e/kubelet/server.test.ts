/**
 * The kubelet API (:10250) and health server (:10248) on a sandbox node, reached as the control plane reaches
 * them (through the node's CONNECT proxy) and through the control plane with real kubectl: `kubectl logs`
 * (tail, timestamps, limit, -f seeing new lines, --previous after a restart), `get --raw` through the node
 * proxy (/healthz, /pods, /metrics checked by promtool, /configz), and direct calls refused as upstream
 * refuses them (401 without or with bad credentials, 403 for a user without rights).
 */
import http from "node:http";
import { existsSync } from "node:fs";
import tls from "node:tls";
import { spawn } from "node:child_process";
import { readFile, readdir, readlink, writeFile, mkdtemp, rm } from "node:fs/promises";
import { X509Certificate } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, describe, expect, it } from "vitest";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";
import { eventually } from "../../harness/wait.ts";
import { run } from "../../../src-shared/exec.ts";
import { createCA, issueCert, type KeyAndCert } from "../../control-plane/pki.ts";

/** promtool comes with Debian's prometheus package (test/setup.sh installs it). */
const hasPromtool = existsSync("/usr/bin/promtool");
const suite = clusterWithOneNode();
const cluster = suite.cluster;
const scratch = mkdtemp(join(tmpdir(), "deckhand-kubelet-api-"));
afterAll(async () => rm(await scratch, { recursive: true, force: true }));

function podSpec(name: string, script: string, restartPolicy = "Always"): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      nodeName: suite.node.name,
      terminationGracePeriodSeconds: 1,
      restartPolicy,
      containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script] }],
    },
  };
}

async function runningPod(name: string, script: string): Promise<V1Pod> {
  await cluster.client.create(podsRef(), podSpec(name, script));
  return eventually(async () => {
    const p = await cluster.client.get<V1Pod>(podsRef(name));
    return p.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
  }, { timeoutMs: 60_000, message: `pod ${name} running` });
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

describe("the kubelet API", () => {
  it("serves /healthz on 127.0.0.1:10248 and, over TLS with the self-signed certificate it wrote, on 10250", async () => {
    const plain = await eventually(() => kubelet("/healthz", { host: "127.0.0.1", port: 10248, plain: true }).catch(() => undefined), { timeoutMs: 30_000, message: "the health server" });
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

  it("asks for an upgrade on the streaming routes, and answers /run (not implemented) with 501", async () => {
    const admin = await cluster.controlPlane.issueClientCert("kubernetes-admin", ["system:masters"]);
    expect(await kubelet("/exec/default/x/main?command=true", { cert: admin })).toMatchObject({ status: 400, body: "Upgrade request required" });
    const r = await kubelet("/run/default/x/main", { cert: admin });
    expect(r.status).toBe(501);
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

  it.skipIf(!hasPromtool)("/metrics passes promtool check metrics", async () => {
    const metrics = await cluster.kubectl(["get", "--raw", `/api/v1/nodes/${suite.node.name}/proxy/metrics`]);
    const dir = await scratch;
    await writeFile(join(dir, "metrics.txt"), metrics.stdout);
    const check = await run("sh", ["-c", `promtool check metrics < ${join(dir, "metrics.txt")}`], { allowFailure: true });
    expect(check.stderr + check.stdout).toBe("");
    expect(check.code).toBe(0);
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
  });

  it("kubectl port-forward carries an HTTP exchange to the pod", async () => {
    await runningPod("pf", "mkdir -p /tmp/w && echo hello-through-port-forward > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w");
    const child = spawn("kubectl", ["--kubeconfig", cluster.adminKubeconfig, "port-forward", "pod/pf", "0:8080"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    try {
      const port = await eventually(() => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out)?.[1], { timeoutMs: 20_000, message: `kubectl port-forward to listen (${out})` });
      const res = await fetch(`http://127.0.0.1:${port}/index.html`);
      expect(await res.text()).toBe("hello-through-port-forward\n");
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("kubectl attach streams the container's output as it is written", async () => {
    await runningPod("attach", "i=0; while true; do i=$((i+1)); echo attached-$i; sleep 0.3; done");
    const child = spawn("kubectl", ["--kubeconfig", cluster.adminKubeconfig, "attach", "attach"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    try {
      const first = await eventually(() => /attached-(\d+)/.exec(out)?.[1], { timeoutMs: 20_000, message: "attached output" });
      await eventually(() => out.includes(`attached-${Number(first) + 2}`), { timeoutMs: 10_000, message: "more attached output" });
    } finally {
      child.kill("SIGTERM");
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
