import { describe, expect, it } from "vitest";
import { checkUnknownFields, unknownFields } from "../../control-plane/fields.ts";
import { decodeProtobufBody, PROTOBUF_MAGIC } from "../../control-plane/protobuf.ts";
import type { ApiError } from "../../control-plane/status.ts";

describe("unknown fields", () => {
  const pod = () => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", labels: { a: "b" } },
    spec: { containers: [{ name: "c", image: "i", imagex: "typo", resources: { limits: { cpu: "1" } } }], bogus: 1 },
    status: { podIp: "1.2.3.4", conditions: [{ type: "Ready", status: "True", extra: true }] },
  });
  it("finds them through arrays and maps", () => {
    expect(unknownFields("v1", "Pod", pod(), false)).toEqual(["spec.containers[0].imagex", "spec.bogus", "status.podIp", "status.conditions[0].extra"]);
    expect(unknownFields("coordination.k8s.io/v1", "Lease", { metadata: {}, spec: { holderIdentity: "x", renewTime: "t", nope: 1 } }, false)).toEqual(["spec.nope"]);
  });
  it("Strict is a 400 naming each field; Warn prunes and warns", () => {
    let err: unknown;
    try {
      checkUnknownFields("v1", "Pod", pod(), "Strict");
    } catch (e) {
      err = e;
    }
    expect((err as ApiError).code).toBe(400);
    expect((err as ApiError).message).toBe(
      'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].imagex", unknown field "spec.bogus", unknown field "status.podIp", unknown field "status.conditions[0].extra"',
    );
    const p = pod();
    expect(checkUnknownFields("v1", "Pod", p, "Warn")).toHaveLength(4);
    expect(p.spec).toEqual({ containers: [{ name: "c", image: "i", resources: { limits: { cpu: "1" } } }] });
    expect(p.status).toEqual({ conditions: [{ type: "Ready", status: "True" }] });
  });
});

// A minimal protobuf writer for the tests.
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}
function field(num: number, value: Buffer | string | number): Buffer {
  if (typeof value === "number") return Buffer.concat([varint(num << 3), varint(value)]);
  const b = typeof value === "string" ? Buffer.from(value) : value;
  return Buffer.concat([varint((num << 3) | 2), varint(b.length), b]);
}
function envelope(apiVersion: string, kind: string, raw: Buffer): Buffer {
  return Buffer.concat([PROTOBUF_MAGIC, field(1, Buffer.concat([field(1, apiVersion), field(2, kind)])), field(2, raw)]);
}

describe("protobuf bodies", () => {
  it("decodes a ConfigMap as kubectl create configmap sends it", () => {
    const meta = Buffer.concat([field(1, "cm"), field(2, ""), field(11, Buffer.concat([field(1, "app"), field(2, "x")]))]);
    const raw = Buffer.concat([field(1, meta), field(2, Buffer.concat([field(1, "k"), field(2, "v")])), field(2, Buffer.concat([field(1, "k2"), field(2, "v2")]))]);
    expect(decodeProtobufBody(envelope("v1", "ConfigMap", raw))).toEqual({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", labels: { app: "x" } }, data: { k: "v", k2: "v2" } });
  });
  it("decodes a TokenRequest and a SelfSubjectAccessReview", () => {
    const spec = Buffer.concat([field(1, "aud"), field(3, Buffer.concat([field(1, "Pod"), field(2, "v1"), field(3, "p")])), field(4, 3600)]);
    expect(decodeProtobufBody(envelope("authentication.k8s.io/v1", "TokenRequest", Buffer.concat([field(1, Buffer.alloc(0)), field(2, spec)])))).toEqual({
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { audiences: ["aud"], boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "p" }, expirationSeconds: 3600 },
    });
    const ra = Buffer.concat([field(1, "ns"), field(2, "get"), field(5, "pods")]);
    expect(decodeProtobufBody(envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", field(2, field(1, ra))))).toMatchObject({
      spec: { resourceAttributes: { namespace: "ns", verb: "get", resource: "pods" } },
    });
  });
  it("answers 415 for kinds it cannot decode", () => {
    let err: unknown;
    try {
      decodeProtobufBody(envelope("apps/v1", "Deployment", Buffer.alloc(0)));
    } catch (e) {
      err = e;
    }
    expect((err as ApiError).code).toBe(415);
  });
});
