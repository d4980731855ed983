/**
 * The kubelet's serving certificate, as upstream's InitializeTLS: `tlsCertFile`/`tlsPrivateKeyFile` when set;
 * otherwise `<certDir>/kubelet.crt` and `kubelet.key`, made self-signed for the node name (self-signed.ts) and
 * written there the first time, then reused. Given files are reloaded when they change (TlsFilesReloader, with the client CA).
 */
import { watch, type FSWatcher } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { dirname, join } from "node:path";
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

/** What the kubelet's TLS listener is built from: the serving pair and, with x509 authentication, the client CA. */
export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  clientCAPem?: string;
}

export interface TlsFilesReloaderOptions {
  /** The serving pair's files (unset: a self-signed pair, never reloaded). */
  certFile?: string;
  keyFile?: string;
  /** `authentication.x509.clientCAFile` (unset: no client certificates). */
  clientCAFile?: string;
  current: TlsMaterial;
  onChange: (material: TlsMaterial) => void;
  log: Logger;
  pollMs?: number;
}

/**
 * Upstream's dynamic TLS files (DynamicServingContentFromFiles for the kubelet's ReloadKubeletServerCertificate,
 * DynamicCAContentFromFile for `clientCAFile`): the files are watched (their folders, so that a file replaced
 * by rename or a symlink swap is seen) and checked every minute as well; new material that loads (a pair whose
 * key matches, a CA bundle of valid certificates) is handed to `onChange`, which gives it to new connections;
 * a broken file is logged and what is in use kept.
 */
export class TlsFilesReloader {
  private readonly o: TlsFilesReloaderOptions;
  private current: TlsMaterial;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private checking: Promise<void> = Promise.resolve();
  private signal: AbortSignal | undefined;
  private refused = 0;

  constructor(o: TlsFilesReloaderOptions) {
    this.o = o;
    this.current = o.current;
  }

  /** Files found on disk and not taken (unreadable, not matching): for tests and diagnostics. */
  get refusals(): number {
    return this.refused;
  }

  start(signal: AbortSignal): void {
    this.signal = signal;
    const files = [this.o.certFile, this.o.keyFile, this.o.clientCAFile].filter((f): f is string => f !== undefined && f !== "");
    for (const dir of new Set(files.map((f) => dirname(f)))) {
      try {
        const w = watch(dir, { persistent: false, signal }, () => this.soon());
        w.on("error", () => undefined);
        this.watchers.push(w);
      } catch (err) {
        this.o.log.warn({ dir, err: errorMessage(err) }, "cannot watch the TLS files' folder; checking it every minute only");
      }
    }
    this.timer = setInterval(() => this.soon(), this.o.pollMs ?? 60_000);
    this.timer.unref();
    signal.addEventListener("abort", () => void this.close(), { once: true });
  }

  async close(): Promise<void> {
    for (const w of this.watchers.splice(0)) w.close();
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    await this.checking;
  }

  /** Several events come for one replacement (both files, rename then write): one check a little after the first. */
  private soon(): void {
    if (this.signal?.aborted || this.debounce !== undefined) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.checking = this.checking.then(() => this.check());
    }, 200);
  }

  private async check(): Promise<void> {
    const next = { ...this.current };
    if (this.o.certFile && this.o.keyFile) {
      try {
        const [certPem, keyPem] = await Promise.all([readFile(this.o.certFile, "utf8"), readFile(this.o.keyFile, "utf8")]);
        if (certPem !== this.current.certPem || keyPem !== this.current.keyPem) {
          const cert = new X509Certificate(certPem);
          if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new DeckhandError("InvalidArgument", "the private key does not match the certificate");
          Object.assign(next, { certPem, keyPem });
        }
      } catch (err) {
        this.refused++;
        this.o.log.error({ cert: this.o.certFile, key: this.o.keyFile, err: errorMessage(err) }, "serving certificate not reloaded; keeping the one in use");
      }
    }
    if (this.o.clientCAFile) {
      try {
        const pem = await readFile(this.o.clientCAFile, "utf8");
        if (pem !== this.current.clientCAPem) {
          const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
          if (blocks.length === 0) throw new DeckhandError("InvalidArgument", "no certificate in the file");
          for (const b of blocks) new X509Certificate(b);
          next.clientCAPem = pem;
        }
      } catch (err) {
        this.refused++;
        this.o.log.error({ clientCAFile: this.o.clientCAFile, err: errorMessage(err) }, "client CA not reloaded; keeping the one in use");
      }
    }
    if (next.certPem === this.current.certPem && next.keyPem === this.current.keyPem && next.clientCAPem === this.current.clientCAPem) return;
    try {
      this.o.onChange(next);
    } catch (err) {
      this.refused++;
      this.o.log.error({ err: errorMessage(err) }, "TLS files not reloaded; keeping the ones in use");
      return;
    }
    if (next.certPem !== this.current.certPem) this.o.log.info({ cert: this.o.certFile, subject: new X509Certificate(next.certPem).subject }, "serving certificate reloaded");
    if (next.clientCAPem !== this.current.clientCAPem) this.o.log.info({ clientCAFile: this.o.clientCAFile }, "client CA reloaded");
    this.current = next;
  }
}
