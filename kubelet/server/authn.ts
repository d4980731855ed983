/**
 * Who is calling the kubelet API, as upstream's delegating authenticator (BuildAuth in cmd/kubelet/app/auth.go):
 * a client certificate verified against `authentication.x509.clientCAFile` (CN the user, O the groups), else a
 * bearer token checked through a TokenReview (`authentication.webhook`, answers cached for `cacheTTL`), each
 * with `system:authenticated` added; else, when `authentication.anonymous.enabled`, `system:anonymous` in
 * `system:unauthenticated`. A credential that fails (a certificate of another CA, a token the API refuses) is
 * a failure even with anonymous enabled, as upstream's NewFailOnError union: it is never taken as anonymous.
 */
import { createHash } from "node:crypto";
import type { TLSSocket } from "node:tls";
import type { IncomingMessage } from "node:http";
import type { Logger } from "../../src-shared/log.ts";
import { errorMessage } from "../../src-shared/errors.ts";
import { TtlCache } from "../../src-shared/ttl-cache.ts";
import type { Clock } from "../../src-shared/clock.ts";
import type { KubeletUser } from "./auth-attributes.ts";

export const ANONYMOUS: KubeletUser = { username: "system:anonymous", groups: ["system:unauthenticated"] };
const AUTHENTICATED = "system:authenticated";

/** The TokenReview call (the API client's create, or a fake in tests). */
export type TokenReviewer = (review: unknown, signal?: AbortSignal) => Promise<unknown>;

export interface AuthenticatorOptions {
  /** The x509 authenticator is on when the server asks for client certificates against a CA. */
  x509: boolean;
  webhook: { enabled: boolean; cacheTTLMs: number; review: TokenReviewer | undefined };
  anonymous: boolean;
  log: Logger;
  clock?: Pick<Clock, "now">;
}

export type AuthnResult = { ok: true; user: KubeletUser; method: "x509" | "token" | "anonymous" } | { ok: false; reason: string };

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  error?: string;
}

function withAuthenticated(u: KubeletUser): KubeletUser {
  return u.groups.includes(AUTHENTICATED) ? u : { ...u, groups: [...u.groups, AUTHENTICATED] };
}

/** CN and O of a verified peer certificate, as the x509 authenticator maps them. */
export function certificateUser(subject: Record<string, string | string[] | undefined> | undefined): KubeletUser | undefined {
  const cn = subject?.["CN"];
  const o = subject?.["O"];
  const username = Array.isArray(cn) ? (cn[0] ?? "") : (cn ?? "");
  if (username === "") return undefined;
  return { username, groups: o === undefined ? [] : Array.isArray(o) ? [...o] : [o] };
}

export class KubeletAuthenticator {
  private readonly o: AuthenticatorOptions;
  private readonly tokens: TtlCache<{ user: KubeletUser } | { error: string }>;

  constructor(o: AuthenticatorOptions) {
    this.o = o;
    this.tokens = new TtlCache(o.clock ? { clock: o.clock } : {});
  }

  async authenticate(req: IncomingMessage, signal?: AbortSignal): Promise<AuthnResult> {
    const sock = req.socket as Partial<TLSSocket>;
    if (this.o.x509 && typeof sock.getPeerCertificate === "function") {
      const cert = sock.getPeerCertificate();
      const presented = cert !== undefined && Object.keys(cert).length > 0;
      if (presented) {
        if (sock.authorized !== true) return { ok: false, reason: `x509: ${String(sock.authorizationError ?? "certificate not trusted")}` };
        const user = certificateUser(cert.subject);
        if (user !== undefined) return { ok: true, user: withAuthenticated(user), method: "x509" };
      }
    }
    const header = req.headers.authorization;
    if (header !== undefined && this.o.webhook.enabled) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (m !== null) return this.token(m[1] ?? "", signal);
    }
    if (this.o.anonymous) return { ok: true, user: ANONYMOUS, method: "anonymous" };
    return { ok: false, reason: "no credentials" };
  }

  private async token(token: string, signal?: AbortSignal): Promise<AuthnResult> {
    const key = createHash("sha256").update(token).digest("hex");
    let entry = this.tokens.get(key);
    if (entry === undefined) {
      const review = this.o.webhook.review;
      if (review === undefined) return { ok: false, reason: "token webhook: no API client (standalone)" };
      try {
        const answer = (await review({ apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } }, signal)) as { status?: TokenReviewStatus } | undefined;
        const st = answer?.status ?? {};
        if (st.authenticated === true && st.user?.username) {
          const u: KubeletUser = { username: st.user.username, groups: st.user.groups ?? [] };
          if (st.user.uid !== undefined) u.uid = st.user.uid;
          if (st.user.extra !== undefined) u.extra = st.user.extra;
          entry = { user: withAuthenticated(u) };
        } else entry = { error: st.error ?? "token not authenticated" };
        this.tokens.set(key, entry, this.o.webhook.cacheTTLMs);
      } catch (err) {
        // Not cached: the next request asks again.
        this.o.log.warn({ err: errorMessage(err) }, "TokenReview failed");
        return { ok: false, reason: `token webhook: ${errorMessage(err)}` };
      }
    }
    return "user" in entry ? { ok: true, user: entry.user, method: "token" } : { ok: false, reason: entry.error };
  }
}
