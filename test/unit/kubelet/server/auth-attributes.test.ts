import { describe, expect, it } from "vitest";
import { apiVerb, forbiddenMessage, isSubpath, requestAttributes } from "../../../../kubelet/server/auth-attributes.ts";

const bob = { username: "bob", groups: ["system:authenticated"] };
const subs = (method: string, path: string, fine = true): string[] => requestAttributes(bob, method, path, "node-1", fine).map((a) => `${a.verb}:${a.subresource}`);

describe("kubelet request attributes (upstream's auth.go)", () => {
  it("maps HTTP methods to API verbs", () => {
    expect(["POST", "GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"].map(apiVerb)).toEqual(["create", "get", "get", "update", "patch", "delete", ""]);
  });

  it("takes a path as its own subpath or under it, never a sibling with the same prefix", () => {
    expect(isSubpath("/stats", "/stats")).toBe(true);
    expect(isSubpath("/stats/summary", "/stats/")).toBe(true);
    expect(isSubpath("/statsfoo", "/stats")).toBe(false);
  });

  it("chooses the subresource by path: stats, metrics, log (for /logs), spec, checkpoint, else proxy", () => {
    expect(subs("GET", "/stats/summary")).toEqual(["get:stats"]);
    expect(subs("GET", "/metrics")).toEqual(["get:metrics"]);
    expect(subs("GET", "/metrics/probes")).toEqual(["get:metrics"]);
    expect(subs("GET", "/logs/syslog")).toEqual(["get:log"]);
    expect(subs("GET", "/spec/")).toEqual(["get:spec"]);
    expect(subs("POST", "/checkpoint/ns/p/c")).toEqual(["create:checkpoint"]);
    expect(subs("GET", "/containerLogs/ns/p/c")).toEqual(["get:proxy"]);
    expect(subs("POST", "/exec/ns/p/c")).toEqual(["create:proxy"]);
  });

  it("with KubeletFineGrainedAuthz asks pods, healthz and configz first, then proxy; without it proxy alone", () => {
    expect(subs("GET", "/pods")).toEqual(["get:pods", "get:proxy"]);
    expect(subs("GET", "/runningpods/")).toEqual(["get:pods", "get:proxy"]);
    expect(subs("GET", "/healthz")).toEqual(["get:healthz", "get:proxy"]);
    expect(subs("GET", "/configz")).toEqual(["get:configz", "get:proxy"]);
    expect(subs("GET", "/pods", false)).toEqual(["get:proxy"]);
  });

  it("names the node and writes upstream's 403 body", () => {
    const [a] = requestAttributes(bob, "GET", "/metrics", "node-1", true);
    expect(a).toMatchObject({ resource: "nodes", name: "node-1", path: "/metrics" });
    expect(forbiddenMessage(a!)).toBe("Forbidden (user=bob, verb=get, resource=nodes, subresource=metrics)");
  });
});
