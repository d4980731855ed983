/**
 * Admission of pod fields the kubelet does not implement yet, through the real API and kubelet process: a pod
 * asking for one is refused (Failed, the field named, a Warning event) and never reaches the runtime; the pod of
 * an ordinary Deployment, with the service account volume the API server adds, runs with it mounted.
 */
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";
import { eventually } from "../../harness/wait.ts";

const suite = clusterWithOneNode();
const cluster = suite.cluster;
const pods = podsRef;
const SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";

function pod(name: string, extra: { container?: Record<string, unknown>; spec?: Record<string, unknown>; labels?: Record<string, string> } = {}): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels: { app: name, ...extra.labels } },
    spec: {
      terminationGracePeriodSeconds: 5,
      containers: [{ name: "main", image: "localhost/busybox:1", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"], ...extra.container }],
      ...extra.spec,
    },
  };
}

async function waitForPhase(name: string, phase: string, timeoutMs = 60_000): Promise<V1Pod> {
  return eventually(async () => {
    const p = await cluster.client.get<V1Pod>(pods(name));
    return p.status?.phase === phase ? p : undefined;
  }, { message: `pod ${name} to be ${phase}`, timeoutMs: timeoutMs });
}

async function podEvents(name: string): Promise<CoreV1Event[]> {
  const res = await cluster.kubectl(["get", "events", "-n", "default", "--field-selector", `involvedObject.kind=Pod,involvedObject.name=${name}`, "-o", "json"]);
  if (res.code !== 0) throw new Error(res.stderr);
  return (JSON.parse(res.stdout) as { items: CoreV1Event[] }).items;
}

async function sandboxesOf(uid: string): Promise<string[]> {
  const { items } = await suite.node.sandbox.criClient().runtime("ListPodSandbox", { filter: { label_selector: { "io.kubernetes.pod.uid": uid } } });
  return items.map((s) => s.id);
}

describe("unsupported pod fields", () => {
  it("refuses a pod with a persistentVolumeClaim volume: Failed with the field named, a Warning event, and no sandbox in the runtime", async () => {
    const created = await cluster.client.create<V1Pod>(pods(), pod("probed", { spec: { nodeName: suite.node.name, volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }] } }));
    const failed = await waitForPhase("probed", "Failed");
    expect(failed.status?.reason).toBe("UnsupportedPodField");
    expect(failed.status?.message).toBe('Pod field spec.volumes[0].persistentVolumeClaim="data" is not supported by this kubelet yet');
    const event = await eventually(async () => (await podEvents("probed")).find((e) => e.reason === "UnsupportedPodField"), { message: "the refusal's Warning event" });
    expect(event).toMatchObject({ type: "Warning", message: failed.status?.message, involvedObject: { uid: created.metadata?.uid } });

    // A pod created after it runs: the kubelet has gone past the refused one, which the runtime never saw.
    const witness = await cluster.client.create<V1Pod>(pods(), pod("witness", { spec: { nodeName: suite.node.name } }));
    await waitForPhase("witness", "Running");
    expect(await sandboxesOf(witness.metadata?.uid ?? "")).toHaveLength(1);
    expect(await sandboxesOf(created.metadata?.uid ?? "")).toEqual([]);
    expect((await cluster.client.get<V1Pod>(pods("probed"))).status?.containerStatuses ?? []).toEqual([]);
  });

  it("runs the pod of an ordinary Deployment with its service account token mounted, and no warning", async () => {
    // As a Deployment's template makes it: scheduled by the scheduler, with the scheduler's fields set.
    await cluster.client.create<V1Pod>(
      pods(),
      pod("web-5d8f7c9b4-abcde", {
        labels: { "pod-template-hash": "5d8f7c9b4" },
        spec: {
          nodeSelector: { "kubernetes.io/os": "linux" },
          tolerations: [{ key: "example.com/dedicated", operator: "Exists", effect: "NoSchedule" }],
          affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { app: "web" } } } }] } },
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: { app: "web" } } }],
        },
      }),
    );
    const running = await waitForPhase("web-5d8f7c9b4-abcde", "Running");
    // The API server added the token volume and its mount: this is the pod every real cluster sends.
    const volume = running.spec?.volumes?.find((v) => v.name.startsWith("kube-api-access-"));
    expect(volume?.projected?.sources?.map((s) => Object.keys(s)[0])).toEqual(["serviceAccountToken", "configMap", "downwardAPI"]);
    expect(running.spec?.containers[0]?.volumeMounts).toEqual([{ name: volume?.name, readOnly: true, mountPath: SA_PATH }]);

    // The runtime runs the container with that mount, read-only.
    const cri = suite.node.sandbox.criClient();
    const { containers } = await cri.runtime("ListContainers", { filter: { label_selector: { "io.kubernetes.pod.uid": running.metadata?.uid ?? "" } } });
    expect(containers).toHaveLength(1);
    const { status } = await cri.runtime("ContainerStatus", { container_id: containers[0]?.id ?? "" });
    expect(status?.state).toBe("CONTAINER_RUNNING");
    expect(status?.mounts.find((m) => m.container_path === SA_PATH)).toMatchObject({ readonly: true, host_path: `/var/lib/kubelet/pods/${running.metadata?.uid ?? ""}/volumes/kubernetes.io~projected/${volume?.name ?? ""}` });
    // Its events are the ordinary ones (the pod is Running: they have all been sent), no warning among them.
    const events = await eventually(async () => {
      const e = await podEvents("web-5d8f7c9b4-abcde");
      return e.some((x) => x.reason === "Started") ? e : undefined;
    }, { message: "the Started event" });
    expect(events.filter((e) => e.type === "Warning")).toEqual([]);
  });
});
