import { describe, expect, it } from "vitest";
import { refreshTime, TokenManager } from "../../../../kubelet/objects/token-manager.ts";
import { FakeClock } from "../../../harness/fake-clock.ts";

class Api {
  bodies: unknown[] = [];
  refs: unknown[] = [];
  fail = false;
  private readonly clock: FakeClock;
  constructor(clock: FakeClock) {
    this.clock = clock;
  }
  request<T>(method: string, path: string, options: { body?: unknown }): Promise<T> {
    if (this.fail) return Promise.reject(new Error("API down"));
    const body = options.body;
    this.refs.push(`${method} ${path}`);
    this.bodies.push(body);
    const exp = (body as { spec: { expirationSeconds: number } }).spec.expirationSeconds;
    return Promise.resolve({ status: { token: `t${this.bodies.length}`, expirationTimestamp: new Date(this.clock.now() + exp * 1000).toISOString() } } as T);
  }
}

const spec = { namespace: "ns", serviceAccount: "sa", audience: "", expirationSeconds: 3600, pod: { name: "p", uid: "u1" } };

describe("TokenManager", () => {
  it("requests a token bound to the pod and serves it from the cache until 80% of its life", async () => {
    const clock = new FakeClock();
    const api = new Api(clock);
    const tm = new TokenManager({ client: api, clock, random: () => 0 });
    const t1 = await tm.get(spec);
    expect(api.refs).toEqual(["POST /api/v1/namespaces/ns/serviceaccounts/sa/token"]);
    expect(api.bodies[0]).toEqual({
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { audiences: [], expirationSeconds: 3600, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "p", uid: "u1" } },
    });
    expect(t1.refreshAt).toBe(clock.now() + 2880_000);
    await clock.advance(2879_000);
    expect((await tm.get(spec)).token).toBe("t1");
    await clock.advance(1000);
    expect((await tm.get(spec)).token).toBe("t2");
    // Another audience is another token.
    expect((await tm.get({ ...spec, audience: "vault" })).token).toBe("t3");
    expect((api.bodies[2] as { spec: { audiences: string[] } }).spec.audiences).toEqual(["vault"]);
  });

  it("keeps serving a still-valid token when the refresh fails, and forgets a pod's tokens", async () => {
    const clock = new FakeClock();
    const api = new Api(clock);
    const tm = new TokenManager({ client: api, clock, random: () => 0 });
    await tm.get(spec);
    api.fail = true;
    await clock.advance(3000_000);
    expect((await tm.get(spec)).token).toBe("t1");
    await clock.advance(700_000);
    await expect(tm.get(spec)).rejects.toThrow("API down");
    api.fail = false;
    tm.forgetPod("u1");
    expect((await tm.get(spec)).token).toBe("t2");
  });

  it("refreshes after 24 hours for long-lived tokens, less the jitter", () => {
    const exp = 10 * 86400_000;
    expect(refreshTime(exp, 10 * 86400, 0)).toBe(86400_000);
    expect(refreshTime(exp, 10 * 86400, 5000)).toBe(86400_000 - 5000);
    expect(refreshTime(3600_000, 3600, 0)).toBe(2880_000);
  });
});
