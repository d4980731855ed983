/**
 * The kubelet's serving certificate from `tlsCertFile`/`tlsPrivateKeyFile` and its `clientCAFile`, reloaded when
 * the files change (upstream's dynamic serving certificate and CA content): new connections to 10250 get the new
 * pair or are checked against the new CA bundle without a restart, a broken pair is refused and the one in use
 * kept.
 */
import http from "node:http";
import tls from "node:tls";
import { mkdtempSync } from "node:fs";
import { appendFile, readFile, rename, rm, writeFile } from "node:fs/promises";
import { X509Certificate } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterWithOneNode } from "../../harness/cluster-suite.ts";
import { eventually } from "../../harness/wait.ts";
import { createCA, issueCert, type CertificateAuthority, type KeyAndCert } from "../../control-plane/pki.ts";

const dir = mkdtempSync(join(tmpdir(), "deckhand-serving-cert-"));
const certFile = join(dir, "serving.crt");
const keyFile = join(dir, "serving.key");
let ca: CertificateAuthority;
let first: KeyAndCert;

/** Both files replaced by rename, as a cert manager (or a Secret's symlink swap) does. */
async function install(pair: KeyAndCert): Promise<void> {
  await writeFile(`${keyFile}.new`, pair.keyPem, { mode: 0o600 });
  await writeFile(`${certFile}.new`, pair.certPem);
  await rename(`${keyFile}.new`, keyFile);
  await rename(`${certFile}.new`, certFile);
}

// Before the suite's own beforeAll: the files exist when the kubelet starts.
beforeAll(async () => {
  ca = await createCA("serving-test");
  first = await issueCert(ca, { commonName: "first-serving", server: true, dnsNames: ["first.example"] });
  await install(first);
});
const suite = clusterWithOneNode({ config: { tlsCertFile: certFile, tlsPrivateKeyFile: keyFile } });
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The certificate a new TLS connection to the node's 10250 gets. */
async function served(): Promise<string> {
  const raw = await suite.node.dial(suite.node.sandbox.nodeIP ?? "", 10250);
  const s = tls.connect({ socket: raw, rejectUnauthorized: false });
  await new Promise((resolve, reject) => {
    s.once("secureConnect", resolve);
    s.once("error", reject);
  });
  const fp = s.getPeerCertificate().fingerprint256;
  s.destroy();
  return fp;
}

const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

describe("the kubelet's serving certificate from files", () => {
  it("serves the given pair, then a new pair written over it without a restart; a broken pair is not taken", async () => {
    await eventually(() => served().catch(() => undefined), { timeoutMs: 30_000, message: "the kubelet API" });
    expect(await served()).toBe(fingerprint(first.certPem));
    const pid = suite.node.kubelet?.pid;

    const second = await issueCert(ca, { commonName: "second-serving", server: true, dnsNames: ["second.example"] });
    await install(second);
    await eventually(async () => ((await served()) === fingerprint(second.certPem) ? true : undefined), { timeoutMs: 15_000, message: "the new certificate served" });
    expect(suite.node.kubelet?.pid).toBe(pid);

    // A certificate with another pair's key: logged, and the second pair stays.
    const third = await issueCert(ca, { commonName: "third-serving", server: true });
    const logPath = suite.node.kubelet?.logPath ?? "";
    const refusals = async (): Promise<number> => (await readFile(logPath, "utf8")).split("serving certificate not reloaded").length - 1;
    const before = await refusals();
    await install({ ...third, keyPem: second.keyPem });
    await eventually(async () => ((await refusals()) > before ? true : undefined), { timeoutMs: 15_000, message: "the refusal logged" });
    expect(await served()).toBe(fingerprint(second.certPem));
  });

  it("takes a CA added to clientCAFile for new connections: a client certificate of that CA goes from 401 to authenticated", async () => {
    const other = await createCA("another-client-ca");
    const admin = await issueCert(other, { commonName: "ops-admin", organizations: ["system:masters"] });
    const status = async (): Promise<number> => {
      const raw = await suite.node.dial(suite.node.sandbox.nodeIP ?? "", 10250);
      const socket = tls.connect({ socket: raw, rejectUnauthorized: false, key: admin.keyPem, cert: admin.certPem });
      return new Promise((resolve, reject) => {
        const req = http.request({ path: "/pods", createConnection: () => socket }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end();
      });
    };
    expect(await status()).toBe(401);
    const pid = suite.node.kubelet?.pid;
    // The harness gives the kubelet the cluster CA in this file (test/harness/cluster.ts).
    await appendFile(join(suite.node.sandbox.dir, "cluster-ca.crt"), other.certPem);
    await eventually(async () => ((await status()) === 200 ? true : undefined), { timeoutMs: 15_000, message: "the new CA's client authenticated" });
    expect(suite.node.kubelet?.pid).toBe(pid);
  });
});
