/**
 * kube-proxy's Prometheus metrics under upstream's names (pkg/proxy/metrics/metrics.go), on the shared registry
 * (src-shared/metrics.ts), rendered in the text exposition format 0.0.4.
 */
import { Counter, exponentialBuckets, Gauge, Histogram, linearBuckets, type Metric } from "../src-shared/metrics.ts";
import { restClientRequests } from "../src-shared/kube/client-metrics.ts";

/** The metrics of one kube-proxy; the mode-specific ones only for its mode, as upstream's RegisterMetrics(mode). */
export class ProxyMetrics {
  readonly syncProxyRulesLatency = new Histogram("kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds", exponentialBuckets(0.001, 2, 15));
  readonly syncFullProxyRulesLatency = new Histogram(
    "kubeproxy_sync_full_proxy_rules_duration_seconds",
    "SyncProxyRules latency in seconds for full resyncs",
    exponentialBuckets(0.001, 2, 15),
  );
  readonly syncPartialProxyRulesLatency = new Histogram(
    "kubeproxy_sync_partial_proxy_rules_duration_seconds",
    "SyncProxyRules latency in seconds for partial resyncs",
    exponentialBuckets(0.001, 2, 15),
  );
  readonly syncProxyRulesLastTimestamp = new Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds", "The last time proxy rules were successfully synced");
  readonly networkProgrammingLatency = new Histogram("kubeproxy_network_programming_duration_seconds", "In Cluster Network Programming Latency in seconds", [
    ...linearBuckets(0.25, 0.25, 2),
    ...linearBuckets(1, 1, 59),
    ...linearBuckets(60, 5, 12),
    ...linearBuckets(120, 30, 7),
  ]);
  readonly endpointChangesPending = new Gauge("kubeproxy_sync_proxy_rules_endpoint_changes_pending", "Pending proxy rules Endpoint changes");
  readonly endpointChangesTotal = new Counter("kubeproxy_sync_proxy_rules_endpoint_changes_total", "Cumulative proxy rules Endpoint changes");
  readonly serviceChangesPending = new Gauge("kubeproxy_sync_proxy_rules_service_changes_pending", "Pending proxy rules Service changes");
  readonly serviceChangesTotal = new Counter("kubeproxy_sync_proxy_rules_service_changes_total", "Cumulative proxy rules Service changes");
  readonly iptablesRestoreFailuresTotal = new Counter("kubeproxy_sync_proxy_rules_iptables_restore_failures_total", "Cumulative proxy iptables restore failures");
  readonly iptablesPartialRestoreFailuresTotal = new Counter(
    "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total",
    "Cumulative proxy iptables partial restore failures",
  );
  readonly iptablesRulesTotal = new Gauge("kubeproxy_sync_proxy_rules_iptables_total", "Total number of iptables rules owned by kube-proxy");
  readonly iptablesRulesLastSync = new Gauge("kubeproxy_sync_proxy_rules_iptables_last", "Number of iptables rules written by kube-proxy in last sync");
  readonly nftablesSyncFailuresTotal = new Counter("kubeproxy_sync_proxy_rules_nftables_sync_failures_total", "Cumulative proxy nftables sync failures");
  readonly nftablesCleanupFailuresTotal = new Counter("kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total", "Cumulative proxy nftables cleanup failures");
  readonly proxyHealthzTotal = new Counter("kubeproxy_proxy_healthz_total", "Cumulative proxy healthz HTTP status");
  readonly proxyLivezTotal = new Counter("kubeproxy_proxy_livez_total", "Cumulative proxy livez HTTP status");
  readonly syncProxyRulesLastQueuedTimestamp = new Gauge("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "The last time a sync of proxy rules was queued");
  readonly syncProxyRulesNoLocalEndpointsTotal = new Gauge(
    "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
    "Number of services with a Local traffic policy and no endpoints",
  );

  private readonly all: Metric[];

  constructor(mode: "iptables" | "nftables" = "iptables") {
    const modeMetrics: Metric[] =
      mode === "iptables"
        ? [this.iptablesRestoreFailuresTotal, this.iptablesPartialRestoreFailuresTotal, this.iptablesRulesTotal, this.iptablesRulesLastSync]
        : [this.nftablesSyncFailuresTotal, this.nftablesCleanupFailuresTotal];
    this.all = [
      this.syncProxyRulesLatency,
      this.syncFullProxyRulesLatency,
      this.syncPartialProxyRulesLatency,
      this.syncProxyRulesLastTimestamp,
      this.networkProgrammingLatency,
      this.endpointChangesPending,
      this.endpointChangesTotal,
      this.serviceChangesPending,
      this.serviceChangesTotal,
      ...modeMetrics,
      this.proxyHealthzTotal,
      this.proxyLivezTotal,
      this.syncProxyRulesLastQueuedTimestamp,
      this.syncProxyRulesNoLocalEndpointsTotal,
      // client-go's, registered by component-base in every component: the API requests of this process.
      restClientRequests,
    ];
    // Counters without labels are exported from the start (as upstream's registry does), at 0.
    for (const m of [this.endpointChangesTotal, this.serviceChangesTotal, ...modeMetrics]) if (m instanceof Counter) m.inc(undefined, 0);
  }

  render(): string {
    return this.all.map((m) => m.render()).join("");
  }
}
