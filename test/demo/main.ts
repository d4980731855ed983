/**
 * `npm run demo`: a cluster of N worker nodes (2 by default, `--nodes N`) on this machine. The local control
 * plane serves the Kubernetes API on 127.0.0.1; each sandbox node (its own network namespace, mount namespace
 * and containerd, joined to the others by the test underlay) runs deckhand's kubelet, which registers the Node,
 * gets a pod CIDR, writes the deckhand-bridge CNI config and routes the other nodes' pod CIDRs, and deckhand's
 * kube-proxy. One sample pod per node, a busybox web server behind a Service, serves a page from a ConfigMap
 * volume (an edit of the ConfigMap reaches it), with a readiness probe and a postStart hook. The demo shows the
 * nodes and pods as `kubectl get -o wide` does, a request to the Service's ClusterIP answered by a pod on
 * another node, `kubectl top`, `kubectl logs` and `exec` through the control plane to the kubelet's API, and
 * the kubelet's API through `kubectl proxy`. It keeps running until Ctrl-C; `--once` checks all of it, tears
 * everything down and exits 0 (non-zero on the first check that fails). `--kubelet-config FILE` merges a
 * KubeletConfiguration over every node's (reservations, eviction thresholds, podPidsLimit...: see
 * kubelet-config.ts); a bad file stops the demo before it starts anything.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import type { V1Pod, V1Service } from "@kubernetes/client-node";
import { TestCluster, type ClusterNode, type KubeletOptions } from "../harness/cluster.ts";
import { eventually, pollUntil } from "../harness/wait.ts";
import { DeckhandError, isDeckhandError } from "../../src-shared/errors.ts";
import { parseDemoArgs } from "./args.ts";
import { demoKubeletConfig } from "./kubelet-config.ts";
import { startKubectlProxy } from "./kubectl-proxy.ts";
import { helloPod, helloService, pageConfigMap, parseWhoami, SERVICE } from "./manifests.ts";

const args = (() => {
  try {
    return parseDemoArgs(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    console.error("usage: npm run demo [-- --once] [--nodes N] [--kubelet-config FILE]");
    process.exit(2);
  }
})();
/** What every node's kubelet gets: the --kubelet-config file's fields merged over the harness's configuration. */
const kubeletOptions: KubeletOptions = {};
if (args.kubeletConfig !== undefined) {
  try {
    kubeletOptions.config = demoKubeletConfig(readFileSync(args.kubeletConfig, "utf8"), args.kubeletConfig);
  } catch (err) {
    console.error(`demo: --kubelet-config ${args.kubeletConfig}: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
}

const started = Date.now();
let tornDown = false;
// Ctrl-C (or SIGTERM) at any time: while setting up, the demo stops at its next step (every `say`) or wait and
// removes what it made; once up, it tears down at once.
const interrupt = new AbortController();
const stopped = new Promise<void>((resolve) => {
  const stop = (): void => {
    interrupt.abort(new DeckhandError("Cancelled", "interrupted"));
    resolve();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
});
const { signal } = interrupt;
const say = (text: string): void => {
  if (signal.aborted && !tornDown) throw new DeckhandError("Cancelled", "interrupted");
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${text}`);
};
const indent = (text: string): string => text.trimEnd().replace(/^/gm, "    ");

// metrics.k8s.io as metrics-server serves it, scraping every 5 s (metrics-server's default is 15 s; shorter
// here so that `kubectl top` has figures soon after the kubelets' second stats sample).
const cluster = new TestCluster({ metricsResolutionMs: 5_000 });
/** Processes the demo started beside the cluster (kube-proxy on each node, kubectl proxy), stopped first. */
const children: { what: string; child: ChildProcess; log: () => string }[] = [];

async function teardown(): Promise<void> {
  if (tornDown) return;
  tornDown = true;
  say("tearing down: kube-proxy, kubectl proxy, kubelets, pods, containerd, namespaces, the underlay, the control plane");
  await Promise.all(children.map(({ child }) => stopChild(child)));
  await cluster.teardown();
  say("done: nothing left behind");
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** kubectl that must succeed; its stdout. */
async function kubectl(argv: readonly string[], input?: string): Promise<string> {
  const res = await cluster.kubectl(argv, input);
  if (res.code !== 0) throw new Error(`kubectl ${argv.join(" ")} failed: ${res.stderr.trim()}`);
  return res.stdout;
}

async function main(): Promise<void> {
  say("starting the control plane (the Kubernetes API on 127.0.0.1, for tests and this demo) and the underlay joining the nodes");
  await cluster.start();
  say(`API at ${cluster.controlPlane.url}; admin kubeconfig ${cluster.adminKubeconfig}`);
  say(`starting ${args.nodes} worker node(s) at once: network namespace on the underlay, mount namespace, containerd, then deckhand's kubelet`);
  if (args.kubeletConfig !== undefined) say(`the kubelets' configuration: the demo's, with ${Object.keys(kubeletOptions.config ?? {}).join(", ") || "nothing"} from ${args.kubeletConfig}`);
  const nodes = await Promise.all(Array.from({ length: args.nodes }, () => cluster.addNode(kubeletOptions)));
  for (const n of nodes) say(`node ${n.name}: netns ${n.sandbox.netnsPath}, node IP ${n.sandbox.nodeIP ?? "?"}, kubelet log ${n.kubelet?.logPath ?? "?"}`);
  say("waiting for every node to be Ready (registered, its pod CIDR's CNI config loaded by containerd)");
  await eventually(async () => {
    const out = await kubectl(["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]);
    const ready = out.split("\n").filter((l) => l.endsWith("=True")).length;
    return ready === nodes.length ? true : undefined;
  }, { signal, timeoutMs: 60_000, intervalMs: 500, message: "every node to be Ready" });
  if (args.kubeletConfig !== undefined) {
    const shown = await kubectl(["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}:{\"\\n\"}  capacity: {.status.capacity}{\"\\n\"}  allocatable: {.status.allocatable}{\"\\n\"}  taints: {.spec.taints}{\"\\n\"}{end}"]);
    say(`with ${args.kubeletConfig}:\n${indent(shown)}`);
  }
  // kube-proxy on each node, as a DaemonSet would run it, with the node's credentials.
  for (const n of nodes) children.push({ what: `kube-proxy of ${n.name}`, ...(await n.startKubeProxy()) });
  say(`kube-proxy started on ${nodes.length} node(s); kubectl get nodes -o wide:\n${indent(await kubectl(["get", "nodes", "-o", "wide"]))}`);

  // The page comes from a ConfigMap mounted as a volume: edits reach the running pods' files.
  say(`kubectl create -f hello-page.yaml: ${(await kubectl(["create", "-f", "-"], JSON.stringify(pageConfigMap("hello from a ConfigMap, served by pods run by deckhand")))).trim()}`);
  const t0 = Date.now();
  const podNames = nodes.map((_, i) => `hello-${i + 1}`);
  for (const [i, n] of nodes.entries()) await kubectl(["create", "-f", "-"], JSON.stringify(helloPod(podNames[i] ?? "", n.name)));
  const svc = JSON.parse(await kubectl(["create", "-f", "-", "-o", "json"], JSON.stringify(helloService()))) as V1Service;
  const vip = svc.spec?.clusterIP ?? "";
  say(`kubectl create: pods ${podNames.join(", ")} (one per node, by its hostname label) and Service ${SERVICE} with ClusterIP ${vip}`);
  const pods = await eventually(async () => {
    const { items } = await cluster.client.get<{ items: V1Pod[] }>({ group: "", version: "v1", resource: "pods", namespace: "default" });
    const ready = items.filter((p) => p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True");
    return ready.length === podNames.length ? ready : undefined;
  }, { signal, timeoutMs: 60_000, message: "every hello pod to be Ready" });
  say(`all ${pods.length} pods Running and Ready (their HTTP readiness probes answered) ${Date.now() - t0} ms after creation`);
  say(`kubectl get pods -o wide:\n${indent(await kubectl(["get", "pods", "-o", "wide"]))}`);
  say(`kubectl get service ${SERVICE} -o wide; kubectl get endpointslices -l kubernetes.io/service-name=${SERVICE}:\n${indent(await kubectl(["get", "service", SERVICE, "-o", "wide"]))}\n${indent(await kubectl(["get", "endpointslices", "-l", `kubernetes.io/service-name=${SERVICE}`]))}`);

  // The ClusterIP from the first node's pod, until a pod on another node answers (kube-proxy picks at random).
  const first = nodes[0] as ClusterNode;
  const from = podNames[0] ?? "";
  const whoami = async (): Promise<string> => (await cluster.kubectl(["exec", from, "--", "timeout", "2", "wget", "-q", "-O", "-", `http://${vip}/whoami`])).stdout;
  const other = nodes.length > 1;
  const answer = await pollUntil(async () => parseWhoami(await whoami()), (a) => a !== undefined && (!other || a.node !== first.name), {
    signal,
    timeoutMs: 30_000,
    intervalMs: 200,
    message: `the ClusterIP ${vip} to be answered ${other ? "by a pod on another node" : "by the pod"}`,
  });
  if (answer === undefined) throw new Error("no answer from the ClusterIP");
  const answering = pods.find((p) => p.metadata?.name === answer.pod);
  if (answering?.status?.podIP !== answer.ip || answering.spec?.nodeName !== answer.node) throw new Error(`the answer ${JSON.stringify(answer)} does not match pod ${answer.pod} in the API`);
  say(`kubectl exec ${from} -- wget -O - http://${vip}/whoami (from ${first.name}): answered by ${answer.pod} (${answer.ip}) on ${answer.node}${other ? `, a pod on ${nodes.length === 2 ? "the other" : "another"} node: DNAT by kube-proxy, routed over the underlay` : ""}`);
  const ready = ((Date.now() - started) / 1000).toFixed(1);

  // A pod on another node straight from the first node, then a ConfigMap edit reaching every pod's page.
  const target = answering;
  const podIP = target.status?.podIP ?? "";
  const fetchPage = async (): Promise<string> => (await first.exec("timeout", ["2", "busybox", "wget", "-q", "-O", "-", `http://${podIP}:8080/`])).stdout;
  const body = await pollUntil(fetchPage, (b) => b.includes("hello"), { signal, timeoutMs: 10_000, message: `the pod to answer on http://${podIP}:8080/` });
  say(`GET http://${podIP}:8080/ (${answer.pod}) from node ${first.name}: ${body.trim()}`);
  const t1 = Date.now();
  await kubectl(["replace", "-f", "-"], JSON.stringify(pageConfigMap("hello again: this page was edited in the ConfigMap")));
  const after = await pollUntil(fetchPage, (b) => b.includes("again"), { signal, timeoutMs: 30_000, message: "the edited page to be served" });
  say(`kubectl replace -f hello-page.yaml; ${Date.now() - t1} ms later ${answer.pod} serves: ${after.trim()}`);

  // Through the kubelet's API on :10250, proxied by the control plane as kube-apiserver does.
  const logs = await kubectl(["logs", answer.pod, "--tail", "4"]);
  if (!logs.includes("response:200")) throw new Error(`kubectl logs ${answer.pod} shows no request served: ${logs}`);
  say(`kubectl logs ${answer.pod} --tail 4 (its web server's log of the requests above):\n${indent(logs)}`);
  const exec = await kubectl(["exec", from, "--", "sh", "-c", "echo postStart ran at $(cat /tmp/started-at); ls /var/run/secrets/kubernetes.io/serviceaccount"]);
  if (!/postStart ran at \S/.test(exec) || !exec.includes("token")) throw new Error(`kubectl exec ${from} shows no postStart file or token: ${exec}`);
  say(`kubectl exec ${from} -- ... (the postStart hook's file, the service account token volume):\n${indent(exec)}`);
  say(`kubectl get events (the kubelet's, for ${from}):\n${indent(await kubectl(["get", "events", "--field-selector", `involvedObject.name=${from}`, "--sort-by", ".lastTimestamp"]))}`);

  // kubectl top needs two stats samples by each kubelet (10 s apart) and a scrape of each.
  say(`waiting for kubectl top (each kubelet samples every 10 s; a rate needs two samples); ready in ${ready} s`);
  const top = await eventually(async () => {
    const [p, n] = [await cluster.kubectl(["top", "pods"]), await cluster.kubectl(["top", "nodes"])];
    if (p.code !== 0 || n.code !== 0) return undefined;
    return podNames.every((name) => p.stdout.includes(name)) && nodes.every((x) => n.stdout.includes(x.name)) ? { pods: p.stdout, nodes: n.stdout } : undefined;
  }, { signal, timeoutMs: 60_000, intervalMs: 2_000, message: "kubectl top to show every pod and node" });
  say(`kubectl top nodes:\n${indent(top.nodes)}`);
  say(`kubectl top pods:\n${indent(top.pods)}`);

  // The kubelet's API through the control plane's node proxy, opened as an operator does: `kubectl proxy`.
  const kp = await startKubectlProxy(cluster.adminKubeconfig);
  children.push({ what: "kubectl proxy", child: kp.child, log: () => "" });
  const statsUrl = `${kp.url}/api/v1/nodes/${first.name}/proxy/stats/summary`;
  type Summary = { node?: { nodeName?: string }; pods?: { podRef?: { name?: string } }[] };
  const summary = await eventually(async () => {
    const res = await fetch(statsUrl, { signal: AbortSignal.timeout(5_000) });
    const s = (res.ok ? await res.json() : {}) as Summary;
    return s.node?.nodeName === first.name && s.pods?.some((p) => p.podRef?.name === from) ? s : undefined;
  }, { signal, timeoutMs: 30_000, intervalMs: 1_000, message: `${statsUrl} to describe ${first.name} and its pod ${from}` });
  say(`kubectl proxy: GET ${statsUrl} gives the kubelet's Summary of ${first.name}, ${summary.pods?.length ?? 0} pod(s) (the node page will be at ${kp.url}/api/v1/nodes/${first.name}/proxy/ui/)`);

  if (args.once) {
    say(`--once: every check passed (nodes Ready, pods Ready, ClusterIP${other ? " across nodes" : ""}, ConfigMap edit, logs, exec, node proxy, kubectl top); ready in ${ready} s`);
    await teardown();
    return;
  }
  const kc = `kubectl --kubeconfig ${cluster.adminKubeconfig}`;
  console.log(`
The cluster is up (ready in ${ready} s). Try, in another shell:
  ${kc} get nodes -o wide
  ${kc} get pods,services,endpointslices -o wide
  ${kc} describe pod ${from}
  ${kc} top nodes; ${kc} top pods
  ${kc} logs -f ${answer.pod}
  ${kc} exec -it ${from} -- sh          (then: wget -q -O - http://${vip}/whoami)
  ${kc} edit configmap hello-page
  ${kc} run sleeper --image=localhost/busybox:1 --image-pull-policy=IfNotPresent -- sleep 3600
  ${kc} delete pod ${answer.pod}
  curl ${statsUrl}     (kubectl proxy, running)
  nsenter --net=${first.sandbox.netnsPath} busybox wget -q -O - http://${podIP}:8080/
Ctrl-C stops everything and removes it.`);
  await stopped;
  await teardown();
}

try {
  await main();
} catch (err) {
  if (isDeckhandError(err, "Cancelled") || signal.aborted) {
    console.error("demo interrupted: removing what it made");
    await teardown().catch((e: unknown) => console.error(String(e)));
    process.exit(130);
  }
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  for (const n of cluster.nodes) if (n.kubelet) console.error(`kubelet log tail of ${n.name}:\n${await n.kubelet.logTail(20)}`);
  for (const c of children) if (c.log()) console.error(`${c.what}, log tail:\n${c.log().trimEnd().split("\n").slice(-10).join("\n")}`);
  await teardown().catch((e: unknown) => console.error(String(e)));
  process.exitCode = 1;
}
