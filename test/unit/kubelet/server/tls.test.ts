import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { selfSignedServingCert } from "../../../../kubelet/server/self-signed.ts";
import { TlsFilesReloader, servingCertificate } from "../../../../kubelet/server/serving-cert.ts";
import { eventually } from "../../../harness/wait.ts";
import { cipherSuiteProblem, curveProblem, tlsSettings } from "../../../../kubelet/server/tls-options.ts";
import { silentLogger } from "../../../../src-shared/log.ts";

describe("the self-signed serving certificate", () => {
  it("is a serving certificate for the host signed by a CA of its own, both in the file, as upstream's", () => {
    const { certPem } = selfSignedServingCert("node-1", ["10.0.0.1", "fd00::1"], new Date("2026-01-01T00:00:00Z"));
    const [leafPem, caPem] = certPem.split(/(?<=-----END CERTIFICATE-----\n)/);
    const leaf = new X509Certificate(leafPem ?? "");
    const ca = new X509Certificate(caPem ?? "");
    expect(leaf.subject).toBe("CN=node-1@1767225600");
    expect(ca.subject).toBe("CN=node-1-ca@1767225600");
    expect(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
    expect(leaf.subjectAltName).toBe("DNS:node-1, IP Address:10.0.0.1, IP Address:FD00:0:0:0:0:0:0:1");
    expect(new Date(leaf.validTo).getTime() - new Date("2026-01-01T00:00:00Z").getTime()).toBe(365 * 86_400_000);
  });

  it("is written under the cert dir once and reused; configured files are used as they are", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kubelet-pki-"));
    try {
      const a = await servingCertificate({ tlsCertFile: "", tlsPrivateKeyFile: "", certDir: join(dir, "pki"), nodeName: "n", log: silentLogger() });
      expect(await readFile(join(dir, "pki", "kubelet.crt"), "utf8")).toBe(a.certPem);
      const b = await servingCertificate({ tlsCertFile: "", tlsPrivateKeyFile: "", certDir: join(dir, "pki"), nodeName: "n", log: silentLogger() });
      expect(b.certPem).toBe(a.certPem);
      await writeFile(join(dir, "c.pem"), a.certPem);
      await writeFile(join(dir, "k.pem"), a.keyPem);
      expect((await servingCertificate({ tlsCertFile: join(dir, "c.pem"), tlsPrivateKeyFile: join(dir, "k.pem"), certDir: "/nonexistent", nodeName: "n", log: silentLogger() })).certPem).toBe(a.certPem);
      await expect(servingCertificate({ tlsCertFile: join(dir, "missing.pem"), tlsPrivateKeyFile: join(dir, "k.pem"), certDir: dir, nodeName: "n", log: silentLogger() })).rejects.toThrow(/tlsCertFile .*missing.pem/);
      await expect(servingCertificate({ tlsCertFile: join(dir, "c.pem"), tlsPrivateKeyFile: "", certDir: dir, nodeName: "n", log: silentLogger() })).rejects.toThrow("must be set together");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("TLS settings", () => {
  it("maps Go's names and numbers to OpenSSL's, TLS 1.3 suites always on", () => {
    expect(tlsSettings({ tlsMinVersion: "VersionTLS13", tlsCipherSuites: [], tlsCurvePreferences: [] })).toEqual({ minVersion: "TLSv1.3" });
    expect(tlsSettings({ tlsMinVersion: "", tlsCipherSuites: ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"], tlsCurvePreferences: [29, 23] })).toEqual({
      ciphers: "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-RSA-AES128-GCM-SHA256",
      ecdhCurve: "X25519:P-256",
    });
  });

  it("knows what it does not support", () => {
    expect(cipherSuiteProblem("TLS_RSA_WITH_RC4_128_SHA")).toBe("unsupported cipher suite TLS_RSA_WITH_RC4_128_SHA");
    expect(curveProblem(99)).toMatch(/^unsupported curve ID 99/);
  });
});

describe("the certificate encoding", () => {
  it("stays valid DER whatever the random serial (leading zero bytes, high bits)", () => {
    for (let i = 0; i < 300; i++) expect(() => new X509Certificate(selfSignedServingCert("n").certPem)).not.toThrow();
  });
});

describe("the TLS files reloader", () => {
  it("hands a new matching pair to the server when the files change, and keeps the old one for a broken pair", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kubelet-reload-"));
    const ctl = new AbortController();
    try {
      const a = selfSignedServingCert("a");
      const b = selfSignedServingCert("b");
      const c = selfSignedServingCert("c");
      const cert = join(dir, "tls.crt");
      const key = join(dir, "tls.key");
      await writeFile(cert, a.certPem);
      await writeFile(key, a.keyPem);
      const given: string[] = [];
      const r = new TlsFilesReloader({ certFile: cert, keyFile: key, current: a, onChange: (p) => given.push(new X509Certificate(p.certPem).subject), log: silentLogger(), pollMs: 50 });
      r.start(ctl.signal);
      await writeFile(key, b.keyPem);
      await writeFile(cert, b.certPem);
      await eventually(() => (given.length > 0 ? true : undefined), { timeoutMs: 5_000, message: "the new pair" });
      expect(given).toEqual([new X509Certificate(b.certPem).subject]);
      // c's certificate with b's key: refused when checked, not handed over.
      const refusals = r.refusals;
      await writeFile(cert, c.certPem);
      await eventually(() => (r.refusals > refusals ? true : undefined), { timeoutMs: 5_000, message: "the broken pair refused" });
      expect(given).toEqual([new X509Certificate(b.certPem).subject]);
      await r.close();
    } finally {
      ctl.abort();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("hands a new client CA bundle to the server with the pair in use, and keeps the old one for a file that holds no valid certificate", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kubelet-reload-ca-"));
    const ctl = new AbortController();
    try {
      const pair = selfSignedServingCert("serving");
      const caA = selfSignedServingCert("ca-a").certPem;
      const caB = selfSignedServingCert("ca-b").certPem;
      const caFile = join(dir, "ca.crt");
      await writeFile(caFile, caA);
      const given: { subject: string; ca: string | undefined }[] = [];
      const r = new TlsFilesReloader({ clientCAFile: caFile, current: { ...pair, clientCAPem: caA }, onChange: (m) => given.push({ subject: new X509Certificate(m.certPem).subject, ca: m.clientCAPem }), log: silentLogger(), pollMs: 50 });
      r.start(ctl.signal);
      await writeFile(caFile, caA + caB);
      await eventually(() => (given.length > 0 ? true : undefined), { timeoutMs: 5_000, message: "the new bundle" });
      expect(given).toEqual([{ subject: new X509Certificate(pair.certPem).subject, ca: caA + caB }]);
      const refusals = r.refusals;
      await writeFile(caFile, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n");
      await eventually(() => (r.refusals > refusals ? true : undefined), { timeoutMs: 5_000, message: "the broken bundle refused" });
      expect(given).toHaveLength(1);
      await r.close();
    } finally {
      ctl.abort();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
