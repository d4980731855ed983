/**
 * The kubelet's serving certificate, as upstream's InitializeTLS: `tlsCertFile`/`tlsPrivateKeyFile` when set;
 * otherwise `<certDir>/kubelet.crt` and `kubelet.key`, made self-signed for the node name (self-signed.ts) and
 * written there the first time, then reused.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { join } from "node:path";
import { DeckhandError, errorMessage } from "../../src-shared/errors.ts";
import type { Logger } from "../../src-shared/log.ts";
import { selfSignedServingCert } from "./self-signed.ts";

export async function servingCertificate(o: { tlsCertFile: string; tlsPrivateKeyFile: string; certDir: string; nodeName: string; log: Logger }): Promise<{ certPem: string; keyPem: string }> {
  if ((o.tlsCertFile === "") !== (o.tlsPrivateKeyFile === "")) {
    throw new DeckhandError("InvalidConfig", `tlsCertFile (${JSON.stringify(o.tlsCertFile)}) and tlsPrivateKeyFile (${JSON.stringify(o.tlsPrivateKeyFile)}) must be set together`);
  }
  const given = o.tlsCertFile !== "";
  const certFile = given ? o.tlsCertFile : join(o.certDir, "kubelet.crt");
  const keyFile = given ? o.tlsPrivateKeyFile : join(o.certDir, "kubelet.key");
  const read = async (): Promise<{ certPem: string; keyPem: string }> => {
    const [certPem, keyPem] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
    new X509Certificate(certPem);
    createPrivateKey(keyPem);
    return { certPem, keyPem };
  };
  try {
    return await read();
  } catch (err) {
    if (given) throw new DeckhandError("InvalidConfig", `cannot load the serving certificate tlsCertFile ${certFile} / tlsPrivateKeyFile ${keyFile}: ${errorMessage(err)}`, { cause: err });
  }
  const made = selfSignedServingCert(o.nodeName);
  await mkdir(o.certDir, { recursive: true, mode: 0o755 });
  await writeFile(certFile, made.certPem, { mode: 0o644 });
  await writeFile(keyFile, made.keyPem, { mode: 0o600 });
  o.log.info({ cert: certFile, key: keyFile }, "wrote a self-signed serving certificate");
  return made;
}
