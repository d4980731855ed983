/**
 * `npm run bench -- cni [--runs N]`: ADD and DEL latency of deckhand-bridge (through its daemon, and one-shot
 * without it) and of the reference `bridge` + `host-local` from Debian's containernetworking-plugins, same
 * config, same sandbox node, interleaved in the same run. Each plugin is run as containerd runs it: a process
 * in the node's namespaces, config on stdin, CNI_* in the environment. The figures include the cost of
 * starting that process from this one (the "spawn floor" line: nsenter running /bin/true).
 */
import { spawn } from "node:child_process";
import { CniNode, LAUNCHER } from "../test/harness/cni-node.ts";
import { compare, interleave, printComparison, summarize, summaryRow } from "./compare.ts";

interface Sample {
  add: number[];
  del: number[];
}

const args = process.argv.slice(2);
const runsArg = args.indexOf("--runs");
const RUNS = runsArg >= 0 ? Number(args[runsArg + 1]) : 100;

function timed(node: CniNode, file: string, env: Record<string, string>, input: string): Promise<{ ms: number; code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn("nsenter", [`--mount=${node.node.mountNsFile}`, `--net=${node.node.netnsPath}`, file], {
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", (code) => resolve({ ms: performance.now() - t0, code, out: Buffer.concat(out).toString() }));
    child.stdin.on("error", () => undefined);
    child.stdin.end(input);
  });
}

async function main(): Promise<void> {
  const cni = new CniNode({ importImages: false, withoutConflist: true });
  await cni.start();
  try {
    const base = { isGateway: true, isDefaultGateway: true, hairpinMode: true, ipMasq: false };
    const confs = {
      reference: { cniVersion: "1.0.0", name: "bench-ref", type: "bridge", bridge: "brref", ...base, ipam: { type: "host-local", ranges: [[{ subnet: "10.90.0.0/24" }]] } },
      daemon: { cniVersion: "1.0.0", name: "bench-dh", type: "deckhand-bridge", bridge: "brdh", ...base, daemonSocket: cni.daemonSocket, ipam: { type: "host-local", ranges: [[{ subnet: "10.91.0.0/24" }]] } },
      oneShot: { cniVersion: "1.0.0", name: "bench-dh1", type: "deckhand-bridge", bridge: "brdh1", ...base, daemonSocket: "/run/deckhand-bench-none/cni.sock", ipam: { type: "host-local", ranges: [[{ subnet: "10.92.0.0/24" }]] } },
    };
    const plugins = {
      reference: "/usr/lib/cni/bridge",
      daemon: LAUNCHER,
      oneShot: LAUNCHER,
    };
    type Name = keyof typeof plugins;
    const names = Object.keys(plugins) as Name[];
    const netns: Record<Name, string[]> = { reference: [], daemon: [], oneShot: [] };
    for (const n of names) for (let i = 0; i < 4; i++) netns[n].push(await cni.createNetns(`bench-${n}-${i}`));
    const samples: Record<Name, Sample> = { reference: { add: [], del: [] }, daemon: { add: [], del: [] }, oneShot: { add: [], del: [] } };
    const floor: number[] = [];

    const oneRound = async (n: Name, i: number, record: boolean): Promise<void> => {
      const env = { CNI_CONTAINERID: `bench${i}`, CNI_NETNS: netns[n][i % 4] ?? "", CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni" };
      const input = JSON.stringify(confs[n]);
      const add = await timed(cni, plugins[n], { ...env, CNI_COMMAND: "ADD" }, input);
      if (add.code !== 0) throw new Error(`${n} ADD failed: ${add.out}`);
      const del = await timed(cni, plugins[n], { ...env, CNI_COMMAND: "DEL" }, input);
      if (del.code !== 0) throw new Error(`${n} DEL failed: ${del.out}`);
      if (record) {
        samples[n].add.push(add.ms);
        samples[n].del.push(del.ms);
      }
    };
    const oneShotRuns = Math.min(RUNS, 40);
    // Interleaved, so that whatever else the machine does weighs on every plugin alike; the warm-up rounds
    // create the bridges, fill page caches and start the daemon's helpers.
    const WARMUP = 3;
    await interleave({ rounds: RUNS, warmup: WARMUP }, [
      ...names.map((n) => async (i: number, record: boolean) => {
        if (n !== "oneShot" || i < oneShotRuns) await oneRound(n, i + WARMUP, record);
      }),
      async (_i: number, record: boolean) => {
        const ms = (await timed(cni, "/bin/true", {}, "")).ms;
        if (record) floor.push(ms);
      },
    ]);

    console.log(`\nCNI ADD/DEL latency, one at a time, as containerd runs a plugin, interleaved round by round after 3 warm-up rounds (${RUNS} runs; one-shot ${oneShotRuns})\n`);
    for (const [label, n] of [["deckhand-bridge (daemon)", "daemon"], ["deckhand-bridge (one-shot, no daemon)", "oneShot"]] as const) {
      for (const op of ["add", "del"] as const) {
        printComparison(`${label} ${op.toUpperCase()}:`, { reference: "reference bridge + host-local", ours: label }, compare(samples.reference[op], samples[n][op]));
      }
    }
    console.log(summaryRow("spawn floor (nsenter /bin/true)", summarize(floor)));
    console.log("\nratio = deckhand / reference (below 1 is faster). The daemon's DEL answers once the pod is cut off and");
    console.log("deletes the veth pair right after on a worker thread; that deletion overlaps the next ADD here.\n");
  } finally {
    await cni.teardown();
  }
}

await main();
