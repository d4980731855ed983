/**
 * Bearer token authentication: static tokens (like --token-auth-file) and service account JWTs signed by
 * the control plane, checked against the live ServiceAccount (and bound Pod) as kube-apiserver does.
 * Client certificates are read by the server from the TLS session.
 */
import type { Store } from "./store.ts";
import type { TokenSigner } from "./tokens.ts";
import type { UserInfo } from "./authz.ts";

export interface AuthResult {
  user: UserInfo;
  audiences: string[];
}

export class Authenticator {
  private readonly staticTokens = new Map<string, UserInfo>();
  private readonly store: Store;
  private readonly signer: TokenSigner;
  private readonly apiAudiences: string[];

  constructor(store: Store, signer: TokenSigner, apiAudiences: string[]) {
    this.store = store;
    this.signer = signer;
    this.apiAudiences = apiAudiences;
  }

  addStaticToken(token: string, user: UserInfo): void {
    this.staticTokens.set(token, { ...user, groups: [...new Set([...user.groups, "system:authenticated"])] });
  }

  /** The user a token stands for, if it is valid for one of `audiences` (default: the API's). */
  authenticateToken(token: string, audiences: string[] = this.apiAudiences): AuthResult | undefined {
    const st = this.staticTokens.get(token);
    if (st !== undefined) return { user: st, audiences };
    const claims = this.signer.verify(token);
    if (claims === undefined) return undefined;
    const matched = claims.aud.filter((a) => audiences.includes(a));
    if (matched.length === 0) return undefined;
    const k = claims["kubernetes.io"];
    const sa = this.store.get("core/serviceaccounts", k.namespace, k.serviceaccount.name);
    if (sa === undefined || sa.metadata.uid !== k.serviceaccount.uid) return undefined;
    const extra: Record<string, string[]> = {};
    if (k.pod !== undefined) {
      const pod = this.store.get("core/pods", k.namespace, k.pod.name);
      if (pod === undefined || pod.metadata.uid !== k.pod.uid) return undefined;
      extra["authentication.kubernetes.io/pod-name"] = [k.pod.name];
      extra["authentication.kubernetes.io/pod-uid"] = [k.pod.uid];
    }
    if (k.node !== undefined) {
      extra["authentication.kubernetes.io/node-name"] = [k.node.name];
      extra["authentication.kubernetes.io/node-uid"] = [k.node.uid];
    }
    extra["authentication.kubernetes.io/credential-id"] = [`JTI=${claims.jti}`];
    return {
      user: {
        username: claims.sub,
        uid: k.serviceaccount.uid,
        groups: ["system:serviceaccounts", `system:serviceaccounts:${k.namespace}`, "system:authenticated"],
        extra,
      },
      audiences: matched,
    };
  }
}
