/**
 * deckhand-bridge under a sandbox node's real containerd (through the CNI daemon), and invoked directly inside
 * the node for the commands containerd 1.6 does not send (CHECK, GC, STATUS) and for the error cases.
 */
import { randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pollUntil } from "../../harness/wait.ts";
import { CniNode } from "../../harness/cni-node.ts";
import type { CriClient } from "../../../kubelet/cri/client.ts";
import type { Input, PodSandboxConfig } from "../../../kubelet/cri/types.ts";
import { removeCgroupTree } from "../../../src-shared/cgroups.ts";

const cni = new CniNode({ podSubnet: "10.88.0.0/24" });
let cri: CriClient;

beforeAll(async () => {
  await cni.start();
  cri = cni.node.criClient();
}, 180_000);

afterAll(async () => {
  await cni.teardown();
});

function podConfig(name: string): Input<PodSandboxConfig> {
  const uid = randomUUID();
  return {
    metadata: { name, namespace: "cni", uid, attempt: 0 },
    hostname: name,
    log_directory: `/var/log/pods/cni_${name}_${uid}`,
    linux: {
      cgroup_parent: `${cni.node.cgroupRoot}/kubepods/besteffort/pod${uid}`,
      security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
    },
  };
}

async function runPod(name: string): Promise<{ id: string; ip: string; config: Input<PodSandboxConfig> }> {
  const config = podConfig(name);
  const { pod_sandbox_id: id } = await cri.runtime("RunPodSandbox", { config });
  const status = await cri.runtime("PodSandboxStatus", { pod_sandbox_id: id });
  return { id, ip: status.status?.network?.ip ?? "", config };
}

async function removePod(pod: { id: string; config: Input<PodSandboxConfig> }): Promise<void> {
  await cri.runtime("StopPodSandbox", { pod_sandbox_id: pod.id });
  await cri.runtime("RemovePodSandbox", { pod_sandbox_id: pod.id });
  const parent = pod.config.linux?.cgroup_parent;
  if (parent) await removeCgroupTree(parent);
}

const ipamDir = (): string => cni.node.hostPath("/var/lib/cni/networks/deckhand");
async function reservedIps(): Promise<string[]> {
  return (await readdir(ipamDir()).catch(() => [])).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort();
}
async function ourLinks(): Promise<string[]> {
  const out = await cni.node.exec("ip", ["-o", "link", "show", "master", "cni0"], { allowFailure: true });
  return out.stdout.split("\n").map((l) => /^\d+: (dhv[0-9a-f]+)@/.exec(l)?.[1]).filter((x): x is string => x !== undefined);
}
async function ping(from: { pod?: string }, ip: string): Promise<boolean> {
  const args = ["ping", "-c", "1", "-W", "2", ip];
  const res = from.pod ? await cni.node.execInPod(from.pod, "busybox", args, { allowFailure: true }) : await cni.node.exec("busybox", args, { allowFailure: true });
  return res.code === 0;
}

describe("pods on deckhand-bridge through containerd", () => {
  it("gives 50 pods unique addresses from the node's pod CIDR, all reachable, and takes everything back", async () => {
    const pods: { id: string; ip: string; config: Input<PodSandboxConfig> }[] = [];
    try {
      for (let batch = 0; batch < 5; batch++) {
        pods.push(...(await Promise.all(Array.from({ length: 10 }, (_, i) => runPod(`p${batch * 10 + i}`)))));
      }
      const ips = pods.map((p) => p.ip);
      expect(new Set(ips).size).toBe(50);
      for (const ip of ips) expect(ip).toMatch(/^10\.88\.0\.(\d+)$/);
      expect(ips).not.toContain("10.88.0.1"); // the gateway, on the bridge
      expect(ips).not.toContain("10.88.0.255");

      // host-local's layout, one file per address naming its sandbox.
      expect(await reservedIps()).toEqual([...ips].sort());
      const first = pods[0];
      if (!first) throw new Error("no pod");
      expect(await readFile(join(ipamDir(), first.ip), "utf8")).toBe(`${first.id}\r\neth0`);
      expect((await ourLinks()).length).toBe(50);

      // The node reaches every pod; a pod reaches itself, its neighbours and its gateway.
      const fromNode = await Promise.all(ips.map((ip) => ping({}, ip)));
      expect(fromNode.filter((ok) => !ok)).toEqual([]);
      const second = pods[1];
      if (!second) throw new Error("no pod");
      expect(await ping({ pod: first.id }, first.ip)).toBe(true);
      expect(await ping({ pod: first.id }, second.ip)).toBe(true);
      expect(await ping({ pod: second.id }, first.ip)).toBe(true);
      expect(await ping({ pod: first.id }, "10.88.0.1")).toBe(true);

      // Inside the pod: the interface, its address and the default route via the bridge.
      const addr = await cni.node.execInPod(first.id, "ip", ["-4", "-o", "addr", "show", "eth0"]);
      expect(addr.stdout).toContain(`${first.ip}/24`);
      const route = await cni.node.execInPod(first.id, "ip", ["route", "show", "default"]);
      expect(route.stdout).toContain("default via 10.88.0.1 dev eth0");
      const sysctl = await cni.node.exec("cat", ["/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/bridge/bridge-nf-call-iptables"]);
      expect(sysctl.stdout.split("\n").slice(0, 2)).toEqual(["1", "1"]);
      const hairpin = await cni.node.exec("sh", ["-c", "cat /sys/class/net/cni0/brif/*/hairpin_mode | sort -u"]);
      expect(hairpin.stdout.trim()).toBe("1");
    } finally {
      for (let i = 0; i < pods.length; i += 10) await Promise.all(pods.slice(i, i + 10).map(removePod));
    }
    expect(await reservedIps()).toEqual([]);
    // The daemon deletes the veth pairs just after answering DEL.
    await pollUntil(ourLinks, (links) => links.length === 0, { timeoutMs: 5000, message: "the veth pairs to be deleted" });
  });

  it("keeps serving through the one-shot plugin when the daemon is down, and picks the daemon up again", async () => {
    await cni.stopDaemon();
    try {
      const pod = await runPod("no-daemon");
      expect(pod.ip).toMatch(/^10\.88\.0\.\d+$/);
      expect(await ping({}, pod.ip)).toBe(true);
      await removePod(pod);
      expect(await reservedIps()).toEqual([]);
    } finally {
      await cni.startDaemon();
    }
    const pod = await runPod("daemon-again");
    expect(await ping({}, pod.ip)).toBe(true);
    await removePod(pod);
  });
});

describe("a CNI daemon killed in the middle of ADDs", () => {
  it("leaves nothing that the runtime's DELs and a GC do not clean", async () => {
    const runs = Array.from({ length: 10 }, (_, i) => runPod(`crash${i}`).then((p) => p, (err: unknown) => err as Error));
    await new Promise((r) => setTimeout(r, 40));
    const pid = cni.daemonPid;
    if (pid) process.kill(pid, "SIGKILL");
    await cni.stopDaemon("SIGKILL");
    const results = await Promise.all(runs);
    const pods = results.filter((r): r is { id: string; ip: string; config: Input<PodSandboxConfig> } => !(r instanceof Error));
    // Whatever failed was undone (containerd's DEL ran the one-shot plugin); what succeeded is intact.
    expect(await reservedIps()).toEqual(pods.map((p) => p.ip).sort());
    for (const p of pods) expect(await ping({}, p.ip)).toBe(true);
    await cni.startDaemon();
    for (const p of pods) await removePod(p);
    const gc = await cni.invoke({ CNI_COMMAND: "GC" }, { cniVersion: "1.1.0", name: "deckhand", ...cni.pluginConf(), "cni.dev/valid-attachments": [] });
    expect(gc.code, gc.stdout).toBe(0);
    expect(await reservedIps()).toEqual([]);
    await pollUntil(ourLinks, (links) => links.length === 0, { timeoutMs: 5000, message: "the veth pairs to be deleted" });
    const detached = await cni.node.exec("sh", ["-c", "ip -o link show | grep -c ': dhv' || true"]);
    expect(detached.stdout.trim()).toBe("0");
  });
});

describe("deckhand-bridge invoked directly", () => {
  const netConf = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ cniVersion: "1.1.0", name: "direct", ...cni.pluginConf({ bridge: "dhtest0", ipam: { type: "host-local", ranges: [[{ subnet: "10.77.0.0/29" }]] }, ...extra }) });
  const env = (command: string, id: string, netns?: string): Record<string, string> => ({ CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_IFNAME: "eth0", ...(netns ? { CNI_NETNS: netns } : {}) });
  const parse = (stdout: string): Record<string, unknown> => JSON.parse(stdout) as Record<string, unknown>;

  it("answers VERSION with 1.0.0 and 1.1.0 among its versions", async () => {
    const res = await cni.invoke({ CNI_COMMAND: "VERSION" }, { cniVersion: "1.1.0" });
    expect(res.code).toBe(0);
    expect(parse(res.stdout)).toEqual({ cniVersion: "1.1.0", supportedVersions: expect.arrayContaining(["1.0.0", "1.1.0"]) as unknown });
  });

  it("ADD, CHECK, DEL twice, with and without the netns, in daemon and one-shot mode", async () => {
    for (const mode of ["daemon", "one-shot"] as const) {
      const conf = mode === "daemon" ? netConf() : { ...netConf(), daemonSocket: "/run/deckhand-none/cni.sock" };
      const ns = await cni.createNetns(`check-${mode}`);
      const id = `check-${mode}`;
      try {
        const add = await cni.invoke(env("ADD", id, ns), conf);
        expect(add.code, add.stdout + add.stderr).toBe(0);
        const result = parse(add.stdout) as { cniVersion: string; interfaces: { name: string; sandbox?: string }[]; ips: { address: string; gateway: string; interface: number }[]; routes: { dst: string; gw?: string }[] };
        expect(result.cniVersion).toBe("1.1.0");
        expect(result.interfaces.map((i) => i.name)).toEqual(["dhtest0", expect.stringMatching(/^dhv[0-9a-f]{12}$/) as unknown, "eth0"]);
        expect(result.interfaces[2]?.sandbox).toBe(ns);
        expect(result.ips[0]).toEqual({ address: expect.stringMatching(/^10\.77\.0\.[2-6]\/29$/) as unknown, gateway: "10.77.0.1", interface: 2 });
        expect(result.routes).toEqual([{ dst: "0.0.0.0/0", gw: "10.77.0.1" }]);

        const check = await cni.invoke(env("CHECK", id, ns), { ...conf, prevResult: result });
        expect(check.code, check.stdout).toBe(0);
        // CHECK notices what went missing.
        await cni.node.exec("nsenter", [`--net=${ns}`, "ip", "addr", "flush", "dev", "eth0"]);
        const broken = await cni.invoke(env("CHECK", id, ns), { ...conf, prevResult: result });
        expect(broken.code).toBe(1);
        expect(parse(broken.stdout)["msg"]).toContain(`address ${result.ips[0]?.address ?? "?"} is missing`);

        const del = await cni.invoke(env("DEL", id, ns), conf);
        expect(del.code, del.stdout).toBe(0);
        const again = await cni.invoke(env("DEL", id), conf); // no netns this time: still fine
        expect(again.code, again.stdout).toBe(0);
        const files = await readdir(cni.node.hostPath("/var/lib/cni/networks/direct"));
        expect(files.filter((f) => f.startsWith("10."))).toEqual([]);
      } finally {
        await cni.deleteNetns(ns);
      }
    }
  });

  it("names the problem with the spec's codes: bad JSON, bad config, missing netns, exhausted range", async () => {
    const ns = await cni.createNetns("errors");
    const ids: string[] = [];
    try {
      const badJson = await cni.invoke(env("ADD", "e1", ns), "{ not json");
      expect(badJson.code).not.toBe(0);
      expect(parse(badJson.stdout)).toMatchObject({ code: 6, msg: expect.stringContaining("not valid JSON") as unknown });

      const badSubnet = await cni.invoke(env("ADD", "e2", ns), netConf({ ipam: { type: "host-local", ranges: [[{ subnet: "10.77.0.0/33" }]] } }));
      expect(parse(badSubnet.stdout)).toMatchObject({ code: 7, msg: expect.stringContaining("ipam.ranges[0][0].subnet") as unknown });

      const badVersion = await cni.invoke(env("ADD", "e3", ns), { ...netConf(), cniVersion: "2.0.0" });
      expect(parse(badVersion.stdout)).toMatchObject({ code: 1, msg: expect.stringContaining("2.0.0") as unknown });

      const noEnv = await cni.invoke({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "e4", CNI_IFNAME: "eth0" }, netConf());
      expect(parse(noEnv.stdout)).toMatchObject({ code: 4, msg: expect.stringContaining("CNI_NETNS") as unknown });

      const missing = await cni.invoke(env("ADD", "e5", "/var/lib/kubelet/dh-netns/does-not-exist"), netConf());
      expect(parse(missing.stdout)).toMatchObject({ code: 3, msg: expect.stringContaining("/var/lib/kubelet/dh-netns/does-not-exist does not exist") as unknown });
      // Nothing was kept for the failed ADD.
      expect((await readdir(cni.node.hostPath("/var/lib/cni/networks/direct")).catch(() => [])).filter((f) => f.startsWith("10."))).toEqual([]);

      // A failure after the address was reserved (the pod's interface name is taken) undoes everything.
      const first = await cni.invoke(env("ADD", "twice-a", ns), netConf());
      expect(first.code, first.stdout).toBe(0);
      const second = await cni.invoke(env("ADD", "twice-b", ns), netConf());
      expect(parse(second.stdout)).toMatchObject({ code: 100, msg: expect.stringContaining("interface eth0 already exists") as unknown });
      const kept = (await readdir(cni.node.hostPath("/var/lib/cni/networks/direct"))).filter((f) => f.startsWith("10."));
      expect(kept).toHaveLength(1);
      const twiceB = await cni.node.exec("sh", ["-c", "ip -o link show | grep -c ': dhv' || true"]);
      expect(twiceB.stdout.trim()).toBe("1");
      expect((await cni.invoke(env("DEL", "twice-a", ns), netConf())).code).toBe(0);

      // A /29 has five addresses for pods (.2-.6): the sixth ADD fails and says why; STATUS says so too.
      for (let i = 0; i < 5; i++) {
        const podNs = await cni.createNetns(`full-${i}`);
        ids.push(podNs);
        const ok = await cni.invoke(env("ADD", `full-${i}`, podNs), netConf());
        expect(ok.code, ok.stdout).toBe(0);
      }
      const full = await cni.invoke(env("ADD", "full-5", ns), netConf());
      expect(parse(full.stdout)).toMatchObject({ code: 101, msg: "no IP addresses available in range set: 10.77.0.1-10.77.0.6" });
      const status = await cni.invoke({ CNI_COMMAND: "STATUS" }, netConf());
      expect(parse(status.stdout)).toMatchObject({ code: 50, msg: expect.stringContaining("10.77.0.0/29") as unknown });
      // STATUS and GC need a 1.1.0 config.
      const oldStatus = await cni.invoke({ CNI_COMMAND: "STATUS" }, { ...netConf(), cniVersion: "1.0.0" });
      expect(parse(oldStatus.stdout)).toMatchObject({ code: 1 });

      // GC keeps the listed attachments and frees the rest: addresses and veth pairs.
      const gc = await cni.invoke({ CNI_COMMAND: "GC" }, { ...netConf(), "cni.dev/valid-attachments": [{ containerID: "full-0", ifname: "eth0" }] });
      expect(gc.code, gc.stdout).toBe(0);
      const left = (await readdir(cni.node.hostPath("/var/lib/cni/networks/direct"))).filter((f) => f.startsWith("10."));
      expect(left).toHaveLength(1);
      const links = await cni.node.exec("ip", ["-o", "link", "show", "master", "dhtest0"]);
      expect(links.stdout.trim().split("\n")).toHaveLength(1);
      const statusOk = await cni.invoke({ CNI_COMMAND: "STATUS" }, netConf());
      expect(statusOk.code, statusOk.stdout).toBe(0);
      const gcAll = await cni.invoke({ CNI_COMMAND: "GC" }, { ...netConf(), "cni.dev/valid-attachments": [] });
      expect(gcAll.code).toBe(0);
      expect((await readdir(cni.node.hostPath("/var/lib/cni/networks/direct"))).filter((f) => f.startsWith("10."))).toEqual([]);
    } finally {
      for (const p of ids) await cni.deleteNetns(p);
      await cni.deleteNetns(ns);
      await cni.node.exec("ip", ["link", "del", "dhtest0"], { allowFailure: true });
    }
  });
});
