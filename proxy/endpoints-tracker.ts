/**
 * Tracks EndpointSlices and merges every slice of a Service into one endpoint list per service port
 * (upstream's EndpointsChangeTracker + EndpointSliceCache). An endpoint that shows up in two slices while it
 * moves between them counts once; a terminating copy never hides a running one with the same address.
 */
import type { V1EndpointSlice } from "@kubernetes/client-node";
import { canonicalIPv4 } from "./ip.ts";
import { endpointChainName, type EndpointInfo, type EndpointsMap, type Protocol } from "./types.ts";

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
/** Slices of headless Services: the proxier has nothing to do with them (upstream's informer filters them). */
export const HEADLESS_LABEL = "service.kubernetes.io/headless";
export const LAST_CHANGE_TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time";

export interface EndpointsUpdateResult {
  /** "ns/name" of every Service whose endpoints changed. */
  updatedServices: Set<string>;
  /** When each changed Service's endpoints were changed in the API (for the network programming latency). */
  lastChangeTriggerTimes: Map<string, number[]>;
  /** A UDP port lost (or changed the readiness of) an endpoint: stale conntrack entries must go. */
  conntrackCleanupRequired: boolean;
}

interface SliceKey {
  service: string;
  slice: string;
}

function sliceKey(slice: V1EndpointSlice): SliceKey | undefined {
  const ns = slice.metadata?.namespace;
  const name = slice.metadata?.name;
  const svc = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  if (!ns || !name || !svc) return undefined;
  return { service: `${ns}/${svc}`, slice: name };
}

function triggerTime(slice: V1EndpointSlice): number | undefined {
  const v = slice.metadata?.annotations?.[LAST_CHANGE_TRIGGER_TIME_ANNOTATION];
  if (!v) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

/** Endpoint lists per service-port key for one Service, from the slices that make it up. */
export function endpointsForService(service: string, slices: Iterable<V1EndpointSlice>, nodeName: string): Map<string, EndpointInfo[]> {
  const byPort = new Map<string, Map<string, EndpointInfo>>();
  for (const slice of slices) {
    if (slice.addressType !== "IPv4") continue;
    for (const port of slice.ports ?? []) {
      if (port.name === undefined || port.name === null) continue; // upstream: a nil name is ignored
      if (!port.port) continue;
      const protocol = (port.protocol ?? "TCP") as Protocol;
      const name = port.name === "" ? service : `${service}:${port.name}`;
      const key = `${name}/${protocol}`;
      let set = byPort.get(key);
      if (!set) byPort.set(key, (set = new Map<string, EndpointInfo>()));
      for (const ep of slice.endpoints ?? []) {
        const first = ep.addresses[0];
        if (first === undefined) continue;
        const ip = canonicalIPv4(first);
        if (!ip) continue;
        const c = ep.conditions ?? {};
        const ready = c.ready ?? true;
        const serving = c.serving ?? true;
        const terminating = c.terminating ?? false;
        const endpoint = `${ip}:${port.port}`;
        const zones = ep.hints?.forZones?.map((z) => z.name);
        const info: EndpointInfo = {
          ip,
          port: port.port,
          endpoint,
          isLocal: nodeName !== "" && ep.nodeName === nodeName,
          ready,
          serving,
          terminating,
          zoneHints: zones && zones.length > 0 ? zones : undefined,
          chain: endpointChainName(name, protocol, endpoint),
        };
        if (!set.has(endpoint) || !terminating) set.set(endpoint, info);
      }
    }
  }
  const out = new Map<string, EndpointInfo[]>();
  for (const [key, set] of byPort) {
    if (set.size === 0) continue;
    out.set(
      key,
      [...set.values()].sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0)),
    );
  }
  return out;
}

function sameEndpoints(a: readonly EndpointInfo[] | undefined, b: readonly EndpointInfo[] | undefined): boolean {
  if (!a || !b) return (a?.length ?? 0) === (b?.length ?? 0);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y) return false;
    if (
      x.endpoint !== y.endpoint ||
      x.isLocal !== y.isLocal ||
      x.ready !== y.ready ||
      x.serving !== y.serving ||
      x.terminating !== y.terminating ||
      (x.zoneHints ?? []).join(",") !== (y.zoneHints ?? []).join(",")
    ) {
      return false;
    }
  }
  return true;
}

export class EndpointsTracker {
  private readonly nodeName: string;
  /** Applied slices by Service, then by slice name. */
  private readonly applied = new Map<string, Map<string, V1EndpointSlice>>();
  /** Pending slices by Service, then by slice name; null = removed. */
  private readonly pending = new Map<string, Map<string, V1EndpointSlice | null>>();
  /** Port keys each Service contributed to the map at the last apply. */
  private readonly portKeys = new Map<string, Set<string>>();
  private readonly triggerTimes = new Map<string, number[]>();
  private totalChanges = 0;

  constructor(nodeName: string) {
    this.nodeName = nodeName;
  }

  /** Records an added/updated (remove=false) or deleted slice. True when changes are pending. */
  update(slice: V1EndpointSlice, remove: boolean): boolean {
    const key = sliceKey(slice);
    if (!key) return this.pending.size > 0;
    if (slice.metadata?.labels?.[HEADLESS_LABEL] !== undefined) return this.pending.size > 0;
    let p = this.pending.get(key.service);
    if (!p) this.pending.set(key.service, (p = new Map<string, V1EndpointSlice | null>()));
    p.set(key.slice, remove ? null : slice);
    this.totalChanges++;
    const t = triggerTime(slice);
    if (t !== undefined && !remove) {
      const list = this.triggerTimes.get(key.service) ?? [];
      list.push(t);
      this.triggerTimes.set(key.service, list);
    }
    return true;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get changesTotal(): number {
    return this.totalChanges;
  }

  /** Folds pending slice changes into `map` (keyed by service-port key) and reports what changed. */
  apply(map: EndpointsMap): EndpointsUpdateResult {
    const result: EndpointsUpdateResult = { updatedServices: new Set(), lastChangeTriggerTimes: new Map(), conntrackCleanupRequired: false };
    for (const [service, changes] of this.pending) {
      let slices = this.applied.get(service);
      if (!slices) this.applied.set(service, (slices = new Map<string, V1EndpointSlice>()));
      for (const [name, slice] of changes) {
        if (slice) slices.set(name, slice);
        else slices.delete(name);
      }
      if (slices.size === 0) this.applied.delete(service);
      const next = endpointsForService(service, slices.values(), this.nodeName);
      const oldKeys = this.portKeys.get(service) ?? new Set<string>();
      let changed = false;
      for (const key of new Set([...oldKeys, ...next.keys()])) {
        const before = map.get(key);
        const after = next.get(key);
        if (sameEndpoints(before, after)) continue;
        changed = true;
        if (key.endsWith("/UDP") && staleForUDP(before, after)) result.conntrackCleanupRequired = true;
        if (after) map.set(key, after);
        else map.delete(key);
      }
      if (next.size === 0) this.portKeys.delete(service);
      else this.portKeys.set(service, new Set(next.keys()));
      if (changed) {
        result.updatedServices.add(service);
        const times = this.triggerTimes.get(service);
        if (times) result.lastChangeTriggerTimes.set(service, times);
      }
      this.triggerTimes.delete(service);
    }
    this.pending.clear();
    return result;
  }
}

/** A UDP endpoint that served before and does not now; or a port that had none and now has some. */
function staleForUDP(before: readonly EndpointInfo[] | undefined, after: readonly EndpointInfo[] | undefined): boolean {
  const serving = (l: readonly EndpointInfo[] | undefined): Set<string> => new Set((l ?? []).filter((e) => e.ready || e.serving).map((e) => e.endpoint));
  const b = serving(before);
  const a = serving(after);
  if (b.size === 0 && a.size > 0) return true;
  for (const e of b) if (!a.has(e)) return true;
  return false;
}
