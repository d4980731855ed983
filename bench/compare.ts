/** Percentiles for benchmark figures (nearest-rank, as most latency reports use). */
export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
  };
}

export function formatMs(ms: number): string {
  return `${ms.toFixed(1).padStart(7)} ms`;
}

/**
 * Runs each step in turn, round after round (reference, ours, reference, ours...), after `warmup` rounds that
 * are not recorded: on a machine whose load drifts, two series measured at different times cannot be
 * compared, while interleaved ones see the same load. Steps record their own samples (`record` is false
 * during the warm-up).
 */
export async function interleave(options: { rounds: number; warmup: number }, steps: readonly ((round: number, record: boolean) => Promise<void>)[]): Promise<void> {
  for (let r = 0; r < options.warmup + options.rounds; r++) {
    for (const step of steps) await step(r - options.warmup, r >= options.warmup);
  }
}

export interface Comparison {
  reference: Summary;
  ours: Summary;
  /** ours p50 / reference p50 (below 1: faster than the reference). */
  ratioP50: number;
  /** ours p50 − reference p50. */
  overheadP50: number;
  /** Median of the per-round differences (ours[i] − reference[i]): the overhead with the round's load cancelled. */
  pairedOverheadP50: number;
}

export function compare(reference: readonly number[], ours: readonly number[]): Comparison {
  const r = summarize(reference);
  const o = summarize(ours);
  const paired = ours.slice(0, reference.length).map((v, i) => v - (reference[i] ?? Number.NaN));
  return { reference: r, ours: o, ratioP50: o.p50 / r.p50, overheadP50: o.p50 - r.p50, pairedOverheadP50: summarize(paired).p50 };
}

export function summaryRow(label: string, s: Summary, width = 40): string {
  return `  ${label.padEnd(width)} p50 ${formatMs(s.p50)}  p90 ${formatMs(s.p90)}  p99 ${formatMs(s.p99)}  (n=${s.n})`;
}

/** Both series, their ratio and overhead at p50, and the target beside them when there is one. */
export function printComparison(title: string, names: { reference: string; ours: string }, c: Comparison, target?: string): void {
  console.log(title);
  console.log(summaryRow(names.reference, c.reference));
  console.log(summaryRow(names.ours, c.ours));
  console.log(
    `  ${"ours / reference at p50".padEnd(40)} ${c.ratioP50.toFixed(2)}×   overhead p50 ${formatMs(c.overheadP50)}   paired overhead p50 ${formatMs(c.pairedOverheadP50)}${target ? `   target: ${target}` : ""}`,
  );
}

/** Prints the kernel's time inside a busybox container (adjtimex: status, then tv_sec and tv_usec, which holds ns under STA_NANO). */
export const ADJTIMEX_STAMP = "adjtimex | grep -e status: -e tv_";

/**
 * Times in ms since the epoch from `ADJTIMEX_STAMP` outputs, one after the other; lines may carry a prefix (a
 * CRI log line's time and stream).
 */
export function parseStamps(text: string): number[] {
  const out: number[] = [];
  let nano = false;
  let sec = 0;
  for (const line of text.split("\n")) {
    const m = /(status|time\.tv_sec|time\.tv_usec):\s+(\d+)/.exec(line);
    if (!m) continue;
    const v = Number(m[2]);
    if (m[1] === "status") nano = (v & 0x2000) !== 0;
    else if (m[1] === "time.tv_sec") sec = v;
    else out.push(sec * 1000 + (nano ? v / 1e6 : v / 1e3));
  }
  return out;
}
