import type { V1Service } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { serviceEnv } from "../../../../kubelet/objects/service-env.ts";

const svc = (namespace: string, name: string, clusterIP: string, ports: { name?: string; port: number; protocol?: string }[]): V1Service => ({ metadata: { namespace, name }, spec: { clusterIP, ports } });

const services = [
  svc("default", "kubernetes", "10.96.0.1", [{ name: "https", port: 443, protocol: "TCP" }]),
  svc("shop", "redis-primary", "10.96.0.11", [{ port: 6379, protocol: "TCP" }]),
  svc("shop", "headless", "None", [{ port: 80 }]),
  svc("other", "elsewhere", "10.96.0.12", [{ port: 80 }]),
];

describe("serviceEnv", () => {
  it("gives docker-link variables for the pod's namespace's Services and the kubernetes Service, sorted by name", () => {
    expect(Object.fromEntries(serviceEnv(services, "shop", true).map((e) => [e.key, e.value]))).toEqual({
      KUBERNETES_SERVICE_HOST: "10.96.0.1",
      KUBERNETES_SERVICE_PORT: "443",
      KUBERNETES_SERVICE_PORT_HTTPS: "443",
      KUBERNETES_PORT: "tcp://10.96.0.1:443",
      KUBERNETES_PORT_443_TCP: "tcp://10.96.0.1:443",
      KUBERNETES_PORT_443_TCP_PROTO: "tcp",
      KUBERNETES_PORT_443_TCP_PORT: "443",
      KUBERNETES_PORT_443_TCP_ADDR: "10.96.0.1",
      REDIS_PRIMARY_SERVICE_HOST: "10.96.0.11",
      REDIS_PRIMARY_SERVICE_PORT: "6379",
      REDIS_PRIMARY_PORT: "tcp://10.96.0.11:6379",
      REDIS_PRIMARY_PORT_6379_TCP: "tcp://10.96.0.11:6379",
      REDIS_PRIMARY_PORT_6379_TCP_PROTO: "tcp",
      REDIS_PRIMARY_PORT_6379_TCP_PORT: "6379",
      REDIS_PRIMARY_PORT_6379_TCP_ADDR: "10.96.0.11",
    });
    expect(serviceEnv(services, "shop", true)[0]?.key).toBe("KUBERNETES_SERVICE_HOST");
  });

  it("keeps only the kubernetes Service when enableServiceLinks is false", () => {
    expect(serviceEnv(services, "shop", false).map((e) => e.key).every((k) => k.startsWith("KUBERNETES_"))).toBe(true);
  });
});
