/**
 * The usual frame of a kubelet e2e file: one test cluster with one sandbox node running the kubelet, started
 * before the file's tests and removed after them, printing the tail of the kubelet's log (KUBELET_LOG_LINES
 * lines, 30 by default) so a failure can be read.
 */
import type { V1Container, V1Pod, V1PodSpec, V1Service } from "@kubernetes/client-node";
import { afterAll, beforeAll } from "vitest";
import { TestCluster, type ClusterNode, type KubeletOptions, type TestClusterOptions } from "./cluster.ts";
import { eventually } from "./wait.ts";

export interface ClusterSuite {
  readonly cluster: TestCluster;
  /** The node (set once the suite's beforeAll has run). */
  readonly node: ClusterNode;
}

export function clusterWithOneNode(options: KubeletOptions = {}, clusterOptions: TestClusterOptions = {}): ClusterSuite {
  const cluster = new TestCluster(clusterOptions);
  let node: ClusterNode | undefined;
  beforeAll(async () => {
    await cluster.start();
    node = await cluster.addNode(options);
  });
  afterAll(async () => {
    if (node?.kubelet) console.log(`kubelet log tail:\n${await node.kubelet.logTail(Number(process.env["KUBELET_LOG_LINES"] ?? 30))}`);
    await cluster.teardown();
  });
  return {
    cluster,
    get node(): ClusterNode {
      if (!node) throw new Error("the suite's node is not started yet");
      return node;
    },
  };
}

/** Where the pods of the default namespace are (one by name). */
export function podsRef(name?: string): { group: string; version: string; resource: string; namespace: string; name?: string } {
  return { group: "", version: "v1", resource: "pods", namespace: "default", ...(name ? { name } : {}) };
}

/**
 * A busybox pod of the default namespace on `nodeName` running `script` in its one container "main" (1 s grace),
 * with container and spec fields added as given: the pod most e2e tests start from.
 */
export function busyboxPod(name: string, nodeName: string, script: string, o: { container?: Partial<V1Container>; spec?: Partial<V1PodSpec>; labels?: Record<string, string> } = {}): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      nodeName,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script], ...o.container }],
      ...o.spec,
    },
  };
}

/** Creates the pod and waits (60 s) until its first container runs; returns the pod as the API then has it. */
export async function createRunningPod(cluster: TestCluster, pod: V1Pod): Promise<V1Pod> {
  const name = pod.metadata?.name ?? "";
  await cluster.client.create(podsRef(), pod);
  return eventually(async () => {
    const p = await cluster.client.get<V1Pod>(podsRef(name));
    return p.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
  }, { timeoutMs: 60_000, message: `pod ${name} running` });
}

/** A ClusterIP Service in the default namespace for the pods labelled `selector`, `port` to `targetPort`; its ClusterIP. */
export async function createClusterIPService(cluster: TestCluster, name: string, selector: Record<string, string>, port: number, targetPort: number | string): Promise<string> {
  const svc = await cluster.client.create<V1Service>({ group: "", version: "v1", resource: "services", namespace: "default" }, {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default" },
    spec: { selector, ports: [{ port, targetPort }] },
  });
  return svc.spec?.clusterIP ?? "";
}
