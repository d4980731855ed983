import { describe, expect, it } from "vitest";
import { NodeStatusManager, type NodeClient, type NodeObject, type NodeStatusSource } from "../../../../kubelet/node/node-status-manager.ts";
import { ApiError, type ResourceRef } from "../../../../src-shared/kube/client.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import { FakeClock, flush } from "../../../harness/fake-clock.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");

type Call = { verb: string; subresource?: string; body?: unknown; at: number };

/** An API holding at most one Node; `fail` decides, per call, an error to return instead. */
class FakeNodeApi {
  node: NodeObject | undefined;
  calls: Call[] = [];
  fail: (verb: string, subresource: string | undefined) => ApiError | undefined = () => undefined;

  private readonly clock: FakeClock;

  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  client(): NodeClient {
    const answer = <T>(verb: string, ref: ResourceRef, body?: unknown): Promise<T> => {
      this.calls.push({ verb, ...(ref.subresource ? { subresource: ref.subresource } : {}), body, at: this.clock.now() - T0 });
      const err = this.fail(verb, ref.subresource);
      if (err) return Promise.reject(err);
      if (verb === "create") {
        if (this.node) return Promise.reject(new ApiError(409, "POST", "/nodes", { reason: "AlreadyExists" }, ""));
        this.node = { ...(body as NodeObject), metadata: { ...(body as NodeObject).metadata, uid: "uid-1" } };
      }
      if (!this.node) return Promise.reject(new ApiError(404, verb, "/nodes", { reason: "NotFound" }, ""));
      return Promise.resolve(this.node as T);
    };
    return {
      get: <T>(ref: ResourceRef) => answer<T>("get", ref),
      create: <T>(ref: ResourceRef, object: unknown) => answer<T>("create", ref, object),
      patch: <T>(ref: ResourceRef, _type: string, patch: unknown) => answer<T>("patch", ref, patch),
    };
  }
}

/** A status that is a counter the test bumps: changed when it moved. */
class CounterSource implements NodeStatusSource<number> {
  value = 1;
  initialNode(): Promise<NodeObject> {
    return Promise.resolve({ metadata: { name: "node-a", labels: { "kubernetes.io/hostname": "node-a" } } });
  }
  status(): Promise<number> {
    return Promise.resolve(this.value);
  }
  changed(previous: number, next: number): boolean {
    return previous !== next;
  }
  patch(_previous: number | undefined, next: number): unknown {
    return { status: { value: next } };
  }
}

/** A counter whose API copy someone else may overwrite once (`held`), as the node lifecycle controller does. */
class OverwrittenSource extends CounterSource {
  heldValue: number | undefined;
  /** What the API holds: given a patch's answer, or as a watch sees it (none here). */
  held(sent: number, node?: unknown): number {
    if (node === undefined) return sent;
    const held = this.heldValue;
    this.heldValue = undefined;
    return held ?? sent;
  }
  override patch(previous: number | undefined, next: number): unknown {
    return { status: { value: next, from: previous } };
  }
}

function setup<S extends CounterSource = CounterSource>(source: S = new CounterSource() as S): { clock: FakeClock; api: FakeNodeApi; source: S; manager: NodeStatusManager<number>; stop: AbortController } {
  const clock = new FakeClock(T0);
  const api = new FakeNodeApi(clock);
  const manager = new NodeStatusManager({ client: api.client(), nodeName: "node-a", source, logger: silentLogger(), clock, updateFrequencyMs: 10_000, reportFrequencyMs: 60_000 });
  return { clock, api, source, manager, stop: new AbortController() };
}

const statusPatches = (api: FakeNodeApi): Call[] => api.calls.filter((c) => c.subresource === "status");

describe("NodeStatusManager", () => {
  it("registers, reports at once, then only on change or when the report period is due", async () => {
    const { clock, api, source, manager, stop } = setup();
    manager.start(stop.signal);
    await manager.registered;
    await flush();
    expect(manager.uid).toBe("uid-1");
    expect(statusPatches(api).map((c) => c.at)).toEqual([0]);

    await clock.advance(10_000); // unchanged, not due
    expect(statusPatches(api)).toHaveLength(1);
    source.value = 2;
    await clock.advance(10_000); // changed
    expect(statusPatches(api).map((c) => [c.at, c.body])).toEqual([
      [0, { status: { value: 1 } }],
      [20_000, { status: { value: 2 } }],
    ]);
    await clock.advance(60_000); // due again 60 s after the last report
    expect(statusPatches(api).map((c) => c.at)).toEqual([0, 20_000, 80_000]);
    await manager.close();
  });

  it("sets right at once a status the API holds differently from what was sent (someone else overwrote it)", async () => {
    const { clock, api, source, manager, stop } = setup(new OverwrittenSource());
    manager.start(stop.signal);
    await manager.registered;
    await flush();
    source.value = 2;
    source.heldValue = 7; // the API answers our patch with its own value for the status
    await clock.advance(10_000);
    expect(statusPatches(api).map((c) => c.body)).toEqual([{ status: { value: 1 } }, { status: { value: 2, from: 1 } }, { status: { value: 2, from: 7 } }]);
    await clock.advance(10_000); // now held as sent: nothing more to say
    expect(statusPatches(api)).toHaveLength(3);
    await manager.close();
  });

  it("reports at once when poked, without waiting for the period", async () => {
    const { clock, api, source, manager, stop } = setup();
    manager.start(stop.signal);
    await manager.registered;
    await clock.advance(1_000);
    source.value = 5;
    manager.poke();
    await flush();
    expect(statusPatches(api).map((c) => c.at)).toEqual([0, 1_000]);
    expect(clock.waiting).toBe(1); // the losing timer of the interrupted wait is gone
    await manager.close();
  });

  it("retries registration with back-off (100 ms doubling) until the API takes it", async () => {
    const { clock, api, manager, stop } = setup();
    let failures = 3;
    api.fail = (verb) => (verb === "create" && failures-- > 0 ? new ApiError(503, "POST", "/nodes", { reason: "ServiceUnavailable" }, "") : undefined);
    manager.start(stop.signal);
    await flush();
    await clock.advance(100);
    await clock.advance(200);
    await clock.advance(400);
    await manager.registered;
    expect(api.calls.filter((c) => c.verb === "create").map((c) => c.at)).toEqual([0, 100, 300, 700]);
    await manager.close();
  });

  it("adopts an existing Node, restoring the labels it owns", async () => {
    const { api, manager, stop } = setup();
    api.node = { metadata: { name: "node-a", uid: "old-uid", labels: {} } };
    manager.start(stop.signal);
    await manager.registered;
    expect(manager.uid).toBe("old-uid");
    expect(api.calls.find((c) => c.verb === "patch" && c.subresource === undefined)?.body).toEqual({ metadata: { labels: { "kubernetes.io/hostname": "node-a" } } });
    await manager.close();
  });

  it("registers again at once when the Node was deleted", async () => {
    const { clock, api, source, manager, stop } = setup();
    manager.start(stop.signal);
    await manager.registered;
    await flush();
    api.node = undefined;
    source.value = 2;
    await clock.advance(10_000);
    expect(api.calls.map((c) => `${c.verb}${c.subresource ? `/${c.subresource}` : ""}@${c.at}`)).toEqual([
      "create@0",
      "patch/status@0",
      "patch/status@10000",
      "create@10000",
      "patch/status@10000",
    ]);
    await manager.close();
  });

  it("stops on close, leaving no timer behind", async () => {
    const { clock, manager, stop } = setup();
    manager.start(stop.signal);
    await manager.registered;
    await flush();
    expect(clock.waiting).toBe(1);
    await manager.close();
    expect(clock.waiting).toBe(0);
  });
});
