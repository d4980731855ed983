import { describe, expect, it } from "vitest";
import { EndpointsTracker, LAST_CHANGE_TRIGGER_TIME_ANNOTATION } from "../../../proxy/endpoints-tracker.ts";
import { ServiceChangeTracker, servicePorts } from "../../../proxy/service-change-tracker.ts";
import type { EndpointsMap, ServiceMap } from "../../../proxy/types.ts";
import { makeService, makeSlice, TEST_NODE_NAME } from "./helpers.ts";

describe("ServiceChangeTracker", () => {
  it("skips headless, ExternalName and foreign-proxy Services", () => {
    expect(servicePorts(makeService("ns", "h", (s) => (s.spec = { clusterIP: "None", ports: [{ port: 80 }] })))).toEqual([]);
    expect(servicePorts(makeService("ns", "e", (s) => (s.spec = { type: "ExternalName", externalName: "x.example", ports: [{ port: 80 }] })))).toEqual([]);
    const foreign = makeService("ns", "f", (s) => {
      s.metadata = { ...s.metadata, labels: { "service.kubernetes.io/service-proxy-name": "other" } };
      s.spec = { clusterIP: "10.96.0.5", ports: [{ port: 80 }] };
    });
    expect(servicePorts(foreign)).toEqual([]);
  });

  it("names unnamed ports ns/name and defaults affinity to 3 h", () => {
    const [p] = servicePorts(
      makeService("ns", "svc", (s) => {
        s.spec = { clusterIP: "10.96.0.5", ports: [{ port: 53, protocol: "UDP" }], sessionAffinity: "ClientIP" };
      }),
    );
    expect(p?.name).toBe("ns/svc");
    expect(p?.key).toBe("ns/svc/UDP");
    expect(p?.stickyMaxAgeSeconds).toBe(10800);
  });

  it("reports only Services that really changed, and removed UDP ports", () => {
    const t = new ServiceChangeTracker();
    const map: ServiceMap = new Map();
    const a = makeService("ns", "a", (s) => (s.spec = { clusterIP: "10.96.0.1", ports: [{ name: "dns", port: 53, protocol: "UDP" }] }));
    t.update(undefined, a);
    expect([...t.apply(map).updatedServices]).toEqual(["ns/a"]);
    t.update(a, structuredClone(a));
    expect(t.apply(map).updatedServices.size).toBe(0);
    t.update(a, undefined);
    const r = t.apply(map);
    expect([...r.updatedServices]).toEqual(["ns/a"]);
    expect(r.removedUDPPorts.map((p) => p.clusterIP)).toEqual(["10.96.0.1"]);
    expect(map.size).toBe(0);
  });
});

describe("EndpointsTracker", () => {
  const port = [{ name: "http", port: 8080, protocol: "TCP" }];

  it("merges the slices of a Service, dedups moving endpoints and prefers the running copy", () => {
    const t = new EndpointsTracker(TEST_NODE_NAME);
    const map: EndpointsMap = new Map();
    t.update(
      makeSlice("ns", "svc", 1, (s) => {
        s.ports = port;
        s.endpoints = [{ addresses: ["10.0.0.2"], nodeName: TEST_NODE_NAME }, { addresses: ["10.0.0.9"], conditions: { ready: false, serving: true, terminating: true } }];
      }),
      false,
    );
    t.update(
      makeSlice("ns", "svc", 2, (s) => {
        s.ports = port;
        s.endpoints = [{ addresses: ["10.0.0.1"] }, { addresses: ["10.0.0.2"] }, { addresses: ["10.0.0.9"] }];
      }),
      false,
    );
    const r = t.apply(map);
    expect([...r.updatedServices]).toEqual(["ns/svc"]);
    const eps = map.get("ns/svc:http/TCP") ?? [];
    expect(eps.map((e) => e.endpoint)).toEqual(["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.9:8080"]);
    expect(eps.find((e) => e.ip === "10.0.0.9")?.ready).toBe(true);
  });

  it("drops a Service's endpoints with its last slice and asks for conntrack cleanup on UDP", () => {
    const t = new EndpointsTracker(TEST_NODE_NAME);
    const map: EndpointsMap = new Map();
    const s = makeSlice("ns", "dns", 1, (x) => {
      x.ports = [{ name: "dns", port: 53, protocol: "UDP" }];
      x.endpoints = [{ addresses: ["10.0.0.3"] }];
      x.metadata = { ...x.metadata, annotations: { [LAST_CHANGE_TRIGGER_TIME_ANNOTATION]: "2024-01-01T00:00:00Z" } };
    });
    t.update(s, false);
    const first = t.apply(map);
    expect(first.conntrackCleanupRequired).toBe(true); // none → some
    expect(first.lastChangeTriggerTimes.get("ns/dns")).toEqual([Date.parse("2024-01-01T00:00:00Z")]);
    t.update(s, false);
    expect(t.apply(map).updatedServices.size).toBe(0);
    t.update(s, true);
    const gone = t.apply(map);
    expect(gone.conntrackCleanupRequired).toBe(true);
    expect(map.size).toBe(0);
  });

  it("ignores slices without the service-name label, of other families, and of headless Services", () => {
    const t = new EndpointsTracker(TEST_NODE_NAME);
    const map: EndpointsMap = new Map();
    t.update(makeSlice("ns", "v6", 1, (x) => ((x.addressType = "IPv6"), (x.ports = port), (x.endpoints = [{ addresses: ["fd00::1"] }]))), false);
    t.update(makeSlice("ns", "nolabel", 1, (x) => (x.metadata = { namespace: "ns", name: "x" })), false);
    t.update(makeSlice("ns", "h", 1, (x) => ((x.metadata = { ...x.metadata, labels: { ...x.metadata?.labels, "service.kubernetes.io/headless": "" } }), (x.ports = port), (x.endpoints = [{ addresses: ["10.0.0.1"] }]))), false);
    t.apply(map);
    expect(map.size).toBe(0);
  });
});
