/**
 * A tiny Prometheus registry shared by the proxy's and the kubelet's metrics: counters, gauges and histograms
 * with optional labels, rendered in the text exposition format 0.0.4 as upstream's component-base writes them
 * (HELP with the stability level, labels in the order given, `le` last).
 */

export type Labels = Readonly<Record<string, string>>;

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

export interface Metric {
  readonly name: string;
  render(): string;
}

export interface MetricOptions {
  /** Upstream's stability level, shown in the HELP line (component-base metrics); default ALPHA. */
  stabilityLevel?: "ALPHA" | "BETA" | "STABLE";
  /**
   * A metric with labels (a Prometheus "vec"): shows nothing until a series exists. Without labels, a
   * histogram shows an empty series from the start.
   */
  labelled?: boolean;
}

abstract class Labelled<T> implements Metric {
  readonly name: string;
  readonly help: string;
  protected readonly options: MetricOptions;
  protected readonly series = new Map<string, { labels: Labels | undefined; value: T }>();
  protected abstract readonly type: string;
  constructor(name: string, help: string, options: MetricOptions = {}) {
    this.name = name;
    this.help = help;
    this.options = options;
  }
  protected entry(labels: Labels | undefined, init: () => T, key = labelText(labels)): { labels: Labels | undefined; value: T } {
    let e = this.series.get(key);
    if (!e) this.series.set(key, (e = { labels, value: init() }));
    return e;
  }
  protected header(): string {
    return `# HELP ${this.name} [${this.options.stabilityLevel ?? "ALPHA"}] ${this.help}\n# TYPE ${this.name} ${this.type}\n`;
  }
  /** Drops one series (labels in the order they were recorded with), as a vec's Delete. */
  delete(labels: Labels): void {
    this.series.delete(labelText(labels));
  }
  abstract render(): string;
}

export class Counter extends Labelled<number> {
  protected readonly type = "counter";
  inc(labels?: Labels, by = 1): void {
    this.entry(labels, () => 0).value += by;
  }
  /**
   * The series of `labels`, bound (upstream's vec.With): its labels are formatted once here, not at every
   * increment, for callers that update the same series often. A series dropped by delete() comes back at the
   * next increment.
   */
  with(labels: Labels): { inc(by?: number): void } {
    const key = labelText(labels);
    return { inc: (by = 1) => void (this.entry(labels, () => 0, key).value += by) };
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
  constructor(name: string, help: string, buckets: readonly number[], options: MetricOptions = {}) {
    super(name, help, options);
    this.buckets = buckets;
  }
  observe(value: number, labels?: Labels): void {
    this.observeAt(value, labels, undefined);
  }
  /** The series of `labels`, bound (as Counter.with). */
  with(labels: Labels): { observe(value: number): void } {
    const key = labelText(labels);
    return { observe: (value) => this.observeAt(value, labels, key) };
  }
  private observeAt(value: number, labels: Labels | undefined, key: string | undefined): void {
    const e = this.entry(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 }), key).value;
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] ?? Infinity)) e.counts[i] = (e.counts[i] ?? 0) + 1;
    e.sum += value;
    e.count++;
  }
  count(labels?: Labels): number {
    return this.series.get(labelText(labels))?.value.count ?? 0;
  }
  render(): string {
    if (this.series.size === 0 && this.options.labelled) return "";
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
