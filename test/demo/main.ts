/**
 * `npm run demo`: a single-node cluster on this machine. The local control plane serves the Kubernetes API on
 * 127.0.0.1; a sandbox worker node (its own network namespace, mount namespace and containerd) runs deckhand's
 * kubelet, which registers the Node, gets a pod CIDR, writes the deckhand-bridge CNI config and runs a sample
 * pod, a busybox web server reachable over the pod network, serving a page from a ConfigMap volume (an edit of
 * the ConfigMap reaches it), with a readiness probe and a postStart hook; `kubectl logs` and `kubectl exec` go
 * through the control plane to the kubelet's API. It prints kubectl commands to try and keeps
 * running until Ctrl-C; `--once` checks the pod is Running and reachable, tears everything down and exits 0.
 */
import { parseArgs } from "node:util";
import type { V1Pod } from "@kubernetes/client-node";
import { TestCluster, type ClusterNode } from "../harness/cluster.ts";
import { eventually, pollUntil } from "../harness/wait.ts";

const { values } = parseArgs({ options: { once: { type: "boolean", default: false } } });
const started = Date.now();
const say = (text: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${text}`);
const indent = (text: string): string => text.trimEnd().replace(/^/gm, "    ");

// metrics.k8s.io as metrics-server serves it (its default 15 s resolution): `kubectl top` works on the demo.
const cluster = new TestCluster({ metricsResolutionMs: 15_000 });
let node: ClusterNode | undefined;
let tornDown = false;

async function teardown(): Promise<void> {
  if (tornDown) return;
  tornDown = true;
  say("tearing down: kubelet, pods, containerd, namespaces, control plane");
  await cluster.teardown();
  say("done: nothing left behind");
}

async function main(): Promise<void> {
  say("starting the control plane (the Kubernetes API on 127.0.0.1, for tests and this demo)");
  await cluster.start();
  say(`API at ${cluster.controlPlane.url}; admin kubeconfig ${cluster.adminKubeconfig}`);
  say("starting a worker node: network namespace, mount namespace, containerd, then deckhand's kubelet");
  node = await cluster.addNode();
  const n = node;
  say(`node ${n.name}: netns ${n.sandbox.netnsPath}, node IP ${n.sandbox.nodeIP ?? "?"}, kubelet log ${n.kubelet?.logPath ?? "?"}`);
  await eventually(async () => {
    const res = await cluster.kubectl(["get", "node", n.name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]);
    return res.stdout === "True" ? true : undefined;
  }, { timeoutMs: 60_000, message: "the node to be Ready" });
  say(`kubectl get nodes -o wide:\n${indent((await cluster.kubectl(["get", "nodes", "-o", "wide"])).stdout)}`);

  // The page comes from a ConfigMap mounted as a volume: edits reach the running pod's files.
  const page = (text: string): unknown => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "hello-page", namespace: "default" }, data: { "index.html": `${text}\n` } });
  const cm = await cluster.kubectl(["create", "-f", "-"], JSON.stringify(page("hello from a ConfigMap, served by a pod run by deckhand")));
  if (cm.code !== 0) throw new Error(`kubectl create configmap failed: ${cm.stderr}`);
  say(`kubectl create -f hello-page.yaml: ${cm.stdout.trim()}`);
  const pod: V1Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "hello", namespace: "default", labels: { app: "hello" } },
    spec: {
      terminationGracePeriodSeconds: 5,
      volumes: [{ name: "page", configMap: { name: "hello-page" } }],
      containers: [
        {
          name: "web",
          image: "localhost/busybox:1",
          imagePullPolicy: "IfNotPresent",
          command: ["sh", "-c", 'echo "serving /www on :8080"; exec httpd -f -vv -p 8080 -h /www'],
          ports: [{ name: "http", containerPort: 8080 }],
          volumeMounts: [{ name: "page", mountPath: "/www", readOnly: true }],
          // Ready only once the kubelet's prober has had an answer from the page.
          readinessProbe: { httpGet: { path: "/", port: "http" }, periodSeconds: 2 },
          lifecycle: { postStart: { exec: { command: ["sh", "-c", "date > /tmp/started-at"] } } },
          resources: { requests: { cpu: "50m", memory: "16Mi" }, limits: { memory: "32Mi" } },
        },
      ],
    },
  };
  const t0 = Date.now();
  const created = await cluster.kubectl(["create", "-f", "-"], JSON.stringify(pod));
  if (created.code !== 0) throw new Error(`kubectl create failed: ${created.stderr}`);
  say(`kubectl create -f hello.yaml: ${created.stdout.trim()} (the control plane's binder puts it on ${n.name})`);
  const running = await eventually(async () => {
    const p = await cluster.client.get<V1Pod>({ group: "", version: "v1", resource: "pods", namespace: "default", name: "hello" });
    return p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True" ? p : undefined;
  }, { timeoutMs: 60_000, message: "hello to be Ready" });
  const podIP = running.status?.podIP ?? "";
  say(`pod hello is Running and Ready (its HTTP readiness probe answered) ${Date.now() - t0} ms after creation, pod IP ${podIP}`);
  say(`kubectl get pods -o wide:\n${indent((await cluster.kubectl(["get", "pods", "-o", "wide"])).stdout)}`);

  const body = await pollUntil(async () => (await n.exec("timeout", ["2", "busybox", "wget", "-q", "-O", "-", `http://${podIP}:8080/`])).stdout, (b) => b.includes("hello"), {
    timeoutMs: 10_000,
    message: `the pod to answer on http://${podIP}:8080/`,
  });
  say(`GET http://${podIP}:8080/ from the node: ${body.trim()}`);

  // A ConfigMap edit reaches the mounted file (the kubelet watches the ConfigMaps its pods use).
  const t1 = Date.now();
  const edited = await cluster.kubectl(["replace", "-f", "-"], JSON.stringify(page("hello again: this page was edited in the ConfigMap")));
  if (edited.code !== 0) throw new Error(`kubectl replace configmap failed: ${edited.stderr}`);
  const after = await pollUntil(async () => (await n.exec("timeout", ["2", "busybox", "wget", "-q", "-O", "-", `http://${podIP}:8080/`])).stdout, (b) => b.includes("again"), {
    timeoutMs: 30_000,
    message: "the edited page to be served",
  });
  say(`kubectl replace -f hello-page.yaml; ${Date.now() - t1} ms later the pod serves: ${after.trim()}`);
  // Through the kubelet's API on :10250, proxied by the control plane as kube-apiserver does.
  const logs = await cluster.kubectl(["logs", "hello", "--tail", "3"]);
  if (logs.code !== 0) throw new Error(`kubectl logs failed: ${logs.stderr}`);
  say(`kubectl logs hello --tail 3:\n${indent(logs.stdout)}`);
  const exec = await cluster.kubectl(["exec", "hello", "--", "sh", "-c", "echo postStart ran at $(cat /tmp/started-at); ls /var/run/secrets/kubernetes.io/serviceaccount"]);
  if (exec.code !== 0) throw new Error(`kubectl exec failed: ${exec.stderr}`);
  say(`kubectl exec hello -- ... (the postStart hook's file, the service account token volume):\n${indent(exec.stdout)}`);
  const events = await cluster.kubectl(["get", "events", "--field-selector", "involvedObject.name=hello", "--sort-by", ".lastTimestamp"]);
  say(`kubectl get events (the kubelet's, for hello):\n${indent(events.stdout)}`);

  if (values.once) {
    await teardown();
    return;
  }
  const kc = `kubectl --kubeconfig ${cluster.adminKubeconfig}`;
  console.log(`
The cluster is up. Try, in another shell:
  ${kc} get nodes -o wide
  ${kc} get pods -o wide
  ${kc} describe pod hello
  ${kc} top pods; ${kc} top node     (once the kubelet has sampled twice, ~20 s)
  ${kc} logs -f hello
  ${kc} exec -it hello -- sh
  ${kc} edit configmap hello-page
  ${kc} run sleeper --image=localhost/busybox:1 --image-pull-policy=IfNotPresent -- sleep 3600
  ${kc} delete pod hello
  nsenter --net=${n.sandbox.netnsPath} busybox wget -q -O - http://${podIP}:8080/
Ctrl-C stops everything and removes it.`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await teardown();
}

try {
  await main();
} catch (err) {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  if (node?.kubelet) console.error(`kubelet log tail:\n${await node.kubelet.logTail(20)}`);
  await teardown().catch((e: unknown) => console.error(String(e)));
  process.exitCode = 1;
}
