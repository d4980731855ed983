/**
 * The EndpointSlice controller: for every Service with a selector, slices listing the matching pods'
 * addresses with ready/serving/terminating conditions, nodeName, zone and (with trafficDistribution
 * PreferClose) zone hints; updated as pods, services and nodes change.
 */
import { isIP } from "node:net";
import { ADMIN, resource } from "../api.ts";
import type { StoreEvent } from "../store.ts";
import { labelSelectorFromMap, matchesLabels } from "../selectors.ts";
import { arr, dig, isObject, jsonEqual, str, type KubeObject } from "../types.ts";
import { Controller, nsName, splitKey } from "./base.ts";

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
export const MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by";
export const MANAGED_BY = "endpointslice-controller.k8s.io";
const MAX_ENDPOINTS = 100;

const slices = resource("discovery.k8s.io", "endpointslices");

function podReady(pod: KubeObject): boolean {
  return arr(dig(pod, "status", "conditions")).some((c) => dig(c, "type") === "Ready" && dig(c, "status") === "True");
}

function resolvePort(pod: KubeObject, target: unknown): number | undefined {
  if (typeof target === "number") return target;
  if (typeof target === "string") {
    if (/^\d+$/.test(target)) return Number(target);
    for (const c of arr(dig(pod, "spec", "containers")))
      for (const p of arr(dig(c, "ports"))) if (dig(p, "name") === target && typeof dig(p, "containerPort") === "number") return dig(p, "containerPort") as number;
  }
  return undefined;
}

export class EndpointSliceController extends Controller {
  protected readonly watches = ["core/services", "core/pods", "core/nodes", "discovery.k8s.io/endpointslices"];

  protected keysFor(ev: StoreEvent): string[] {
    const o = ev.object;
    if (ev.storage === "core/services") return [nsName(o.metadata.namespace, o.metadata.name)];
    if (ev.storage === "discovery.k8s.io/endpointslices") {
      const svc = o.metadata.labels?.[SERVICE_NAME_LABEL];
      return svc === undefined || o.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY ? [] : [nsName(o.metadata.namespace, svc)];
    }
    if (ev.storage === "core/nodes") return this.api.store.list("core/services").map((s) => nsName(s.metadata.namespace, s.metadata.name));
    // Pods: every service in the namespace whose selector matches the pod now or before.
    const ns = o.metadata.namespace;
    const keys: string[] = [];
    for (const s of this.api.store.list("core/services", ns)) {
      const sel = dig(s, "spec", "selector");
      if (!isObject(sel) || Object.keys(sel).length === 0) continue;
      const req = labelSelectorFromMap(sel as Record<string, string>);
      if (matchesLabels(req, o.metadata.labels) || (ev.prev !== undefined && matchesLabels(req, ev.prev.metadata.labels))) keys.push(nsName(ns, s.metadata.name));
    }
    return keys;
  }

  protected initialKeys(): string[] {
    return this.api.store.list("core/services").map((s) => nsName(s.metadata.namespace, s.metadata.name));
  }

  private owned(ns: string, svc: string): KubeObject[] {
    return this.api.store
      .list(slices.storage, ns)
      .filter((s) => s.metadata.labels?.[SERVICE_NAME_LABEL] === svc && s.metadata.labels[MANAGED_BY_LABEL] === MANAGED_BY);
  }

  protected reconcile(key: string): void {
    const [ns, name] = splitKey(key);
    const svc = this.api.store.get("core/services", ns, name);
    const existing = this.owned(ns, name);
    const sel = dig(svc, "spec", "selector");
    if (svc === undefined || !isObject(sel) || Object.keys(sel).length === 0 || dig(svc, "spec", "type") === "ExternalName") {
      for (const s of existing) this.api.delete(ADMIN, slices, ns, s.metadata.name ?? "");
      return;
    }
    const desired = this.desiredSlices(svc, sel as Record<string, string>);
    // Match desired slices to existing ones by address type and port set; reuse names.
    const unused = [...existing];
    for (const d of desired) {
      const idx = unused.findIndex((e) => e["addressType"] === d["addressType"] && jsonEqual(e["ports"] ?? [], d["ports"] ?? []));
      const idx2 = idx >= 0 ? idx : unused.findIndex((e) => e["addressType"] === d["addressType"]);
      const cur = idx2 >= 0 ? unused.splice(idx2, 1)[0] : undefined;
      if (cur === undefined) {
        this.api.create(ADMIN, slices, ns, { ...d, metadata: { ...d.metadata, generateName: `${name}-` } });
        continue;
      }
      const next: KubeObject = { ...cur, endpoints: d["endpoints"], ports: d["ports"], metadata: { ...cur.metadata, labels: d.metadata.labels ?? {}, ownerReferences: d.metadata.ownerReferences ?? [] } };
      if (!jsonEqual(next, cur)) this.api.update(ADMIN, slices, ns, cur.metadata.name ?? "", next);
    }
    for (const s of unused) this.api.delete(ADMIN, slices, ns, s.metadata.name ?? "");
  }

  private desiredSlices(svc: KubeObject, sel: Record<string, string>): KubeObject[] {
    const ns = svc.metadata.namespace ?? "";
    const req = labelSelectorFromMap(sel);
    const publishNotReady = dig(svc, "spec", "publishNotReadyAddresses") === true;
    const preferClose = dig(svc, "spec", "trafficDistribution") === "PreferClose";
    const families = arr(dig(svc, "spec", "ipFamilies")).map(String);
    const svcPorts = arr(dig(svc, "spec", "ports"));
    const groups = new Map<string, { addressType: string; ports: unknown[]; endpoints: unknown[] }>();
    for (const pod of this.api.store.list("core/pods", ns)) {
      if (!matchesLabels(req, pod.metadata.labels)) continue;
      const phase = str(dig(pod, "status", "phase"));
      if (phase === "Succeeded" || phase === "Failed") continue;
      const ips = arr(dig(pod, "status", "podIPs"))
        .map((p) => str(dig(p, "ip")) ?? "")
        .filter((ip) => ip !== "");
      const podIP = str(dig(pod, "status", "podIP"));
      if (ips.length === 0 && podIP !== undefined && podIP !== "") ips.push(podIP);
      if (ips.length === 0) continue;
      const terminating = pod.metadata.deletionTimestamp !== undefined;
      const isReady = podReady(pod);
      const nodeName = str(dig(pod, "spec", "nodeName")) ?? "";
      const node = nodeName === "" ? undefined : this.api.store.get("core/nodes", undefined, nodeName);
      const zone = node?.metadata.labels?.["topology.kubernetes.io/zone"];
      const ports = svcPorts.map((sp) => {
        const port = resolvePort(pod, dig(sp, "targetPort") ?? dig(sp, "port"));
        const p: Record<string, unknown> = { name: str(dig(sp, "name")) ?? "", protocol: str(dig(sp, "protocol")) ?? "TCP", port: port ?? null };
        const ap = dig(sp, "appProtocol");
        if (typeof ap === "string") p["appProtocol"] = ap;
        return p;
      });
      for (const ip of ips) {
        const fam = isIP(ip) === 6 ? "IPv6" : "IPv4";
        if (families.length > 0 && !families.includes(fam)) continue;
        const ep: Record<string, unknown> = {
          addresses: [ip],
          conditions: { ready: publishNotReady || (isReady && !terminating), serving: isReady, terminating },
          targetRef: { kind: "Pod", namespace: ns, name: pod.metadata.name ?? "", uid: pod.metadata.uid ?? "" },
        };
        if (nodeName !== "") ep["nodeName"] = nodeName;
        if (zone !== undefined) {
          ep["zone"] = zone;
          if (preferClose) ep["hints"] = { forZones: [{ name: zone }] };
        }
        const gkey = `${fam}|${JSON.stringify(ports)}`;
        let g = groups.get(gkey);
        if (g === undefined) {
          g = { addressType: fam, ports, endpoints: [] };
          groups.set(gkey, g);
        }
        g.endpoints.push(ep);
      }
    }
    if (groups.size === 0) {
      const fam = families[0] ?? "IPv4";
      groups.set("empty", { addressType: fam, ports: [], endpoints: [] });
    }
    const out: KubeObject[] = [];
    const labels: Record<string, string> = { ...(svc.metadata.labels ?? {}), [SERVICE_NAME_LABEL]: svc.metadata.name ?? "", [MANAGED_BY_LABEL]: MANAGED_BY };
    const meta = {
      namespace: ns,
      labels,
      ownerReferences: [{ apiVersion: "v1", kind: "Service", name: svc.metadata.name ?? "", uid: svc.metadata.uid ?? "", controller: true, blockOwnerDeletion: true }],
    };
    delete labels["service.kubernetes.io/headless"];
    if (dig(svc, "spec", "clusterIP") === "None") meta.labels["service.kubernetes.io/headless"] = "";
    for (const g of groups.values()) {
      const eps = g.endpoints.sort((a, b) => String(dig(a, "targetRef", "name")).localeCompare(String(dig(b, "targetRef", "name"))));
      for (let i = 0; i === 0 || i < eps.length; i += MAX_ENDPOINTS) {
        out.push({
          apiVersion: "discovery.k8s.io/v1",
          kind: "EndpointSlice",
          metadata: { ...meta, labels: { ...meta.labels } },
          addressType: g.addressType,
          endpoints: eps.slice(i, i + MAX_ENDPOINTS),
          ports: g.ports,
        });
      }
    }
    return out;
  }
}
