/**
 * The pod status manager against a fake API client and a fake clock: only changes are sent, with the uid
 * precondition; failures are retried with back-off; a 409 is told apart (pod replaced vs. real conflict) by
 * reading the pod, not the error text; close() sends what is pending once.
 */
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../../../src-shared/log.ts";
import { ApiError, type PatchType, type RequestOptions, type ResourceRef } from "../../../../src-shared/kube/client.ts";
import { StatusManager, type PodKey, type StatusClient } from "../../../../kubelet/status/status-manager.ts";
import { FakeClock, flush } from "../../../harness/fake-clock.ts";

type S = { phase: string };

/** The API as the status manager sees it: pods by namespace/name with their uid, patches recorded. */
class FakeApi implements StatusClient {
  pods = new Map<string, { uid: string }>();
  patchesSent: { name: string; body: unknown }[] = [];
  /** Next patch errors, in order. */
  errors: ApiError[] = [];
  gets = 0;

  patch<T>(ref: ResourceRef, _type: PatchType, body: unknown, _options?: RequestOptions): Promise<T> {
    const err = this.errors.shift();
    if (err) return Promise.reject(err);
    const pod = this.pods.get(`${ref.namespace ?? ""}/${ref.name ?? ""}`);
    if (!pod) return Promise.reject(new ApiError(404, "PATCH", ref.name ?? "", { kind: "Status", reason: "NotFound" }, "not found"));
    this.patchesSent.push({ name: ref.name ?? "", body });
    return Promise.resolve({} as T);
  }

  get<T>(ref: ResourceRef, _options?: RequestOptions): Promise<T> {
    this.gets++;
    const pod = this.pods.get(`${ref.namespace ?? ""}/${ref.name ?? ""}`);
    if (!pod) return Promise.reject(new ApiError(404, "GET", ref.name ?? "", { kind: "Status", reason: "NotFound" }, "not found"));
    return Promise.resolve({ metadata: { uid: pod.uid, name: ref.name, namespace: ref.namespace } } as T);
  }
}

const conflict = (): ApiError => new ApiError(409, "PATCH", "p", { kind: "Status", reason: "Conflict" }, "conflict");

let manager: StatusManager<S> | undefined;
afterEach(async () => {
  await manager?.close();
  manager = undefined;
});

function setup(): { api: FakeApi; clock: FakeClock; m: StatusManager<S>; key: PodKey } {
  const api = new FakeApi();
  api.pods.set("default/p", { uid: "u1" });
  const clock = new FakeClock();
  const m = new StatusManager<S>({ client: api, logger: silentLogger(), clock, equal: (a, b) => a.phase === b.phase, patch: (key, _prev, next) => ({ metadata: { uid: key.uid }, status: next }) });
  manager = m;
  m.start(new AbortController().signal);
  return { api, clock, m, key: { namespace: "default", name: "p", uid: "u1" } };
}

describe("StatusManager", () => {
  it("sends a new status at once, with the uid in the patch, and nothing for an equal one", async () => {
    const { api, m, key } = setup();
    m.setStatus("u1", key, { phase: "Pending" });
    await flush();
    m.setStatus("u1", key, { phase: "Pending" });
    await flush();
    expect(api.patchesSent).toEqual([{ name: "p", body: { metadata: { uid: "u1" }, status: { phase: "Pending" } } }]);
    expect(m.settled).toBe(true);
  });

  it("sends the statuses of several pods at once, each pod's once per pass", async () => {
    const { api, m } = setup();
    const gate = Promise.withResolvers<void>();
    const inFlight: string[] = [];
    const patch = api.patch.bind(api);
    api.patch = async <T>(ref: ResourceRef, type: PatchType, body: unknown, options?: RequestOptions): Promise<T> => {
      inFlight.push(ref.name ?? "");
      await gate.promise;
      return patch<T>(ref, type, body, options);
    };
    for (const n of ["a", "b", "c"]) {
      api.pods.set(`default/${n}`, { uid: n });
      m.setStatus(n, { namespace: "default", name: n, uid: n }, { phase: "Running" });
    }
    await flush();
    // All three are on the wire before the first answer (one at a time, only "a" would be).
    expect(inFlight).toEqual(["a", "b", "c"]);
    gate.resolve();
    await flush();
    expect(api.patchesSent.map((p) => p.name).sort()).toEqual(["a", "b", "c"]);
    expect(m.settled).toBe(true);
  });

  it("retries a failed send after a back-off on the clock, and the latest status wins", async () => {
    const { api, m, key, clock } = setup();
    api.errors.push(new ApiError(503, "PATCH", "p", undefined, "unavailable"));
    m.setStatus("u1", key, { phase: "Pending" });
    await flush();
    expect(api.patchesSent).toHaveLength(0);
    m.setStatus("u1", key, { phase: "Running" });
    await flush();
    // The wake-up of the new status runs a pass at once; it succeeds with the latest.
    expect(api.patchesSent.map((p) => (p.body as { status: S }).status.phase)).toEqual(["Running"]);
    expect(m.settled).toBe(true);
    api.errors.push(new ApiError(503, "PATCH", "p", undefined, "unavailable"));
    m.setStatus("u1", key, { phase: "Succeeded" });
    await flush();
    expect(m.settled).toBe(false);
    await clock.advance(600);
    expect(m.settled).toBe(true);
    expect(api.patchesSent.at(-1)?.body).toMatchObject({ status: { phase: "Succeeded" } });
  });

  it("drops the status of a pod replaced by another of the same name (409, the API holds another uid)", async () => {
    const { api, m, key } = setup();
    api.pods.set("default/p", { uid: "u2" });
    api.errors.push(conflict());
    m.setStatus("u1", key, { phase: "Running" });
    await flush();
    expect(api.gets).toBe(1);
    expect(m.settled).toBe(true);
    expect(api.patchesSent).toHaveLength(0);
  });

  it("retries a real conflict (409, the API still holds that uid)", async () => {
    const { api, m, key, clock } = setup();
    api.errors.push(conflict());
    m.setStatus("u1", key, { phase: "Running" });
    await flush();
    expect(m.settled).toBe(false);
    await clock.advance(600);
    expect(m.settled).toBe(true);
    expect(api.patchesSent).toHaveLength(1);
  });

  it("drops the status of a pod the API no longer has (404)", async () => {
    const { api, m } = setup();
    m.setStatus("u9", { namespace: "default", name: "gone", uid: "u9" }, { phase: "Running" });
    await flush();
    expect(m.settled).toBe(true);
    expect(api.patchesSent).toHaveLength(0);
  });

  it("flush() tells whether the API has the latest; forgetPod() drops a pod's state", async () => {
    const { api, m, key } = setup();
    api.errors.push(new ApiError(503, "PATCH", "p", undefined, "unavailable"), new ApiError(503, "PATCH", "p", undefined, "unavailable"));
    m.setStatus("u1", key, { phase: "Succeeded" });
    await flush();
    expect(await m.flush("u1")).toBe(false);
    expect(await m.flush("u1")).toBe(true);
    m.forgetPod("u1");
    expect(m.getStatus("u1")).toBeUndefined();
    expect(await m.flush("u1")).toBe(false);
  });

  it("re-sends when the API's copy differs from the kubelet's (reconcile)", async () => {
    const { api, m, key } = setup();
    m.setStatus("u1", key, { phase: "Running" });
    await flush();
    m.reconcile("u1", "u1", { phase: "Unknown" });
    await flush();
    expect(api.patchesSent).toHaveLength(2);
  });

  it("sends what is pending once more on close", async () => {
    const { api, m, key } = setup();
    api.errors.push(new ApiError(503, "PATCH", "p", undefined, "unavailable"));
    m.setStatus("u1", key, { phase: "Running" });
    await flush();
    expect(api.patchesSent).toHaveLength(0);
    await m.close();
    manager = undefined;
    expect(api.patchesSent).toHaveLength(1);
  });
});
