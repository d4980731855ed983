import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { ANONYMOUS, KubeletAuthenticator, certificateUser } from "../../../../kubelet/server/authn.ts";
import { WebhookAuthorizer, subjectAccessReview } from "../../../../kubelet/server/authz.ts";
import { requestAttributes } from "../../../../kubelet/server/auth-attributes.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import { FakeClock } from "../../../harness/fake-clock.ts";

const req = (headers: Record<string, string> = {}, tls?: { authorized: boolean; subject?: Record<string, string | string[]> }): IncomingMessage =>
  ({ headers, socket: tls ? { authorized: tls.authorized, authorizationError: tls.authorized ? undefined : "UNABLE_TO_VERIFY_LEAF_SIGNATURE", getPeerCertificate: () => (tls.subject ? { subject: tls.subject } : {}) } : {} }) as unknown as IncomingMessage;

function reviewer(answers: Record<string, object>) {
  const calls: string[] = [];
  const review = (body: unknown): Promise<unknown> => {
    const token = (body as { spec: { token: string } }).spec.token;
    calls.push(token);
    const a = answers[token];
    return a === undefined ? Promise.reject(new Error("connection refused")) : Promise.resolve({ status: a });
  };
  return { calls, review };
}

describe("the kubelet's authenticator", () => {
  const clock = new FakeClock();
  const make = (o: { anonymous?: boolean; x509?: boolean; answers?: Record<string, object> } = {}) => {
    const r = reviewer(o.answers ?? {});
    const a = new KubeletAuthenticator({ x509: o.x509 ?? true, webhook: { enabled: true, cacheTTLMs: 120_000, review: r.review }, anonymous: o.anonymous ?? false, log: silentLogger(), clock });
    return { a, calls: r.calls };
  };

  it("takes a verified client certificate's CN and O, with system:authenticated", async () => {
    const { a } = make();
    expect(await a.authenticate(req({}, { authorized: true, subject: { CN: "admin", O: ["system:masters", "ops"] } }))).toEqual({ ok: true, method: "x509", user: { username: "admin", groups: ["system:masters", "ops", "system:authenticated"] } });
    expect(certificateUser({ CN: "x" })).toEqual({ username: "x", groups: [] });
  });

  it("refuses a certificate of another CA even when anonymous is enabled", async () => {
    const { a } = make({ anonymous: true });
    expect(await a.authenticate(req({}, { authorized: false, subject: { CN: "admin" } }))).toMatchObject({ ok: false });
  });

  it("checks bearer tokens with a TokenReview and caches the answers for cacheTTL, failures included", async () => {
    const { a, calls } = make({ answers: { good: { authenticated: true, user: { username: "alice", uid: "u1", groups: ["devs"] } }, bad: { authenticated: false, error: "invalid bearer token" } } });
    const alice = await a.authenticate(req({ authorization: "Bearer good" }));
    expect(alice).toEqual({ ok: true, method: "token", user: { username: "alice", uid: "u1", groups: ["devs", "system:authenticated"] } });
    await a.authenticate(req({ authorization: "Bearer good" }));
    expect(await a.authenticate(req({ authorization: "Bearer bad" }))).toEqual({ ok: false, reason: "invalid bearer token" });
    await a.authenticate(req({ authorization: "Bearer bad" }));
    expect(calls).toEqual(["good", "bad"]);
    await clock.advance(120_001);
    await a.authenticate(req({ authorization: "Bearer good" }));
    expect(calls).toEqual(["good", "bad", "good"]);
  });

  it("does not cache a TokenReview that failed, and does not take a bad token as anonymous", async () => {
    const { a, calls } = make({ anonymous: true });
    expect(await a.authenticate(req({ authorization: "Bearer unknown" }))).toMatchObject({ ok: false, reason: "token webhook: connection refused" });
    await a.authenticate(req({ authorization: "Bearer unknown" }));
    expect(calls).toEqual(["unknown", "unknown"]);
  });

  it("answers no credentials with anonymous only when enabled", async () => {
    expect(await make({ anonymous: true }).a.authenticate(req())).toEqual({ ok: true, method: "anonymous", user: ANONYMOUS });
    expect(await make().a.authenticate(req())).toEqual({ ok: false, reason: "no credentials" });
  });
});

describe("the kubelet's webhook authorizer", () => {
  it("sends upstream's SubjectAccessReview and caches allowed and denied answers for their TTLs", async () => {
    const clock = new FakeClock();
    const sent: unknown[] = [];
    let allow = true;
    const z = new WebhookAuthorizer({
      review: (body) => {
        sent.push(body);
        return Promise.resolve({ status: { allowed: allow } });
      },
      cacheAuthorizedTTLMs: 300_000,
      cacheUnauthorizedTTLMs: 30_000,
      log: silentLogger(),
      clock,
    });
    const [a] = requestAttributes({ username: "bob", uid: "u", groups: ["g"] }, "GET", "/metrics", "node-1", true);
    expect(subjectAccessReview(a!)).toEqual({
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: { resourceAttributes: { verb: "get", group: "", version: "v1", resource: "nodes", subresource: "metrics", name: "node-1" }, user: "bob", groups: ["g"], uid: "u" },
    });
    expect(await z.authorize(a!)).toEqual({ allowed: true, reason: "" });
    await clock.advance(299_000);
    await z.authorize(a!);
    expect(sent).toHaveLength(1);
    await clock.advance(2_000);
    allow = false;
    expect((await z.authorize(a!)).allowed).toBe(false);
    await clock.advance(29_000);
    await z.authorize(a!);
    expect(sent).toHaveLength(2);
    await clock.advance(2_000);
    await z.authorize(a!);
    expect(sent).toHaveLength(3);
  });

  it("lets a failed review fail the request, uncached", async () => {
    let calls = 0;
    const z = new WebhookAuthorizer({ review: () => (calls++, Promise.reject(new Error("down"))), cacheAuthorizedTTLMs: 1000, cacheUnauthorizedTTLMs: 1000, log: silentLogger() });
    const [a] = requestAttributes({ username: "bob", groups: [] }, "GET", "/pods", "n", false);
    await expect(z.authorize(a!)).rejects.toThrow("down");
    await expect(z.authorize(a!)).rejects.toThrow("down");
    expect(calls).toBe(2);
  });
});
