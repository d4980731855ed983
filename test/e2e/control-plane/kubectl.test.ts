/**
 * The same scenarios through the real kubectl on this machine: create -f, apply, get -o yaml/json/wide,
 * get -w, patch of each type (also --subresource=status), label, delete --grace-period.
 */
import { execFile, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControlPlane } from "../../control-plane/control-plane.ts";
import { eventually } from "../../harness/wait.ts";
import { startControlPlane } from "./helpers.ts";

let cp: ControlPlane;
let dir: string;
let stop: () => Promise<void>;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectl(args: string[], kubeconfig?: string): Promise<Result> {
  return new Promise((resolve) => {
    execFile("kubectl", ["--kubeconfig", kubeconfig ?? cp.adminKubeconfigPath, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(args: string[], kubeconfig?: string): Promise<string> {
  const r = await kubectl(args, kubeconfig);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  expect(r.stderr).not.toMatch(/warning/i);
  return r.stdout;
}

async function getJson<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  return JSON.parse(await ok(["get", ...args, "-o", "json"])) as T;
}

beforeAll(async () => {
  ({ cp, dir, stop } = await startControlPlane());
  await writeFile(
    join(dir, "node.yaml"),
    `apiVersion: v1
kind: Node
metadata:
  name: kn1
  labels:
    kubernetes.io/hostname: kn1
status:
  conditions:
  - type: Ready
    status: "True"
    reason: KubeletReady
    message: kubelet is posting ready status
  addresses:
  - type: InternalIP
    address: 192.0.2.11
  nodeInfo:
    kubeletVersion: v1.33.0
    osImage: Debian GNU/Linux 13
    kernelVersion: 6.12.0
    containerRuntimeVersion: containerd://2.1.0
    machineID: ""
    systemUUID: ""
    bootID: ""
    kubeProxyVersion: ""
    operatingSystem: linux
    architecture: amd64
`,
  );
});

afterAll(async () => {
  await stop();
});

describe("kubectl against the control plane", () => {
  it("version, api-resources, auth whoami", async () => {
    expect(await ok(["version"])).toMatch(/Server Version: v1\.33\.0/);
    const res = await ok(["api-resources"]);
    for (const r of ["pods", "nodes", "endpointslices", "leases", "events"]) expect(res).toMatch(new RegExp(`^${r}\\s`, "m"));
    expect(await ok(["auth", "whoami"])).toMatch(/kubernetes-admin[\s\S]*system:masters/);
  });

  it("create -f, get -o wide for nodes and pods, with node and IP columns", async () => {
    expect(await ok(["create", "-f", join(dir, "node.yaml")])).toBe("node/kn1 created\n");
    const nodes = await ok(["get", "nodes", "-o", "wide"]);
    expect(nodes.split("\n")[0]).toMatch(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME$/);
    expect(nodes.split("\n")[1]).toMatch(/^kn1\s+Ready\s+<none>\s+\d+s\s+v1\.33\.0\s+192\.0\.2\.11\s+<none>\s+Debian GNU\/Linux 13\s+6\.12\.0\s+containerd:\/\/2\.1\.0$/);
    await ok(["run", "web", "--image=nginx:1.27", "--labels=app=web"]);
    await eventually(async () => (await getJson<{ spec: { nodeName?: string } }>("pod", "web")).spec.nodeName === "kn1", { timeoutMs: 10_000, message: "pod bound" });
    await ok(["patch", "pod", "web", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { phase: "Running", podIP: "10.244.0.7", podIPs: [{ ip: "10.244.0.7" }] } })]);
    const pods = await ok(["get", "pods", "-o", "wide"]);
    expect(pods.split("\n")[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$/);
    expect(pods.split("\n")[1]).toMatch(/^web\s+0\/1\s+Running\s+0\s+\d+s\s+10\.244\.0\.7\s+kn1\s+<none>\s+<none>$/);
    expect(await ok(["get", "pods"])).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\nweb\s+0\/1\s+Running\s+0\s+\d+s\n$/);
  });

  it("get -o yaml / -o json show the stored object", async () => {
    const y = await ok(["get", "pod", "web", "-o", "yaml"]);
    expect(y).toMatch(/^apiVersion: v1\nkind: Pod\nmetadata:/);
    expect(y).toMatch(/nodeName: kn1/);
    const j = await getJson<{ kind: string; items: { metadata: { name: string } }[] }>("pods");
    expect(j.kind).toBe("List");
    expect(j.items.map((i) => i.metadata.name)).toEqual(["web"]);
  });

  it("apply creates then updates (strategic merge computed by kubectl)", async () => {
    const manifest = (value: string, image: string) => `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  labels: {app: demo}
data:
  key: "${value}"
---
apiVersion: v1
kind: Service
metadata:
  name: demo
spec:
  selector: {app: demo}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Pod
metadata:
  name: demo
  labels: {app: demo}
spec:
  containers:
  - name: main
    image: ${image}
    ports:
    - {containerPort: 8080}
`;
    const f = join(dir, "apply.yaml");
    await writeFile(f, manifest("1", "busybox:1.36"));
    expect(await ok(["apply", "-f", f])).toBe("configmap/app-config created\nservice/demo created\npod/demo created\n");
    await writeFile(f, manifest("2", "busybox:1.37"));
    expect(await ok(["apply", "-f", f])).toBe("configmap/app-config configured\nservice/demo unchanged\npod/demo configured\n");
    expect((await getJson<{ data: Record<string, string> }>("configmap", "app-config")).data).toEqual({ key: "2" });
    expect((await getJson<{ spec: { containers: { image: string }[] } }>("pod", "demo")).spec.containers[0]?.image).toBe("busybox:1.37");
    const svc = await ok(["get", "svc", "demo"]);
    expect(svc).toMatch(/^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\ndemo\s+ClusterIP\s+10\.\d+\.\d+\.\d+\s+<none>\s+80\/TCP\s+\d+s\n$/);
  });

  it("patch --type merge/json/strategic, --subresource=status, label", async () => {
    await ok(["patch", "configmap", "app-config", "--type=merge", "-p", '{"data":{"m":"1"}}']);
    await ok(["patch", "configmap", "app-config", "--type=json", "-p", '[{"op":"add","path":"/data/j","value":"2"}]']);
    await ok(["patch", "pod", "demo", "--type=strategic", "-p", '{"metadata":{"labels":{"s":"3"}}}']);
    await ok(["patch", "pod", "demo", "--subresource=status", "--type=strategic", "-p", '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}']);
    await ok(["label", "pod", "demo", "tier=fe"]);
    expect((await getJson<{ data: Record<string, string> }>("configmap", "app-config")).data).toEqual({ key: "2", m: "1", j: "2" });
    const pod = await getJson<{ metadata: { labels: Record<string, string> }; status: { conditions: { type: string; status: string }[] } }>("pod", "demo");
    expect(pod.metadata.labels).toEqual({ app: "demo", s: "3", tier: "fe" });
    expect(pod.status.conditions.find((c) => c.type === "Ready")?.status).toBe("True");
    const bad = await kubectl(["patch", "pod", "demo", "--subresource=status", "--type=merge", "-p", '{"status":{"phase":"Sleeping"}}']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('The Pod "demo" is invalid: status.phase: Unsupported value: "Sleeping"');
    const conflict = await kubectl(["label", "pod", "demo", "tier=be"]);
    expect(conflict.stderr).toContain("'tier' already has a value (fe), and --overwrite is false");
  });

  it("get -w streams changes; delete --grace-period is graceful for bound pods", async () => {
    const watcher = spawn("kubectl", ["--kubeconfig", cp.adminKubeconfigPath, "get", "pods", "-w", "--output-watch-events"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    watcher.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await eventually(() => out.includes("web"), { timeoutMs: 10_000, message: "initial watch output" });
      expect(await ok(["delete", "pod", "web", "--grace-period=30", "--wait=false"])).toBe('pod "web" deleted\n');
      const pod = await getJson<{ metadata: { deletionTimestamp?: string; deletionGracePeriodSeconds?: number } }>("pod", "web");
      expect(pod.metadata.deletionGracePeriodSeconds).toBe(30);
      await eventually(() => /MODIFIED\s+web\s+0\/1\s+Terminating/.test(out), { timeoutMs: 10_000, message: "Terminating in watch" });
      // The kubelet's final word: delete with grace 0.
      const nodeKubeconfig = await cp.mintNodeKubeconfig("kn1");
      const forced = await kubectl(["delete", "pod", "web", "--grace-period=0", "--force"], nodeKubeconfig);
      expect(forced.stdout).toBe('pod "web" force deleted\n');
      await eventually(() => /DELETED\s+web/.test(out), { timeoutMs: 10_000, message: "DELETED in watch" });
      expect((await kubectl(["get", "pod", "web"])).stderr).toContain('Error from server (NotFound): pods "web" not found');
    } finally {
      watcher.kill("SIGTERM");
    }
  });

  it("imperative creates (protobuf bodies) and strict field validation", async () => {
    expect(await ok(["create", "namespace", "imp"])).toBe("namespace/imp created\n");
    await ok(["-n", "imp", "create", "configmap", "cm", "--from-literal=a=b"]);
    await ok(["-n", "imp", "create", "secret", "generic", "sec", "--from-literal=u=p"]);
    await ok(["-n", "imp", "create", "serviceaccount", "robot"]);
    await ok(["-n", "imp", "create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"]);
    expect((await ok(["-n", "imp", "create", "token", "robot"])).split(".")).toHaveLength(3);
    expect((await getJson<{ data: Record<string, string> }>("-n", "imp", "configmap", "cm")).data).toEqual({ a: "b" });
    expect((await getJson<{ data: Record<string, string>; type: string }>("-n", "imp", "secret", "sec")).data).toEqual({ u: "cA==" });
    expect((await getJson<{ spec: { ports: unknown[] } }>("-n", "imp", "service", "np")).spec.ports).toEqual([{ name: "80-8080", port: 80, protocol: "TCP", targetPort: 8080, nodePort: 30080 }]);
    const f = join(dir, "typo.yaml");
    await writeFile(f, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\ndatta:\n  a: b\n");
    const strict = await kubectl(["-n", "imp", "create", "-f", f]);
    expect(strict.stderr).toContain('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "datta"');
    await ok(["delete", "namespace", "imp", "--wait=false"]);
    await eventually(async () => (await kubectl(["get", "namespace", "imp"])).code !== 0, { timeoutMs: 10_000, message: "namespace gone" });
  });

  it("node kubeconfigs are limited like the node authorizer", async () => {
    const nk = await cp.mintNodeKubeconfig("kn1");
    expect(await ok(["auth", "whoami"], nk)).toMatch(/system:node:kn1[\s\S]*system:nodes/);
    expect((await ok(["auth", "can-i", "update", "leases/kn1", "-n", "kube-node-lease"], nk)).trim()).toBe("yes");
    const denied = await kubectl(["label", "node", "kn1", "--overwrite", "node-restriction.kubernetes.io/x=y"], nk);
    expect(denied.stderr).toContain("Forbidden");
    const secrets = await kubectl(["get", "secrets", "-A"], nk);
    expect(secrets.stderr).toContain('User "system:node:kn1" cannot list resource "secrets"');
  });
});
