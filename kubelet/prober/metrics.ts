/**
 * The prober's metrics under upstream's names, ready for the kubelet's /metrics/probes endpoint:
 * `prober_probe_total` (by probe_type, result, container, pod, namespace, pod_uid) and
 * `prober_probe_duration_seconds` (by probe_type, container, pod, namespace; observed for successful and unknown
 * results only, as upstream). A worker's series are dropped when the worker ends, as upstream deletes them.
 * On the registry the proxy shares (src-shared/metrics.ts).
 */
import { Counter, Histogram, type Labels } from "../../src-shared/metrics.ts";
import type { ProbeResult } from "./results.ts";

/** Prometheus client_golang's DefBuckets (upstream's histogram sets none). */
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The labels one worker reports under. */
export interface ProbeMetricLabels {
  probe_type: string;
  container: string;
  pod: string;
  namespace: string;
  pod_uid: string;
}

/** A worker's view of the metrics. */
export interface WorkerSeries {
  /** One probe run's result and its duration. */
  record(result: ProbeResult, seconds: number): void;
  /** Drops the worker's series. */
  forget(): void;
}

export class ProberMetrics {
  readonly probeTotal = new Counter("prober_probe_total", "Cumulative number of a liveness, readiness or startup probe for a container by result.", { stabilityLevel: "BETA", labelled: true });
  readonly probeDuration = new Histogram("prober_probe_duration_seconds", "Duration in seconds for a probe response.", DEFAULT_BUCKETS, { labelled: true });

  // Labels in name order, as Prometheus' Go client writes them.
  private static totalLabels(l: ProbeMetricLabels, result: string): Labels {
    return { container: l.container, namespace: l.namespace, pod: l.pod, pod_uid: l.pod_uid, probe_type: l.probe_type, result };
  }

  private static durationLabels(l: ProbeMetricLabels): Labels {
    return { container: l.container, namespace: l.namespace, pod: l.pod, probe_type: l.probe_type };
  }

  /**
   * One worker's series, bound once (as upstream's worker keeps its label sets): recording a run formats no
   * labels, and `forget` drops the worker's series when it ends, as upstream deletes them.
   */
  forWorker(l: ProbeMetricLabels): WorkerSeries {
    const total = {
      Success: this.probeTotal.with(ProberMetrics.totalLabels(l, "successful")),
      Failure: this.probeTotal.with(ProberMetrics.totalLabels(l, "failed")),
      Unknown: this.probeTotal.with(ProberMetrics.totalLabels(l, "unknown")),
    };
    const duration = this.probeDuration.with(ProberMetrics.durationLabels(l));
    return {
      // Durations of successful and unknown results only, as upstream.
      record: (result, seconds) => {
        total[result].inc();
        if (result !== "Failure") duration.observe(seconds);
      },
      forget: () => {
        for (const result of ["successful", "failed", "unknown"]) this.probeTotal.delete(ProberMetrics.totalLabels(l, result));
        this.probeDuration.delete(ProberMetrics.durationLabels(l));
      },
    };
  }

  /** Text exposition for /metrics/probes. */
  render(): string {
    return this.probeTotal.render() + this.probeDuration.render();
  }
}
