import { describe, expect, it } from "vitest";
import { KubeletMetrics } from "../../../kubelet/metrics.ts";
import type { PodRuntimeStatus } from "../../../kubelet/runtime/types.ts";

const pod = (sandbox: "ready" | "notready", states: ("running" | "exited")[]): PodRuntimeStatus => ({
  uid: "u",
  name: "p",
  namespace: "ns",
  sandboxes: [{ id: "s", attempt: 0, state: sandbox, createdAt: 0, ips: [] }],
  containers: states.map((state, i) => ({ id: `c${i}`, name: `c${i}`, attempt: 0, state, image: "", imageRef: "", hash: "", createdAt: 0, startedAt: 0, finishedAt: 0, exitCode: 0, reason: "", message: "", kind: "regular" })),
});

describe("the kubelet's /metrics", () => {
  it("reports upstream's names from the runtime pod cache and the PLEG", () => {
    const m = new KubeletMetrics({ nodeName: "node-1", pods: () => [pod("ready", ["running", "exited"]), pod("notready", ["exited"])], lastRelistAt: () => 1_700_000_000_000 });
    m.observeRelist(30);
    m.observeEviction("memory.available");
    m.observeEviction("memory.available");
    m.observeEviction("emptydirfs.limit");
    m.observePodStart(2.5);
    m.observePodWorker("create", 0.2);
    const text = m.render();
    expect(text).toContain('kubelet_evictions{eviction_signal="memory.available"} 2\n');
    expect(text).toContain('kubelet_evictions{eviction_signal="emptydirfs.limit"} 1\n');
    expect(text).toContain('kubelet_pod_start_duration_seconds_bucket{le="2"} 0\nkubelet_pod_start_duration_seconds_bucket{le="3"} 1\n');
    expect(text).toContain('kubelet_pod_start_duration_seconds_bucket{le="3600"} 1\n');
    expect(text).toContain('kubelet_pod_worker_duration_seconds_bucket{operation_type="create",le="0.25"} 1\n');
    expect(text).toContain('# HELP kubelet_node_name [ALPHA] The node\'s name. The count is always 1.\n# TYPE kubelet_node_name gauge\nkubelet_node_name{node="node-1"} 1\n');
    expect(text).toContain("kubelet_running_pods 1\n");
    expect(text).toContain('kubelet_running_containers{container_state="running"} 1\n');
    expect(text).toContain('kubelet_running_containers{container_state="exited"} 2\n');
    expect(text).toContain('kubelet_pleg_relist_duration_seconds_bucket{le="0.05"} 1\n');
    expect(text).toContain("kubelet_pleg_relist_duration_seconds_count 1\n");
    expect(text).toContain("kubelet_pleg_last_seen_seconds 1700000000\n");
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m);
    expect(text).toMatch(/^process_cpu_seconds_total [\d.]+$/m);
    // Every sample belongs to a family declared by a TYPE line, each declared once.
    const types = [...text.matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1]);
    expect(new Set(types).size).toBe(types.length);
    for (const line of text.split("\n").filter((l) => l !== "" && !l.startsWith("#"))) {
      const name = /^[a-z_]+/.exec(line)?.[0] ?? "";
      expect(types.some((t) => name === t || name.startsWith(`${t ?? ""}_`)), line).toBe(true);
    }
  });
});
