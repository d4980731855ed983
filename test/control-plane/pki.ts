/**
 * The control plane's PKI: a self-signed CA, the serving certificate and client certificates whose subject
 * carries the identity (CN = user, O = groups), as kube-apiserver's x509 authenticator reads them.
 * ECDSA P-256 keys, made with WebCrypto and signed with @peculiar/x509.
 */
import "reflect-metadata";
import { webcrypto, randomBytes, X509Certificate as NodeX509 } from "node:crypto";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export interface KeyAndCert {
  keyPem: string;
  certPem: string;
}

export interface CertificateAuthority extends KeyAndCert {
  key: CryptoKey;
  cert: x509.X509Certificate;
}

function pemKey(der: ArrayBuffer): string {
  return x509.PemConverter.encode(der, "PRIVATE KEY") + "\n";
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f;
  return b.toString("hex");
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]));
}

/** Escapes a value for an RFC 4514 name string. */
function rdn(v: string): string {
  return v.replace(/([,+"\\<>;=])/g, "\\$1").replace(/^([ #])/, "\\$1");
}

export async function createCA(commonName = "deckhand-control-plane-ca", validDays = 3650): Promise<CertificateAuthority> {
  const keys = await keyPair();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${rdn(commonName)}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + validDays * 86_400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const der = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { key: keys.privateKey, cert, keyPem: pemKey(der), certPem: cert.toString("pem") + "\n" };
}

/** Loads a CA written earlier (PKCS#8 EC key and certificate PEM). */
export async function loadCA(keyPem: string, certPem: string): Promise<CertificateAuthority> {
  const der = x509.PemConverter.decodeFirst(keyPem);
  const key = await webcrypto.subtle.importKey("pkcs8", der, alg, true, ["sign"]);
  return { key, cert: new x509.X509Certificate(certPem), keyPem, certPem };
}

export interface CertOptions {
  commonName: string;
  organizations?: string[];
  dnsNames?: string[];
  ips?: string[];
  server?: boolean;
  client?: boolean;
  validDays?: number;
}

export async function issueCert(ca: CertificateAuthority, o: CertOptions): Promise<KeyAndCert> {
  const keys = await keyPair();
  const now = Date.now();
  const subject = [`CN=${rdn(o.commonName)}`, ...(o.organizations ?? []).map((g) => `O=${rdn(g)}`)].join(", ");
  const usages: string[] = [];
  if (o.server === true) usages.push(x509.ExtendedKeyUsage.serverAuth);
  if (o.client !== false) usages.push(x509.ExtendedKeyUsage.clientAuth);
  const sans = [...(o.dnsNames ?? []).map((d) => ({ type: "dns" as const, value: d })), ...(o.ips ?? []).map((i) => ({ type: "ip" as const, value: i }))];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(usages, false),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: ca.cert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (o.validDays ?? 365) * 86_400_000),
    signingKey: ca.key,
    publicKey: keys.publicKey,
    signingAlgorithm: alg,
    extensions,
  });
  const der = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { keyPem: pemKey(der), certPem: cert.toString("pem") + "\n" };
}

/** CN and O of a certificate's subject, as the x509 authenticator maps them to user and groups. */
export function subjectIdentity(certPem: string): { user: string; groups: string[] } {
  const c = new NodeX509(certPem);
  const user = /(?:^|\n)CN=([^\n]*)/.exec(c.subject)?.[1] ?? "";
  const groups = [...c.subject.matchAll(/(?:^|\n)O=([^\n]*)/g)].map((mm) => mm[1] ?? "");
  return { user, groups };
}
