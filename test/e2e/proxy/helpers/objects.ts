/** Builders for the API objects the e2e tests feed the proxier. */
import type { V1EndpointSlice, V1Node, V1Service, V1ServiceSpec, V1ServiceStatus } from "@kubernetes/client-node";
import type { FeedEvent } from "../../../../proxy/source.ts";

export const NS = "e2e";

export function service(name: string, spec: V1ServiceSpec, status: V1ServiceStatus = {}): V1Service {
  return { apiVersion: "v1", kind: "Service", metadata: { namespace: NS, name, resourceVersion: "1" }, spec, status };
}

export interface Ep {
  ip: string;
  node?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export function slice(svc: string, endpoints: readonly Ep[], ports: { name: string; port: number; protocol?: string }[], sliceName = `${svc}-abcde`): V1EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      namespace: NS,
      name: sliceName,
      labels: { "kubernetes.io/service-name": svc },
      annotations: { "endpoints.kubernetes.io/last-change-trigger-time": new Date().toISOString() },
    },
    addressType: "IPv4",
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      ...(e.node ? { nodeName: e.node } : {}),
      conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
    })),
    ports: ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol ?? "TCP" })),
  };
}

export function node(name: string, ip: string): V1Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name, labels: { "kubernetes.io/hostname": name } }, status: { addresses: [{ type: "InternalIP", address: ip }] } };
}

/** An NDJSON line for the kube-proxy process's `--watch-events-from=-`. */
export function feed(ev: FeedEvent): string {
  return `${JSON.stringify(ev)}\n`;
}
