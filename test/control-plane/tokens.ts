/**
 * Service account tokens: ES256-signed JWTs with the claims kube-apiserver puts in bound tokens
 * (`kubernetes.io` claim with namespace, serviceaccount, pod/node binding), and their verification.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, verify, createHash, type KeyObject } from "node:crypto";

export interface ServiceAccountClaims {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  "kubernetes.io": {
    namespace: string;
    serviceaccount: { name: string; uid: string };
    pod?: { name: string; uid: string };
    node?: { name: string; uid: string };
    secret?: { name: string; uid: string };
    warnafter?: number;
  };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

export class TokenSigner {
  readonly issuer: string;
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  readonly keyId: string;

  constructor(options: { issuer: string; privateKeyPem?: string }) {
    this.issuer = options.issuer;
    if (options.privateKeyPem !== undefined) {
      this.privateKey = createPrivateKey(options.privateKeyPem);
    } else {
      this.privateKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    }
    this.publicKey = createPublicKey(this.privateKey);
    const der = this.publicKey.export({ format: "der", type: "spki" });
    this.keyId = createHash("sha256").update(der).digest("base64url");
  }

  privateKeyPem(): string {
    return this.privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  }

  publicJwk(): Record<string, unknown> {
    return { ...this.publicKey.export({ format: "jwk" }), kid: this.keyId, use: "sig", alg: "ES256" };
  }

  sign(claims: ServiceAccountClaims): string {
    const header = b64url(JSON.stringify({ alg: "ES256", kid: this.keyId }));
    const payload = b64url(JSON.stringify(claims));
    const sig = sign("sha256", Buffer.from(`${header}.${payload}`), { key: this.privateKey, dsaEncoding: "ieee-p1363" });
    return `${header}.${payload}.${b64url(sig)}`;
  }

  mint(o: {
    namespace: string;
    serviceAccount: { name: string; uid: string };
    audiences: string[];
    expirationSeconds: number;
    pod?: { name: string; uid: string };
    node?: { name: string; uid: string };
    now?: number;
  }): { token: string; claims: ServiceAccountClaims } {
    const now = Math.floor((o.now ?? Date.now()) / 1000);
    const k8s: ServiceAccountClaims["kubernetes.io"] = { namespace: o.namespace, serviceaccount: o.serviceAccount };
    if (o.pod !== undefined) k8s.pod = o.pod;
    if (o.node !== undefined) k8s.node = o.node;
    const claims: ServiceAccountClaims = {
      iss: this.issuer,
      sub: `system:serviceaccount:${o.namespace}:${o.serviceAccount.name}`,
      aud: o.audiences,
      exp: now + o.expirationSeconds,
      iat: now,
      nbf: now,
      jti: randomUUID(),
      "kubernetes.io": k8s,
    };
    return { token: this.sign(claims), claims };
  }

  /** The claims of a token this signer issued, if its signature, issuer and time window are valid. */
  verify(token: string, nowMs: number = Date.now()): ServiceAccountClaims | undefined {
    const parts = token.split(".");
    if (parts.length !== 3) return undefined;
    const [h, p, s] = parts as [string, string, string];
    let header: { alg?: string };
    let claims: ServiceAccountClaims;
    try {
      header = JSON.parse(Buffer.from(h, "base64url").toString()) as { alg?: string };
      claims = JSON.parse(Buffer.from(p, "base64url").toString()) as ServiceAccountClaims;
    } catch {
      return undefined;
    }
    if (header.alg !== "ES256") return undefined;
    const ok = verify("sha256", Buffer.from(`${h}.${p}`), { key: this.publicKey, dsaEncoding: "ieee-p1363" }, Buffer.from(s, "base64url"));
    if (!ok) return undefined;
    const now = Math.floor(nowMs / 1000);
    if (claims.iss !== this.issuer || typeof claims.exp !== "number" || claims.exp < now || (typeof claims.nbf === "number" && claims.nbf > now + 60)) return undefined;
    if (!Array.isArray(claims.aud)) return undefined;
    return claims;
  }
}
