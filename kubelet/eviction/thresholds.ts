/**
 * Eviction thresholds, as upstream's pkg/kubelet/eviction/helpers.go and api/types.go: parsed from
 * evictionHard / evictionSoft / evictionSoftGracePeriod / evictionMinimumReclaim (the config already validated
 * them: kubelet/config/validate.ts), a hard `memory.available` copied to `allocatableMemory.available` when
 * enforceNodeAllocatable holds `pods`; which thresholds the observations meet (with or without the minimum
 * reclaim), their grace periods, the node conditions they raise and the transition period that holds them.
 * Pure: no I/O, no clock (callers pass `now`).
 */
import { Quantity } from "../../src-shared/quantity.ts";

export type Signal =
  | "memory.available"
  | "allocatableMemory.available"
  | "nodefs.available"
  | "nodefs.inodesFree"
  | "imagefs.available"
  | "imagefs.inodesFree"
  | "containerfs.available"
  | "containerfs.inodesFree"
  | "pid.available";

export type NodeConditionType = "MemoryPressure" | "DiskPressure" | "PIDPressure";
/** What a signal is short of: `memory`, `ephemeral-storage`, and upstream's internal `inodes` and `pids`. */
export type StarvedResource = "memory" | "ephemeral-storage" | "inodes" | "pids";

export const SIGNAL_TO_CONDITION: Readonly<Record<Signal, NodeConditionType>> = {
  "memory.available": "MemoryPressure",
  "allocatableMemory.available": "MemoryPressure",
  "nodefs.available": "DiskPressure",
  "nodefs.inodesFree": "DiskPressure",
  "imagefs.available": "DiskPressure",
  "imagefs.inodesFree": "DiskPressure",
  "containerfs.available": "DiskPressure",
  "containerfs.inodesFree": "DiskPressure",
  "pid.available": "PIDPressure",
};

export const SIGNAL_TO_RESOURCE: Readonly<Record<Signal, StarvedResource>> = {
  "memory.available": "memory",
  "allocatableMemory.available": "memory",
  "nodefs.available": "ephemeral-storage",
  "nodefs.inodesFree": "inodes",
  "imagefs.available": "ephemeral-storage",
  "imagefs.inodesFree": "inodes",
  "containerfs.available": "ephemeral-storage",
  "containerfs.inodesFree": "inodes",
  "pid.available": "pids",
};

export function isSignal(s: string): s is Signal {
  return Object.hasOwn(SIGNAL_TO_RESOURCE, s);
}

/** A quantity (bytes, inodes, pids) or a fraction of the signal's capacity in (0, 1). */
export type ThresholdValue = { quantity: Quantity } | { percentage: number };

export interface Threshold {
  signal: Signal;
  value: ThresholdValue;
  /** 0: hard (immediate). */
  gracePeriodMs: number;
  minReclaim?: ThresholdValue;
}

/** What a signal measures now: available and capacity in the signal's unit, and when it was read. */
export interface Observation {
  available: number;
  capacity: number;
  /** ms since the epoch (0: unknown). */
  timeMs: number;
}

export type Observations = ReadonlyMap<Signal, Observation>;

export interface ThresholdConfig {
  evictionHard: Readonly<Record<string, string>>;
  evictionSoft: Readonly<Record<string, string>>;
  evictionSoftGracePeriod: Readonly<Record<string, number>>;
  evictionMinimumReclaim: Readonly<Record<string, string>>;
  enforceNodeAllocatable: readonly string[];
}

/** parseThresholdStatement's value: undefined for 0% and 100% (upstream ignores them). Throws on bad text. */
export function parseThresholdValue(text: string): ThresholdValue | undefined {
  if (text.endsWith("%")) {
    const pct = Number(text.slice(0, -1));
    if (!Number.isFinite(pct) || pct < 0 || pct > 100) throw new RangeError(`invalid percentage ${JSON.stringify(text)}`);
    if (pct === 0 || pct === 100) return undefined;
    return { percentage: pct / 100 };
  }
  return { quantity: Quantity.parse(text) };
}

/** upstream's ParseThresholdConfig (the config was validated first: unknown signals are skipped). */
export function parseThresholdConfig(c: ThresholdConfig): Threshold[] {
  const statements = (m: Readonly<Record<string, string>>): { signal: Signal; value: ThresholdValue }[] =>
    Object.entries(m).flatMap(([signal, text]) => {
      if (!isSignal(signal)) return [];
      const value = parseThresholdValue(text);
      return value ? [{ signal, value }] : [];
    });
  const minReclaims = new Map<Signal, ThresholdValue>();
  for (const [signal, text] of Object.entries(c.evictionMinimumReclaim)) {
    if (!isSignal(signal)) continue;
    const v = text.endsWith("%") ? { percentage: Number(text.slice(0, -1)) / 100 } : { quantity: Quantity.parse(text) };
    minReclaims.set(signal, v);
  }
  const out: Threshold[] = [
    ...statements(c.evictionHard).map((s) => ({ ...s, gracePeriodMs: 0 })),
    ...statements(c.evictionSoft).map((s) => ({ ...s, gracePeriodMs: c.evictionSoftGracePeriod[s.signal] ?? 0 })),
  ];
  for (const t of out) {
    const mr = minReclaims.get(t.signal);
    if (mr) t.minReclaim = mr;
  }
  if (c.enforceNodeAllocatable.includes("pods")) {
    for (const t of [...out]) {
      if (t.signal === "memory.available" && isHard(t)) out.push({ ...t, signal: "allocatableMemory.available" });
    }
  }
  return out;
}

export function isHard(t: Threshold): boolean {
  return t.gracePeriodMs === 0;
}

/** GetThresholdQuantity: the value in the signal's unit, a percentage taken of the capacity. */
export function thresholdQuantity(value: ThresholdValue, capacity: number): number {
  return "quantity" in value ? value.quantity.value() : Math.trunc(capacity * value.percentage);
}

/** The threshold's value as upstream prints it in messages (`100Mi`, or the bytes a percentage stands for). */
export function thresholdQuantityText(t: Threshold, capacity: number): string {
  if ("quantity" in t.value) return t.value.quantity.toString();
  return Quantity.of(thresholdQuantity(t.value, capacity), formatOf(t.signal)).toString();
}

/** Bytes print as BinarySI, counts (inodes, pids) as DecimalSI, as upstream's observations. */
export function formatOf(signal: Signal): "BinarySI" | "DecimalSI" {
  return signal.endsWith("inodesFree") || signal === "pid.available" ? "DecimalSI" : "BinarySI";
}

/** A stable identity (upstream keys its maps by the Threshold struct). */
export function thresholdKey(t: Threshold): string {
  const v = (x: ThresholdValue | undefined): string => (x === undefined ? "" : "quantity" in x ? x.quantity.toString() : `${x.percentage * 100}%`);
  return `${t.signal}|${t.gracePeriodMs}|${v(t.value)}|${v(t.minReclaim)}`;
}

/** thresholdsMet: those whose signal is below the threshold (plus its minimum reclaim when enforced). */
export function thresholdsMet(thresholds: readonly Threshold[], observations: Observations, enforceMinReclaim: boolean): Threshold[] {
  return thresholds.filter((t) => {
    const o = observations.get(t.signal);
    if (!o) return false;
    let q = thresholdQuantity(t.value, o.capacity);
    if (enforceMinReclaim && t.minReclaim) q += thresholdQuantity(t.minReclaim, o.capacity);
    return q > o.available;
  });
}

export function mergeThresholds(a: readonly Threshold[], b: readonly Threshold[]): Threshold[] {
  const keys = new Set(a.map(thresholdKey));
  return [...a, ...b.filter((t) => !keys.has(thresholdKey(t)))];
}

/** When each threshold met now was first met (kept from `previous`, else now). */
export function thresholdsFirstObservedAt(thresholds: readonly Threshold[], previous: ReadonlyMap<string, { threshold: Threshold; at: number }>, now: number): Map<string, { threshold: Threshold; at: number }> {
  const out = new Map<string, { threshold: Threshold; at: number }>();
  for (const t of thresholds) {
    const k = thresholdKey(t);
    out.set(k, { threshold: t, at: previous.get(k)?.at ?? now });
  }
  return out;
}

/** Those whose grace period has passed since they were first met. */
export function thresholdsMetGracePeriod(observedAt: ReadonlyMap<string, { threshold: Threshold; at: number }>, now: number): Threshold[] {
  return [...observedAt.values()].filter(({ threshold, at }) => now - at >= threshold.gracePeriodMs).map(({ threshold }) => threshold);
}

export function nodeConditions(thresholds: readonly Threshold[]): NodeConditionType[] {
  return [...new Set(thresholds.map((t) => SIGNAL_TO_CONDITION[t.signal]))];
}

/** The conditions observed now get `now`; the others keep their last time. */
export function nodeConditionsLastObservedAt(conditions: readonly NodeConditionType[], previous: ReadonlyMap<NodeConditionType, number>, now: number): Map<NodeConditionType, number> {
  const out = new Map(previous);
  for (const c of conditions) out.set(c, now);
  return out;
}

/** A condition holds while it was last observed within the transition period. */
export function nodeConditionsObservedSince(observedAt: ReadonlyMap<NodeConditionType, number>, periodMs: number, now: number): NodeConditionType[] {
  return [...observedAt].filter(([, at]) => now - at < periodMs).map(([c]) => c);
}

/** thresholdsUpdatedStats: those whose observation is newer than the last one acted on. */
export function thresholdsUpdatedStats(thresholds: readonly Threshold[], observations: Observations, last: Observations): Threshold[] {
  return thresholds.filter((t) => {
    const o = observations.get(t.signal);
    if (!o) return false;
    const l = last.get(t.signal);
    return !l || o.timeMs === 0 || o.timeMs > l.timeMs;
  });
}

/** byEvictionPriority: memory signals first, signals without a resource last (stable otherwise). */
export function sortByEvictionPriority(thresholds: readonly Threshold[]): Threshold[] {
  const rank = (t: Threshold): number => (SIGNAL_TO_RESOURCE[t.signal] === "memory" ? 0 : 1);
  return [...thresholds].sort((a, b) => rank(a) - rank(b));
}
