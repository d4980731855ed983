/**
 * Volumes end to end through kubectl and the real kubelet on a sandbox node: every plugin with items, modes and
 * optional, read from inside the container (CRI ExecSync) and checked on the node where upstream lays them
 * out; a memory emptyDir as a tmpfs of the pod's size; an emptyDir shared by an init and an app container;
 * FailedMount naming a missing object and a failing hostPath type; subPath, and an escaping subPath refused;
 * a ConfigMap update seen in the files within 5 s and never half-written; the service account token
 * accepted by the API as the pod's; and the volumes gone after the pod, also when it went while the kubelet
 * was down.
 */
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";
import { eventually, eventuallyGone } from "../../harness/wait.ts";

const suite = clusterWithOneNode();
const cluster = suite.cluster;
const pods = podsRef;
const ROOT = "/var/lib/kubelet";
const SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";
const run = `e2e${Date.now().toString(36)}`;

type Spec = NonNullable<V1Pod["spec"]>;

function pod(name: string, spec: Partial<Spec>, script = "exec sleep 3600"): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels: { app: name, run } },
    spec: {
      nodeName: suite.node.name,
      terminationGracePeriodSeconds: 1,
      // The token volume only where a test is about it (the API server adds it to every pod otherwise).
      automountServiceAccountToken: false,
      containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script] }],
      ...spec,
    },
  };
}

async function kubectl(args: string[], input?: string): Promise<string> {
  const res = await cluster.kubectl(args, input);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
  return res.stdout;
}

async function waitForPod(name: string, ok: (p: V1Pod) => boolean, what: string, timeoutMs = 60_000): Promise<V1Pod> {
  return eventually(async () => {
    const p = await cluster.client.get<V1Pod>(pods(name));
    return ok(p) ? p : undefined;
  }, {
    timeoutMs,
    message: `pod ${name}: ${what}`,
    diagnose: async () => JSON.stringify((await cluster.client.get<V1Pod>(pods(name))).status?.containerStatuses?.map((c) => c.state)),
  });
}
const running = (name: string): Promise<V1Pod> => waitForPod(name, (p) => p.status?.phase === "Running", "Running");

async function podEvents(name: string): Promise<CoreV1Event[]> {
  return (JSON.parse(await kubectl(["get", "events", "-n", "default", "--field-selector", `involvedObject.kind=Pod,involvedObject.name=${name}`, "-o", "json"])) as { items: CoreV1Event[] }).items;
}

/** Runs a command in the pod's container through CRI (the runtime is the source of truth). */
async function inPod(p: V1Pod, script: string, container = "main"): Promise<{ code: number; out: string }> {
  const cri = suite.node.sandbox.criClient();
  const { containers } = await cri.runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.uid": p.metadata?.uid ?? "", "io.kubernetes.container.name": container } } });
  const id = containers.find((c) => c.state === "CONTAINER_RUNNING")?.id ?? "";
  const res = await cri.runtime("ExecSync", { container_id: id, cmd: ["sh", "-c", script], timeout: 10 });
  return { code: res.exit_code, out: Buffer.from(res.stdout).toString("utf8") + Buffer.from(res.stderr).toString("utf8") };
}

async function onNode(script: string): Promise<string> {
  const res = await suite.node.sandbox.exec("sh", ["-c", script], { allowFailure: true });
  return res.stdout + res.stderr;
}

async function deletePod(name: string): Promise<void> {
  await kubectl(["delete", "pod", name, "--wait=false"]);
  await eventuallyGone(() => cluster.client.get(pods(name)), { timeoutMs: 60_000, message: `pod ${name} gone` });
}

describe("volumes", () => {
  it("sets up every plugin with items, modes and optional, mounted read-only where upstream does, laid out as upstream", async () => {
    await kubectl(["create", "configmap", "app-config", "--from-literal=app.conf=level=debug", "--from-literal=other=x"]);
    await kubectl(["create", "secret", "generic", "app-secret", "--from-literal=password=hunter2"]);
    const hostDir = `${suite.node.sandbox.dir}/host-data`;
    await onNode(`mkdir -p ${hostDir} && echo from-host > ${hostDir}/file`);
    const spec: Partial<Spec> = {
      volumes: [
        { name: "cfg", configMap: { name: "app-config", items: [{ key: "app.conf", path: "conf/app.conf", mode: 0o600 }], defaultMode: 0o644 } },
        { name: "cfg-optional", configMap: { name: "no-such-config", optional: true } },
        { name: "sec", secret: { secretName: "app-secret", defaultMode: 0o400 } },
        { name: "info", downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }, { path: "mem", resourceFieldRef: { containerName: "main", resource: "limits.memory", divisor: "1Mi" } }] } },
        { name: "all", projected: { defaultMode: 0o440, sources: [{ configMap: { name: "app-config", items: [{ key: "other", path: "o" }] } }, { secret: { name: "app-secret" } }, { downwardAPI: { items: [{ path: "ns", fieldRef: { fieldPath: "metadata.namespace" } }] } }] } },
        { name: "mem", emptyDir: { medium: "Memory", sizeLimit: "8Mi" } },
        { name: "host", hostPath: { path: hostDir, type: "Directory" } },
      ],
    };
    const p = pod("plugins", spec);
    const c = (p.spec as Spec).containers[0];
    if (!c) throw new Error("no container");
    c.resources = { limits: { memory: "64Mi", cpu: "100m" } };
    c.volumeMounts = [
      { name: "cfg", mountPath: "/cfg" },
      { name: "cfg-optional", mountPath: "/opt-cfg" },
      { name: "sec", mountPath: "/sec" },
      { name: "info", mountPath: "/info" },
      { name: "all", mountPath: "/all" },
      { name: "mem", mountPath: "/mem" },
      { name: "host", mountPath: "/host", readOnly: true },
    ];
    await kubectl(["apply", "-f", "-"], JSON.stringify(p));
    const up = await running("plugins");
    const uid = up.metadata?.uid ?? "";

    const read = await inPod(up, [
      "cat /cfg/conf/app.conf; echo",
      "stat -L -c '%a' /cfg/conf/app.conf",
      "ls -A /opt-cfg | grep -v '^\\.\\.' | wc -l",
      "cat /sec/password; echo",
      "stat -L -c '%a' /sec/password",
      "cat /info/labels; echo",
      "cat /info/mem; echo",
      "cat /all/o /all/password /all/ns; echo",
      "stat -L -c '%a' /all/ns",
      "cat /host/file",
      "touch /cfg/new 2>/dev/null && echo cfg-writable || echo cfg-read-only",
      "touch /host/new 2>/dev/null && echo host-writable || echo host-read-only",
      "grep ' /mem ' /proc/mounts",
      "grep ' /sec ' /proc/mounts | cut -d' ' -f3",
    ].join("; "));
    expect(read.out.split("\n")).toEqual([
      "level=debug",
      "600",
      "0",
      "hunter2",
      "400",
      `app="plugins"`,
      `run="${run}"`,
      "64",
      "xhunter2default",
      "440",
      "from-host",
      "cfg-read-only",
      "host-read-only",
      expect.stringMatching(/^tmpfs \/mem tmpfs rw,.*size=8192k/),
      "tmpfs",
      "",
    ]);
    // Where upstream puts them, with the atomic writer's ..data.
    const layout = await onNode(`cd ${ROOT}/pods/${uid}/volumes && ls -d */* && readlink kubernetes.io~configmap/cfg/..data`);
    expect(layout.split("\n").filter((l) => l)).toEqual([
      "kubernetes.io~configmap/cfg",
      "kubernetes.io~configmap/cfg-optional",
      "kubernetes.io~downward-api/info",
      "kubernetes.io~empty-dir/mem",
      "kubernetes.io~projected/all",
      "kubernetes.io~secret/sec",
      expect.stringMatching(/^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\w+$/),
    ]);

    await deletePod("plugins");
    expect(await onNode(`ls ${ROOT}/pods/${uid} 2>&1; grep -c ${uid} /proc/self/mountinfo`)).toMatch(/No such file or directory\n0\n$/);
  });

  it("shares an emptyDir between an init container and the app container", async () => {
    const p = pod("shared", {
      volumes: [{ name: "work", emptyDir: {} }],
      initContainers: [{ name: "init", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", "echo prepared-by-init > /work/ready"], volumeMounts: [{ name: "work", mountPath: "/work" }] }],
    });
    (p.spec as Spec).containers[0]!.volumeMounts = [{ name: "work", mountPath: "/data" }];
    await kubectl(["apply", "-f", "-"], JSON.stringify(p));
    const up = await running("shared");
    expect((await inPod(up, "cat /data/ready; stat -c '%a' /data")).out).toBe("prepared-by-init\n777\n");
    await deletePod("shared");
  });

  it("keeps a pod waiting with FailedMount naming the missing ConfigMap, and runs it once the ConfigMap exists", async () => {
    const p = pod("waits", { volumes: [{ name: "cfg", configMap: { name: "late-config" } }] });
    (p.spec as Spec).containers[0]!.volumeMounts = [{ name: "cfg", mountPath: "/cfg" }];
    await kubectl(["apply", "-f", "-"], JSON.stringify(p));
    const event = await eventually(async () => (await podEvents("waits")).find((e) => e.reason === "FailedMount"), { message: "FailedMount event" });
    expect(event).toMatchObject({ type: "Warning", message: 'MountVolume.SetUp failed for volume "cfg" : configmap "late-config" not found' });
    const pending = await cluster.client.get<V1Pod>(pods("waits"));
    expect(pending.status?.phase).toBe("Pending");
    expect(pending.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? "ContainerCreating").toBe("ContainerCreating");
    const cri = suite.node.sandbox.criClient();
    expect((await cri.runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.uid": pending.metadata?.uid ?? "" } } })).items).toEqual([]);
    await kubectl(["create", "configmap", "late-config", "--from-literal=k=arrived"]);
    const up = await running("waits");
    expect((await inPod(up, "cat /cfg/k")).out).toBe("arrived");
    await deletePod("waits");
  });

  it("watches a mutable ConfigMap while pods use it, and stops watching an immutable one once read, as upstream", async () => {
    const watching = (name: string): boolean => cluster.controlPlane.openWatches.includes(`configmaps default metadata.name=${name}`);
    await kubectl(["create", "configmap", `mutable-${run}`, "--from-literal=k=m"]);
    await kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `immutable-${run}`, namespace: "default" }, immutable: true, data: { k: "i" } }));
    const p = pod("immutable", { volumes: [{ name: "m", configMap: { name: `mutable-${run}` } }, { name: "i", configMap: { name: `immutable-${run}` } }] });
    (p.spec as Spec).containers[0]!.volumeMounts = [{ name: "m", mountPath: "/m" }, { name: "i", mountPath: "/i" }];
    await kubectl(["apply", "-f", "-"], JSON.stringify(p));
    const up = await running("immutable");
    expect((await inPod(up, "cat /m/k /i/k")).out).toBe("mi");
    await eventually(() => !watching(`immutable-${run}`), { message: "the immutable ConfigMap's watch to end" });
    expect(watching(`mutable-${run}`)).toBe(true);
    await deletePod("immutable");
    await eventually(() => !watching(`mutable-${run}`), { message: "the mutable ConfigMap's watch to end with its last pod" });
  });

  it("fails a hostPath whose type does not match, clearly", async () => {
    const p = pod("badhost", { volumes: [{ name: "h", hostPath: { path: "/nonexistent-deckhand-e2e", type: "Directory" } }] });
    (p.spec as Spec).containers[0]!.volumeMounts = [{ name: "h", mountPath: "/h" }];
    await kubectl(["apply", "-f", "-"], JSON.stringify(p));
    const event = await eventually(async () => (await podEvents("badhost")).find((e) => e.reason === "FailedMount"), { message: "FailedMount event" });
    expect(event?.message).toBe('MountVolume.SetUp failed for volume "h" : hostPath type check failed: /nonexistent-deckhand-e2e is not a directory');
    await deletePod("badhost");
  });

  it("mounts a subPath and subPathExpr, and refuses a subPath escaping through a symlink", async () => {
    const p = pod("subpaths", {
      volumes: [{ name: "work", emptyDir: {} }],
      initContainers: [{ name: "init", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", "mkdir -p /w/a && echo in-a > /w/a/f && ln -s / /w/escape"], volumeMounts: [{ name: "work", mountPath: "/w" }] }],
    });
    const spec = p.spec as Spec;
    spec.containers[0]!.env = [{ name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }];
    spec.containers[0]!.volumeMounts = [{ name: "work", mountPath: "/a", subPath: "a" }, { name: "work", mountPath: "/mine", subPathExpr: "pods/$(POD)" }];
    spec.containers.push({ name: "escaper", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"], volumeMounts: [{ name: "work", mountPath: "/root-of-node", subPath: "escape" }] });
    await kubectl(["apply", "-f", "-"], JSON.stringify(p));
    const waiting = await waitForPod("subpaths", (x) => x.status?.containerStatuses?.find((s) => s.name === "escaper")?.state?.waiting?.reason === "CreateContainerConfigError", "escaper refused");
    expect(waiting.status?.containerStatuses?.find((s) => s.name === "escaper")?.state?.waiting?.message).toMatch(/failed to prepare subPath for volumeMount "work" of container "escaper": subpath .* not within volume path/);
    const main = await waitForPod("subpaths", (x) => x.status?.containerStatuses?.find((s) => s.name === "main")?.state?.running !== undefined, "main running");
    expect((await inPod(main, "cat /a/f; ls /a; echo x > /mine/y && echo ok")).out).toBe("in-a\nf\nok\n");
    expect(await onNode(`cat ${ROOT}/pods/${main.metadata?.uid ?? ""}/volumes/kubernetes.io~empty-dir/work/pods/subpaths/y`)).toBe("x\n");
    // The runtime mounts the pins (upstream's volume-subpaths/<volume>/<container>/<index>), bind mounts on the node.
    const pins = `${ROOT}/pods/${main.metadata?.uid ?? ""}/volume-subpaths/work/main`;
    const cri = suite.node.sandbox.criClient();
    const { containers } = await cri.runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.uid": main.metadata?.uid ?? "", "io.kubernetes.container.name": "main" } } });
    const { status } = await cri.runtime("ContainerStatus", { container_id: containers[0]?.id ?? "", verbose: false });
    expect(status?.mounts.filter((m) => m.container_path === "/a" || m.container_path === "/mine").map((m) => [m.container_path, m.host_path])).toEqual([["/a", `${pins}/0`], ["/mine", `${pins}/1`]]);
    const mountPoints = async (): Promise<string> => onNode(`awk '{print $5}' /proc/self/mountinfo | grep -F '${pins}' | sort`);
    expect(await mountPoints()).toBe(`${pins}/0\n${pins}/1\n`);
    await deletePod("subpaths");
    await eventually(async () => (await mountPoints()) === "", { message: "the subPath pins unmounted" });
  });

  it("propagates a mount made on the node later into a HostToContainer hostPath mount", async () => {
    const hostDir = `${suite.node.sandbox.dir}/propagated`;
    // Propagation needs a shared source mount (the runtime refuses a private one): the folder is made one.
    await onNode(`mkdir -p ${hostDir} && mount --bind ${hostDir} ${hostDir} && mount --make-rshared ${hostDir} && mkdir -p ${hostDir}/later`);
    const p = pod("propagation", { volumes: [{ name: "h", hostPath: { path: hostDir, type: "Directory" } }] });
    (p.spec as Spec).containers[0]!.volumeMounts = [{ name: "h", mountPath: "/h", mountPropagation: "HostToContainer" }];
    await kubectl(["apply", "-f", "-"], JSON.stringify(p));
    const up = await running("propagation");
    await onNode(`mount -t tmpfs -o size=1m tmpfs ${hostDir}/later && echo mounted-later > ${hostDir}/later/f`);
    try {
      expect((await inPod(up, "cat /h/later/f")).out).toBe("mounted-later\n");
      await deletePod("propagation");
    } finally {
      await onNode(`umount ${hostDir}/later; umount ${hostDir}`);
    }
  });

  it("shows a ConfigMap update in the mounted files within 5 s, never half-written", async () => {
    const doc = (v: string): string => Array.from({ length: 4000 }, () => v).join("\n");
    await kubectl(["create", "configmap", "live", `--from-literal=doc=${doc("v1")}`]);
    // The reader checks every read: one version per read, never a short file.
    const reader = "while true; do n=$(sort -u /cfg/doc | wc -l); l=$(wc -l < /cfg/doc); if [ \"$n\" != 1 ] || [ \"$l\" != 3999 ]; then echo \"bad $n $l\" >> /tmp/bad; fi; echo read >> /tmp/reads; done";
    const p = pod("live", { volumes: [{ name: "cfg", configMap: { name: "live" } }] }, reader);
    (p.spec as Spec).containers[0]!.volumeMounts = [{ name: "cfg", mountPath: "/cfg" }];
    await kubectl(["apply", "-f", "-"], JSON.stringify(p));
    const up = await running("live");
    for (const v of ["v2", "v3", "v4"]) {
      const json = await kubectl(["create", "configmap", "live", `--from-literal=doc=${doc(v)}`, "--dry-run=client", "-o", "json"]);
      await kubectl(["replace", "-f", "-"], json);
      // From the API update (the replace has returned): kubectl's own start-up is not the kubelet's delay.
      const t0 = Date.now();
      await eventually(async () => ((await inPod(up, "head -1 /cfg/doc")).out.trim() === v ? true : undefined), { timeoutMs: 10_000, intervalMs: 100, message: `${v} in the file` });
      expect(Date.now() - t0).toBeLessThan(5000);
    }
    const result = await inPod(up, "cat /tmp/bad 2>/dev/null; wc -l < /tmp/reads");
    const [reads, ...bad] = result.out.trim().split("\n").reverse();
    expect(bad).toEqual([]);
    expect(Number(reads)).toBeGreaterThan(10);
    await deletePod("live");
  });

  it("applies fsGroup: the volumes' group, the container in it, files it creates keep it", async () => {
    await kubectl(["create", "secret", "generic", "grouped", "--from-literal=k=v"]);
    const p = pod("fsgroup", { securityContext: { runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000 }, volumes: [{ name: "data", emptyDir: {} }, { name: "sec", secret: { secretName: "grouped", defaultMode: 0o400 } }] });
    (p.spec as Spec).containers[0]!.volumeMounts = [{ name: "data", mountPath: "/data" }, { name: "sec", mountPath: "/sec" }];
    await kubectl(["apply", "-f", "-"], JSON.stringify(p));
    const up = await running("fsgroup");
    const out = await inPod(up, "id -u; id -G; stat -c '%g %a' /data; touch /data/mine && stat -c '%g' /data/mine; stat -L -c '%g %a' /sec/k; cat /sec/k");
    expect(out.out.split("\n")).toEqual(["1000", "3000 2000", "2000 2777", "2000", "2000 440", "v"]);
    await deletePod("fsgroup");
  });

  it("gives the pod a service account token bound to it, which the API accepts as the pod's", async () => {
    await kubectl(["apply", "-f", "-"], JSON.stringify(pod("token", { automountServiceAccountToken: true })));
    const up = await running("token");
    // The API server's ServiceAccount admission added kube-api-access-*; the kubelet mounts it as laid out.
    expect(up.spec?.volumes?.some((v) => v.name.startsWith("kube-api-access-"))).toBe(true);
    const files = await inPod(up, `ls ${SA_PATH}; cat ${SA_PATH}/namespace; echo; head -1 ${SA_PATH}/ca.crt`);
    expect(files.out).toBe("ca.crt\nnamespace\ntoken\ndefault\n-----BEGIN CERTIFICATE-----\n");
    const token = (await inPod(up, `cat ${SA_PATH}/token`)).out;
    const review = await cluster.client.create<{ status?: { authenticated?: boolean; user?: { username?: string; extra?: Record<string, string[]> } } }>(
      { group: "authentication.k8s.io", version: "v1", resource: "tokenreviews" },
      { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } },
    );
    expect(review.status?.authenticated).toBe(true);
    expect(review.status?.user?.username).toBe("system:serviceaccount:default:default");
    expect(review.status?.user?.extra?.["authentication.kubernetes.io/pod-uid"]).toEqual([up.metadata?.uid]);
    expect((await podEvents("token")).filter((e) => e.type === "Warning")).toEqual([]);
    await deletePod("token");
  });

  it("removes the volumes of a pod deleted while the kubelet was down once it is back", async () => {
    await kubectl(["create", "secret", "generic", "gone-secret", "--from-literal=k=v"]);
    const p = pod("orphan", { volumes: [{ name: "sec", secret: { secretName: "gone-secret" } }, { name: "mem", emptyDir: { medium: "Memory" } }] });
    (p.spec as Spec).containers[0]!.volumeMounts = [{ name: "sec", mountPath: "/sec" }, { name: "mem", mountPath: "/mem" }];
    await kubectl(["apply", "-f", "-"], JSON.stringify(p));
    const up = await running("orphan");
    const uid = up.metadata?.uid ?? "";
    expect(Number((await onNode(`grep -c ${uid} /proc/self/mountinfo`)).trim())).toBe(2);
    await suite.node.kubelet?.stop();
    await kubectl(["delete", "pod", "orphan", "--grace-period=0", "--force"]);
    await suite.node.kubelet?.start();
    await eventually(async () => ((await onNode(`ls -d ${ROOT}/pods/${uid} 2>/dev/null; grep -c ${uid} /proc/self/mountinfo`)).trim() === "0" ? true : undefined), {
      timeoutMs: 60_000,
      message: "the orphaned pod folder and its mounts gone",
    });
  });
});

describe("environment from ConfigMaps and Secrets", () => {
  it("reads envFrom and key refs with $(VAR) expansion; a missing Secret holds the container in CreateContainerConfigError until it appears", async () => {
    await kubectl(["create", "configmap", "env-config", "--from-literal=HOST=db", "--from-literal=PORT=5432"]);
    await kubectl(["create", "service", "clusterip", "env-db", "--tcp=5432:5432"]);
    const dbIP = (await kubectl(["get", "service", "env-db", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    const p = pod("env", {}, "env | sort > /tmp/env; exec sleep 3600");
    const c = (p.spec as Spec).containers[0]!;
    c.envFrom = [{ configMapRef: { name: "env-config" }, prefix: "DB_" }];
    c.env = [
      { name: "USER", valueFrom: { secretKeyRef: { name: "env-secret", key: "user" } } },
      { name: "OPTIONAL", valueFrom: { configMapKeyRef: { name: "env-config", key: "nope", optional: true } } },
      { name: "DSN", value: "$(USER)@$(DB_HOST):$(DB_PORT)" },
    ];
    await kubectl(["apply", "-f", "-"], JSON.stringify(p));
    const waiting = await waitForPod("env", (x) => x.status?.containerStatuses?.[0]?.state?.waiting?.reason === "CreateContainerConfigError", "CreateContainerConfigError");
    expect(waiting.status?.containerStatuses?.[0]?.state?.waiting?.message).toBe('secret "env-secret" not found');
    await kubectl(["create", "secret", "generic", "env-secret", "--from-literal=user=admin"]);
    const up = await running("env");
    const envOut = (await inPod(up, "cat /tmp/env")).out.split("\n");
    expect(envOut).toEqual(expect.arrayContaining(["DB_HOST=db", "DB_PORT=5432", "USER=admin", "DSN=admin@db:5432"]));
    // The service links: the kubernetes Service's (always) and the namespace's.
    expect(envOut).toEqual(expect.arrayContaining(["KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_PORT=tcp://10.96.0.1:443", `ENV_DB_SERVICE_HOST=${dbIP}`, "ENV_DB_SERVICE_PORT=5432"]));
    expect(envOut.some((l) => l.startsWith("OPTIONAL="))).toBe(false);
    await deletePod("env");
  });
});

describe("/etc/hosts", () => {
  it("mounts the kubelet's hosts file: the pod's IP with hostname and subdomain FQDN, and hostAliases", async () => {
    await kubectl(["apply", "-f", "-"], JSON.stringify(pod("hosts", { hostname: "db", subdomain: "db-svc", hostAliases: [{ ip: "10.1.2.3", hostnames: ["foo.local", "bar.local"] }] })));
    const up = await running("hosts");
    const ip = up.status?.podIP ?? "";
    const hosts = (await inPod(up, "cat /etc/hosts")).out;
    expect(hosts.startsWith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")).toBe(true);
    expect(hosts).toContain(`\n${ip}\tdb.db-svc.default.svc.cluster.local\tdb\n`);
    expect(hosts.endsWith("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n")).toBe(true);
    expect(await onNode(`cat ${ROOT}/pods/${up.metadata?.uid ?? ""}/etc-hosts`)).toBe(hosts);
    await deletePod("hosts");
  });
});
