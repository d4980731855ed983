/**
 * May this user do this on the node: `AlwaysAllow`, or `Webhook` through a SubjectAccessReview to the API
 * server, as upstream's delegating authorizer: allowed answers cached for `cacheAuthorizedTTL`, denied ones
 * for `cacheUnauthorizedTTL`; a failed call is an error (500), never cached.
 */
import type { Logger } from "../../src-shared/log.ts";
import { TtlCache } from "../../src-shared/ttl-cache.ts";
import type { Clock } from "../../src-shared/clock.ts";
import type { NodeAttributes } from "./auth-attributes.ts";

export interface Decision {
  allowed: boolean;
  reason: string;
}

export interface KubeletAuthorizer {
  authorize(a: NodeAttributes, signal?: AbortSignal): Promise<Decision>;
}

export const alwaysAllow: KubeletAuthorizer = { authorize: () => Promise.resolve({ allowed: true, reason: "" }) };

/** The SubjectAccessReview call (the API client's create, or a fake in tests). */
export type AccessReviewer = (review: unknown, signal?: AbortSignal) => Promise<unknown>;

/** The SubjectAccessReview upstream sends for the attributes (resource request, no namespace). */
export function subjectAccessReview(a: NodeAttributes): Record<string, unknown> {
  const spec: Record<string, unknown> = {
    resourceAttributes: { verb: a.verb, group: "", version: "v1", resource: a.resource, subresource: a.subresource, name: a.name },
    user: a.user.username,
    groups: a.user.groups,
  };
  if (a.user.uid !== undefined) spec["uid"] = a.user.uid;
  if (a.user.extra !== undefined) spec["extra"] = a.user.extra;
  return { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec };
}

export class WebhookAuthorizer implements KubeletAuthorizer {
  private readonly cache: TtlCache<Decision>;
  private readonly review: AccessReviewer;
  private readonly allowTtlMs: number;
  private readonly denyTtlMs: number;
  private readonly log: Logger;

  constructor(o: { review: AccessReviewer; cacheAuthorizedTTLMs: number; cacheUnauthorizedTTLMs: number; log: Logger; clock?: Pick<Clock, "now"> }) {
    this.review = o.review;
    this.allowTtlMs = o.cacheAuthorizedTTLMs;
    this.denyTtlMs = o.cacheUnauthorizedTTLMs;
    this.log = o.log;
    this.cache = new TtlCache(o.clock ? { clock: o.clock } : {});
  }

  async authorize(a: NodeAttributes, signal?: AbortSignal): Promise<Decision> {
    const body = subjectAccessReview(a);
    const key = JSON.stringify(body["spec"]);
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const answer = (await this.review(body, signal)) as { status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string } } | undefined;
    const st = answer?.status ?? {};
    const d: Decision = { allowed: st.allowed === true && st.denied !== true, reason: st.reason ?? "" };
    if (st.evaluationError) this.log.debug({ evaluationError: st.evaluationError }, "SubjectAccessReview evaluation error");
    this.cache.set(key, d, d.allowed ? this.allowTtlMs : this.denyTtlMs);
    return d;
  }
}
