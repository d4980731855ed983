/**
 * The serving TLS settings from the configuration, as Go's crypto/tls applies them: `tlsMinVersion`
 * (VersionTLS10..13; unset: Go's server default TLS 1.2, which is also Node's), `tlsCipherSuites` by their Go
 * (IANA) names mapped to OpenSSL's (TLS 1.3 suites are accepted and, as in Go, not configurable: always on),
 * and `tlsCurvePreferences` by Go's CurveID numbers. A name or number not known here is refused by
 * validation, never dropped.
 */
import type { SecureVersion } from "node:tls";

/** Go cipher suite name → OpenSSL name (TLS 1.0-1.2 suites Go offers; the insecure RC4 ones excluded). */
export const GO_CIPHER_SUITES: Readonly<Record<string, string>> = {
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: "DES-CBC3-SHA",
  TLS_RSA_WITH_AES_128_CBC_SHA: "AES128-SHA",
  TLS_RSA_WITH_AES_256_CBC_SHA: "AES256-SHA",
  TLS_RSA_WITH_AES_128_CBC_SHA256: "AES128-SHA256",
  TLS_RSA_WITH_AES_128_GCM_SHA256: "AES128-GCM-SHA256",
  TLS_RSA_WITH_AES_256_GCM_SHA384: "AES256-GCM-SHA384",
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: "ECDHE-ECDSA-AES128-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: "ECDHE-ECDSA-AES256-SHA",
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: "ECDHE-RSA-DES-CBC3-SHA",
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: "ECDHE-RSA-AES128-SHA",
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: "ECDHE-RSA-AES256-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: "ECDHE-ECDSA-AES128-SHA256",
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: "ECDHE-RSA-AES128-SHA256",
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: "ECDHE-RSA-AES128-GCM-SHA256",
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: "ECDHE-ECDSA-AES128-GCM-SHA256",
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: "ECDHE-RSA-AES256-GCM-SHA384",
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: "ECDHE-ECDSA-AES256-GCM-SHA384",
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: "ECDHE-RSA-CHACHA20-POLY1305",
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-RSA-CHACHA20-POLY1305",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: "ECDHE-ECDSA-CHACHA20-POLY1305",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
};
/** TLS 1.3 suites: accepted in the list, always enabled (Go does not let them be chosen). */
export const TLS13_SUITES: readonly string[] = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];

/** Go's tls.CurveID numbers → OpenSSL group names. */
export const GO_CURVES: Readonly<Record<number, string>> = { 23: "P-256", 24: "P-384", 25: "P-521", 29: "X25519", 4588: "X25519MLKEM768" };

const VERSIONS: Readonly<Record<string, SecureVersion>> = { VersionTLS10: "TLSv1", VersionTLS11: "TLSv1.1", VersionTLS12: "TLSv1.2", VersionTLS13: "TLSv1.3" };

/** The problem with a cipher suite name, if any. */
export function cipherSuiteProblem(name: string): string | undefined {
  return GO_CIPHER_SUITES[name] !== undefined || TLS13_SUITES.includes(name) ? undefined : `unsupported cipher suite ${name}`;
}

/** The problem with a curve id, if any. */
export function curveProblem(id: number): string | undefined {
  return GO_CURVES[id] !== undefined ? undefined : `unsupported curve ID ${id} (known: ${Object.keys(GO_CURVES).join(", ")})`;
}

export interface NodeTlsSettings {
  minVersion?: SecureVersion;
  ciphers?: string;
  ecdhCurve?: string;
}

/** Node's TLS options for the configured settings (validated before). */
export function tlsSettings(c: { tlsMinVersion: string; tlsCipherSuites: readonly string[]; tlsCurvePreferences: readonly number[] }): NodeTlsSettings {
  const out: NodeTlsSettings = {};
  const v = VERSIONS[c.tlsMinVersion];
  if (v !== undefined) out.minVersion = v;
  if (c.tlsCipherSuites.length > 0) {
    const legacy = c.tlsCipherSuites.map((s) => GO_CIPHER_SUITES[s]).filter((s): s is string => s !== undefined);
    // OpenSSL's cipher string covers TLS 1.2 and below; TLS 1.3 suites stay all on, as in Go.
    out.ciphers = [...TLS13_SUITES, ...new Set(legacy)].join(":");
  }
  if (c.tlsCurvePreferences.length > 0) out.ecdhCurve = c.tlsCurvePreferences.map((id) => GO_CURVES[id] ?? "").join(":");
  return out;
}
