import { describe, expect, it } from "vitest";
import { LEASE_NAMESPACE, NodeLease, type LeaseClient } from "../../../../kubelet/node/lease.ts";
import { ApiError, type ResourceRef } from "../../../../src-shared/kube/client.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import { FakeClock, flush } from "../../../harness/fake-clock.ts";

type Call = { verb: "get" | "create" | "update"; ref: ResourceRef; object?: unknown; at: number };

/** An API that stores one Lease and fails the calls the test asks it to. */
class FakeLeaseApi {
  lease: { metadata: Record<string, unknown>; spec: Record<string, unknown> } | undefined;
  calls: Call[] = [];
  failNext = 0;
  private rv = 0;

  private readonly clock: FakeClock;

  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  client(): LeaseClient {
    const answer = <T>(verb: Call["verb"], ref: ResourceRef, object?: unknown): Promise<T> => {
      this.calls.push({ verb, ref, object, at: this.clock.now() });
      if (this.failNext > 0) {
        this.failNext--;
        return Promise.reject(new ApiError(503, verb, "/leases", { reason: "ServiceUnavailable" }, ""));
      }
      if (verb === "get" && !this.lease) return Promise.reject(new ApiError(404, verb, "/leases", { reason: "NotFound" }, ""));
      if (verb !== "get") {
        const o = object as NonNullable<FakeLeaseApi["lease"]>;
        this.lease = { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.rv) } };
      }
      return Promise.resolve(this.lease as T);
    };
    return {
      get: <T>(ref: ResourceRef) => answer<T>("get", ref),
      create: <T>(ref: ResourceRef, object: unknown) => answer<T>("create", ref, object),
      update: <T>(ref: ResourceRef, object: unknown) => answer<T>("update", ref, object),
    };
  }
}

function setup(): { clock: FakeClock; api: FakeLeaseApi; lease: NodeLease; stop: AbortController } {
  const clock = new FakeClock();
  const api = new FakeLeaseApi(clock);
  const lease = new NodeLease({ client: api.client(), nodeName: "node-a", logger: silentLogger(), nodeUid: () => "uid-1", clock });
  return { clock, api, lease, stop: new AbortController() };
}

describe("NodeLease", () => {
  it("creates the lease, owned by the Node, then renews it every quarter of its duration", async () => {
    const { clock, api, lease, stop } = setup();
    lease.start(stop.signal);
    await flush();
    expect(api.calls.map((c) => c.verb)).toEqual(["get", "create"]);
    expect(api.lease?.metadata).toMatchObject({ name: "node-a", namespace: LEASE_NAMESPACE, ownerReferences: [{ kind: "Node", name: "node-a", uid: "uid-1" }] });
    expect(api.lease?.spec).toMatchObject({ holderIdentity: "node-a", leaseDurationSeconds: 40, renewTime: "2026-01-01T00:00:00.000000Z" });

    await clock.advance(9_999);
    expect(api.calls).toHaveLength(2);
    await clock.advance(1);
    expect(api.calls.map((c) => c.verb)).toEqual(["get", "create", "update"]);
    expect(api.lease?.spec["renewTime"]).toBe("2026-01-01T00:00:10.000000Z");
    expect(lease.renewals).toBe(2);
    await lease.close();
  });

  it("retries a failed renewal with upstream's back-off (200 ms doubling), then returns to the period", async () => {
    const { clock, api, lease, stop } = setup();
    api.failNext = 3;
    lease.start(stop.signal);
    await flush();
    await clock.advance(200);
    await clock.advance(400);
    await clock.advance(800);
    expect(api.calls.map((c) => c.at - Date.parse("2026-01-01T00:00:00Z"))).toEqual([0, 200, 600, 1400, 1400]);
    expect(api.lease).toBeDefined();
    await clock.advance(10_000);
    expect(api.calls.at(-1)).toMatchObject({ verb: "update", at: Date.parse("2026-01-01T00:00:11.400Z") });
    await lease.close();
  });

  it("stops on close, leaving no timer behind", async () => {
    const { clock, lease, stop } = setup();
    lease.start(stop.signal);
    await flush();
    expect(clock.waiting).toBe(1);
    await lease.close();
    expect(clock.waiting).toBe(0);
  });
});
