/**
 * The serving certificate the kubelet makes for itself when none is configured, as upstream's
 * certutil.GenerateSelfSignedCertKey: a CA `<host>-ca@<unix time>` and a serving certificate `<host>@<unix
 * time>` it signs (serverAuth, the host as DNS name or IP), valid one year; the certificate file holds both.
 * Deliberate difference: ECDSA P-256 keys rather than RSA 2048. X.509 DER is written here (Node's crypto signs
 * but does not build certificates, and the runtime has no certificate library).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { isIP } from "node:net";

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}
const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
const set = (...c: Buffer[]): Buffer => tlv(0x31, ...c);
function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out: number[] = [(parts[0] ?? 0) * 40 + (parts[1] ?? 0)];
  for (const p of parts.slice(2)) {
    const b: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) b.unshift(0x80 | (v & 0x7f));
    out.push(...b);
  }
  return tlv(0x06, Buffer.from(out));
}
/** A DER INTEGER of unsigned big-endian bytes: minimal (no leading zero bytes), positive (a 0 before a high bit). */
function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const m = b.subarray(i);
  return tlv(0x02, (m[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, "utf8"));
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bits = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.from([unused]), b);
function time(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, "").replace(/\.\d+Z$/, "Z");
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(s.slice(2))) : tlv(0x18, Buffer.from(s));
}
const name = (cn: string): Buffer => seq(set(seq(oid("2.5.4.3"), utf8(cn))));
const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));
function ext(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split(".").map(Number));
  const [head = "", tail = ""] = ip.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = tail === "" ? [] : tail.split(":");
  const groups = ip.includes("::") ? [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t] : h;
  return Buffer.concat(groups.map((g) => Buffer.from([parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff])));
}

interface CertSpec {
  subject: string;
  issuer: string;
  publicKey: KeyObject;
  signingKey: KeyObject;
  ca: boolean;
  hosts: string[];
  notBefore: Date;
  notAfter: Date;
}

function certificate(s: CertSpec): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const spki = s.publicKey.export({ type: "spki", format: "der" });
  // keyUsage: digitalSignature(0) keyEncipherment(2) [+ keyCertSign(5)]: bit string, first bit is the MSB.
  const ku = s.ca ? Buffer.from([0xa4]) : Buffer.from([0xa0]);
  const exts = [ext("2.5.29.15", true, bits(ku, s.ca ? 2 : 5)), ext("2.5.29.19", true, seq(...(s.ca ? [bool(true)] : [])))];
  if (!s.ca) {
    exts.push(ext("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))));
    const sans = s.hosts.map((h) => (isIP(h) === 0 ? tlv(0x82, Buffer.from(h)) : tlv(0x87, ipBytes(h))));
    if (sans.length > 0) exts.push(ext("2.5.29.17", false, seq(...sans)));
  }
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(serial),
    ECDSA_SHA256,
    name(s.issuer),
    seq(time(s.notBefore), time(s.notAfter)),
    name(s.subject),
    Buffer.from(spki),
    tlv(0xa3, seq(...exts)),
  );
  const sig = sign("sha256", tbs, s.signingKey);
  return seq(tbs, ECDSA_SHA256, bits(sig));
}

function pem(der: Buffer, label: string): string {
  const b64 = der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** A serving certificate (followed by its CA) and its key, PEM, for `host` plus `alternates`. */
export function selfSignedServingCert(host: string, alternates: string[] = [], now = new Date()): { certPem: string; keyPem: string } {
  const t = Math.floor(now.getTime() / 1000);
  const caKeys = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const notBefore = new Date(now.getTime() - 60_000);
  const notAfter = new Date(now.getTime() + 365 * 86_400_000);
  const caName = `${host}-ca@${t}`;
  const ca = certificate({ subject: caName, issuer: caName, publicKey: caKeys.publicKey, signingKey: caKeys.privateKey, ca: true, hosts: [], notBefore, notAfter });
  const leaf = certificate({ subject: `${host}@${t}`, issuer: caName, publicKey: keys.publicKey, signingKey: caKeys.privateKey, ca: false, hosts: [...new Set([host, ...alternates])], notBefore, notAfter });
  const keyPem = keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  // Key round-trip check: a key Node cannot read back would fail the server later with a worse message.
  createPublicKey(createPrivateKey(keyPem));
  return { certPem: pem(leaf, "CERTIFICATE") + pem(ca, "CERTIFICATE"), keyPem };
}
