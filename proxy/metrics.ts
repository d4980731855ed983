/**
 * kube-proxy's Prometheus metrics under upstream's names (pkg/proxy/metrics/metrics.go), rendered in the
 * text exposition format 0.0.4. A tiny registry: counters, gauges and histograms with optional labels.
 */

type Labels = Readonly<Record<string, string>>;

function labelText(labels: Labels | undefined, extra?: [string, string]): string {
  const parts = Object.entries(labels ?? {}).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  if (extra) parts.push(`${extra[0]}="${extra[1]}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function num(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

interface Metric {
  readonly name: string;
  render(): string;
}

abstract class Labelled<T> implements Metric {
  readonly name: string;
  readonly help: string;
  protected readonly series = new Map<string, { labels: Labels | undefined; value: T }>();
  protected abstract readonly type: string;
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  protected entry(labels: Labels | undefined, init: () => T): { labels: Labels | undefined; value: T } {
    const key = labelText(labels);
    let e = this.series.get(key);
    if (!e) this.series.set(key, (e = { labels, value: init() }));
    return e;
  }
  protected header(): string {
    return `# HELP ${this.name} [ALPHA] ${this.help}\n# TYPE ${this.name} ${this.type}\n`;
  }
  abstract render(): string;
}

export class Counter extends Labelled<number> {
  protected readonly type = "counter";
  inc(labels?: Labels, by = 1): void {
    this.entry(labels, () => 0).value += by;
  }
  get(labels?: Labels): number {
    return this.series.get(labelText(labels))?.value ?? 0;
  }
  render(): string {
    if (this.series.size === 0) return "";
    let out = this.header();
    for (const { labels, value } of this.series.values()) out += `${this.name}${labelText(labels)} ${num(value)}\n`;
    return out;
  }
}

export class Gauge extends Labelled<number> {
  protected readonly type = "gauge";
  set(value: number, labels?: Labels): void {
    this.entry(labels, () => 0).value = value;
  }
  get(labels?: Labels): number {
    return this.series.get(labelText(labels))?.value ?? 0;
  }
  setToCurrentTime(labels?: Labels): void {
    this.set(Date.now() / 1000, labels);
  }
  render(): string {
    if (this.series.size === 0) return "";
    let out = this.header();
    for (const { labels, value } of this.series.values()) out += `${this.name}${labelText(labels)} ${num(value)}\n`;
    return out;
  }
}

interface HistogramValue {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Labelled<HistogramValue> {
  protected readonly type = "histogram";
  readonly buckets: readonly number[];
  constructor(name: string, help: string, buckets: readonly number[]) {
    super(name, help);
    this.buckets = buckets;
  }
  observe(value: number, labels?: Labels): void {
    const e = this.entry(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 })).value;
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] ?? Infinity)) e.counts[i] = (e.counts[i] ?? 0) + 1;
    e.sum += value;
    e.count++;
  }
  count(labels?: Labels): number {
    return this.series.get(labelText(labels))?.value.count ?? 0;
  }
  render(): string {
    let out = this.header();
    if (this.series.size === 0) this.entry(undefined, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    for (const { labels, value } of this.series.values()) {
      this.buckets.forEach((b, i) => {
        out += `${this.name}_bucket${labelText(labels, ["le", num(b)])} ${value.counts[i] ?? 0}\n`;
      });
      out += `${this.name}_bucket${labelText(labels, ["le", "+Inf"])} ${value.count}\n`;
      out += `${this.name}_sum${labelText(labels)} ${num(value.sum)}\n`;
      out += `${this.name}_count${labelText(labels)} ${value.count}\n`;
    }
    return out;
  }
}

export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}

export function linearBuckets(start: number, width: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + width * i);
}

/** The metrics of one kube-proxy (iptables mode). */
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
  readonly proxyHealthzTotal = new Counter("kubeproxy_proxy_healthz_total", "Cumulative proxy healthz HTTP status");
  readonly proxyLivezTotal = new Counter("kubeproxy_proxy_livez_total", "Cumulative proxy livez HTTP status");
  readonly syncProxyRulesLastQueuedTimestamp = new Gauge("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "The last time a sync of proxy rules was queued");
  readonly syncProxyRulesNoLocalEndpointsTotal = new Gauge(
    "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
    "Number of services with a Local traffic policy and no endpoints",
  );

  private readonly all: Metric[] = [
    this.syncProxyRulesLatency,
    this.syncFullProxyRulesLatency,
    this.syncPartialProxyRulesLatency,
    this.syncProxyRulesLastTimestamp,
    this.networkProgrammingLatency,
    this.endpointChangesPending,
    this.endpointChangesTotal,
    this.serviceChangesPending,
    this.serviceChangesTotal,
    this.iptablesRestoreFailuresTotal,
    this.iptablesPartialRestoreFailuresTotal,
    this.iptablesRulesTotal,
    this.iptablesRulesLastSync,
    this.proxyHealthzTotal,
    this.proxyLivezTotal,
    this.syncProxyRulesLastQueuedTimestamp,
    this.syncProxyRulesNoLocalEndpointsTotal,
  ];

  constructor() {
    // Counters without labels are exported from the start (as upstream's registry does), at 0.
    for (const c of [this.endpointChangesTotal, this.serviceChangesTotal, this.iptablesRestoreFailuresTotal, this.iptablesPartialRestoreFailuresTotal]) c.inc(undefined, 0);
  }

  render(): string {
    return this.all.map((m) => m.render()).join("");
  }
}
