/**
 * Service account tokens for projected volumes (upstream's pkg/kubelet/token/token_manager.go): one
 * TokenRequest per pod, service account, audience and lifetime, bound to the pod; cached and fetched again
 * once the token is older than 80% of its life or than 24 hours (less a jitter of up to 10 s), as upstream. The
 * kubelet writes the new token into the volume on the pod's next sync, which is scheduled for `refreshAt`.
 */
import { systemClock, type Clock } from "../../src-shared/clock.ts";
import { resourcePath, type KubeClient } from "../../src-shared/kube/client.ts";

export interface TokenRequestSpec {
  namespace: string;
  serviceAccount: string;
  /** "" = the API server's own audiences. */
  audience: string;
  expirationSeconds: number;
  pod: { name: string; uid: string };
}

export interface Token {
  token: string;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
  /** When it must be fetched again, ms since the epoch. */
  refreshAt: number;
}

/** What the token manager needs of the API: the TokenRequest subresource. */
export type TokenClient = Pick<KubeClient, "request">;

const MAX_TTL_MS = 24 * 3600_000;
const MAX_JITTER_MS = 10_000;

/** When a token must be refreshed: 80% of its life, or 24 h, less `jitterMs`. Pure. */
export function refreshTime(expiresAt: number, expirationSeconds: number, jitterMs: number): number {
  const ttl = expirationSeconds * 1000;
  const issuedAt = expiresAt - ttl;
  return Math.min(issuedAt + MAX_TTL_MS - jitterMs, expiresAt - ttl / 5 - jitterMs);
}

export class TokenManager {
  private readonly client: TokenClient;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly cache = new Map<string, Token>();

  constructor(options: { client: TokenClient; clock?: Clock; random?: () => number }) {
    this.client = options.client;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
  }

  private static key(s: TokenRequestSpec): string {
    return [s.namespace, s.serviceAccount, s.audience, s.expirationSeconds, s.pod.uid].join("\u0000");
  }

  /** The pod's token for `spec`, from the cache unless it is due for refresh. */
  async get(spec: TokenRequestSpec, signal?: AbortSignal): Promise<Token> {
    const key = TokenManager.key(spec);
    const cached = this.cache.get(key);
    const now = this.clock.now();
    if (cached && now < cached.refreshAt) return cached;
    try {
      // POST to the named service account's subresource (create() would post to the collection).
      const path = resourcePath({ group: "", version: "v1", resource: "serviceaccounts", namespace: spec.namespace, name: spec.serviceAccount, subresource: "token" });
      const res = await this.client.request<{ status?: { token?: string; expirationTimestamp?: string } }>("POST", path, {
        ...(signal ? { signal } : {}),
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: {
            audiences: spec.audience === "" ? [] : [spec.audience],
            expirationSeconds: spec.expirationSeconds,
            boundObjectRef: { apiVersion: "v1", kind: "Pod", name: spec.pod.name, uid: spec.pod.uid },
          },
        },
      });
      const expiresAt = Date.parse(res.status?.expirationTimestamp ?? "");
      const token: Token = {
        token: res.status?.token ?? "",
        expiresAt,
        refreshAt: refreshTime(expiresAt, spec.expirationSeconds, this.random() * MAX_JITTER_MS),
      };
      this.cache.set(key, token);
      return token;
    } catch (err) {
      // Upstream serves the old token while it is still valid.
      if (cached && now < cached.expiresAt) return cached;
      throw err;
    }
  }

  /** Drops the tokens of a pod that is gone. */
  forgetPod(uid: string): void {
    for (const k of [...this.cache.keys()]) if (k.endsWith(`\u0000${uid}`)) this.cache.delete(k);
  }
}
