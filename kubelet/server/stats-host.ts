/**
 * The stats routes' side of the server host: the collector's latest snapshot (cadvisor/collector.ts) joined with
 * what the kubelet knows of its pods (the PLEG's runtime pods, their containers from the pod cache, the
 * status manager's startTime) into the Summary (cadvisor/summary.ts) and the resource metrics.
 */
import type { Kubelet } from "../kubelet.ts";
import { kubepodsPath, type StatsCollector } from "../../cadvisor/collector.ts";
import type { FsStatsCollector } from "../../cadvisor/fs-collector.ts";
import type { MachineInfo } from "../../cadvisor/machine.ts";
import { readBootTime, readRlimit } from "../../cadvisor/node-facts.ts";
import { buildSummary, resourceMetrics, type PodInfo, type Summary, type SummaryProvider } from "../../cadvisor/summary.ts";
import { cadvisorMetrics } from "../../cadvisor/cadvisor-metrics.ts";

/** The stats routes' source; its statsSummary is the SummaryProvider the eviction manager reads. */
export interface StatsHost extends SummaryProvider {
  resourceMetrics(): string;
  cadvisorMetrics(): string;
}

function podInfos(kubelet: Kubelet): PodInfo[] {
  const out: PodInfo[] = [];
  for (const p of kubelet.pleg.runtimePods().values()) {
    const status = kubelet.podCache.get(p.uid).status;
    const seen = new Set<string>();
    const containers: PodInfo["containers"] = [];
    // Newest first: the latest container of each name.
    for (const c of status.containers) {
      if (seen.has(c.name)) continue;
      seen.add(c.name);
      containers.push({ name: c.name, id: c.id, startTimeMs: c.startedAt || c.createdAt, image: c.image });
    }
    const start = kubelet.statusManager.getStatus(p.uid)?.startTime;
    const startMs = start === undefined ? NaN : Date.parse(String(start));
    out.push({ uid: p.uid, name: p.name, namespace: p.namespace, containers, ...(Number.isFinite(startMs) ? { startTimeMs: startMs } : {}) });
  }
  return out;
}

export function statsHost(kubelet: Kubelet, nodeName: string, cgroupRoot: string, collector: StatsCollector, machine: () => MachineInfo, fsCollector?: Pick<FsStatsCollector, "snapshot">): StatsHost {
  const bootTimeMs = readBootTime();
  const summary = (onlyCpuAndMemory: boolean): Summary => {
    const m = machine();
    const fs = onlyCpuAndMemory ? undefined : fsCollector?.snapshot();
    return buildSummary({
      nodeName,
      bootTimeMs,
      memoryCapacityBytes: m.memoryCapacity,
      swapCapacityBytes: m.swapCapacity,
      snapshot: collector.snapshot(),
      pods: podInfos(kubelet),
      ...(m.rootFs ? { rootFs: m.rootFs } : {}),
      ...(m.imageFs ? { imageFs: m.imageFs } : {}),
      ...(fs ? { fs } : {}),
      ...(onlyCpuAndMemory ? {} : { rlimit: readRlimit() }),
      onlyCpuAndMemory,
    });
  };
  return {
    statsSummary: summary,
    resourceMetrics: () => resourceMetrics(collector.snapshot() === undefined ? undefined : summary(true)),
    cadvisorMetrics: () => {
      const fs = fsCollector?.snapshot();
      return cadvisorMetrics({ snapshot: collector.snapshot(), pods: podInfos(kubelet), machine: machine(), kubepodsPath: kubepodsPath(cgroupRoot), nowMs: Date.now(), ...(fs ? { fs } : {}) });
    },
  };
}
