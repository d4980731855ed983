/**
 * gRPC probes (upstream's pkg/probe/grpc): grpc.health.v1.Health/Check with the probe's service name over
 * plaintext, one deadline (the probe's timeout) for the connection and the call, SERVING a success and
 * anything else a failure worded as upstream. The two messages are tiny, so they are encoded by hand here
 * rather than loaded from a .proto (nothing to ship beside the sources).
 */
import * as grpc from "@grpc/grpc-js";
import { formatMs } from "../../src-shared/go-duration.ts";
import { PROBE_USER_AGENT, joinHostPort, type ProbeOutcome } from "./probe.ts";

export const HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check";

/** grpc.health.v1.HealthCheckResponse.ServingStatus. */
export const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] as const;

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** HealthCheckRequest { string service = 1; } */
export function encodeHealthCheckRequest(service: string): Buffer {
  if (service === "") return Buffer.alloc(0);
  const bytes = Buffer.from(service, "utf8");
  return Buffer.concat([Buffer.from([0x0a]), varint(bytes.length), bytes]);
}

function readVarint(buf: Buffer, at: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  for (let i = at; i < buf.length; i++) {
    const b = buf[i] ?? 0;
    if (shift < 28) value |= (b & 0x7f) << shift;
    else value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return [value, i + 1];
  }
  throw new Error("truncated varint");
}

/** Walks a message's fields: varints as numbers, length-delimited fields as bytes; others skipped. */
function forEachField(buf: Buffer, visit: (field: number, value: number | Buffer) => void): void {
  let at = 0;
  while (at < buf.length) {
    const [key, next] = readVarint(buf, at);
    const wire = key & 7;
    if (wire === 0) {
      const [v, after] = readVarint(buf, next);
      visit(key >>> 3, v);
      at = after;
    } else if (wire === 2) {
      const [len, start] = readVarint(buf, next);
      visit(key >>> 3, buf.subarray(start, start + len));
      at = start + len;
    } else if (wire === 1) at = next + 8;
    else if (wire === 5) at = next + 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

/** HealthCheckRequest's service (for test servers). */
export function decodeHealthCheckRequest(buf: Buffer): string {
  let service = "";
  forEachField(buf, (field, value) => {
    if (field === 1 && Buffer.isBuffer(value)) service = value.toString("utf8");
  });
  return service;
}

/** HealthCheckResponse { ServingStatus status = 1; }: the status number (0 when absent). */
export function decodeHealthCheckResponse(buf: Buffer): number {
  let status = 0;
  forEachField(buf, (field, value) => {
    if (field === 1 && typeof value === "number") status = value;
  });
  return status;
}

export function encodeHealthCheckResponse(status: number): Buffer {
  return status === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x08]), varint(status)]);
}

/** Go's codes.Code names, for the "rpc error: code = X desc = Y" wording. */
const CODE_NAMES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

export interface GrpcProbeOptions {
  host: string;
  port: number;
  service: string;
  timeoutSeconds: number;
  signal?: AbortSignal;
}

export async function grpcProbe(o: GrpcProbeOptions): Promise<ProbeOutcome> {
  const addr = joinHostPort(o.host, o.port);
  const timeoutMs = o.timeoutSeconds * 1000;
  const timeout = formatMs(timeoutMs);
  const deadline = Date.now() + timeoutMs;
  const client = new grpc.Client(addr, grpc.credentials.createInsecure(), {
    "grpc.primary_user_agent": PROBE_USER_AGENT,
    // Probes connect straight from the node, never through a proxy from the environment.
    "grpc.enable_http_proxy": 0,
  });
  const onAbort = (): void => client.close();
  o.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    // upstream dials with WithBlock: no call until the connection is up, within the same deadline.
    const connected = await new Promise<boolean>((resolve) => client.waitForReady(deadline, (err) => resolve(!err)));
    if (o.signal?.aborted) throw o.signal.reason as Error;
    if (!connected) return { status: "failure", output: `timeout: failed to connect service ${JSON.stringify(addr)} within ${timeout}: context deadline exceeded` };
    const call = await new Promise<{ err: grpc.ServiceError | null; status?: number }>((resolve) => {
      client.makeUnaryRequest(
        HEALTH_CHECK_METHOD,
        (service: string) => encodeHealthCheckRequest(service),
        (buf: Buffer) => decodeHealthCheckResponse(buf),
        o.service,
        new grpc.Metadata(),
        { deadline },
        (err, status) => resolve(err ? { err } : { err: null, ...(status === undefined ? {} : { status }) }),
      );
    });
    if (o.signal?.aborted) throw o.signal.reason as Error;
    if (call.err) {
      const { code, details } = call.err;
      if (code === grpc.status.UNIMPLEMENTED)
        return { status: "failure", output: `error: this server does not implement the grpc health protocol (grpc.health.v1.Health): ${details}` };
      if (code === grpc.status.DEADLINE_EXCEEDED) return { status: "failure", output: `timeout: health rpc did not complete within ${timeout}` };
      return { status: "failure", output: `error: health rpc probe failed: rpc error: code = ${CODE_NAMES[code] ?? `Code(${code})`} desc = ${details}` };
    }
    const status = call.status ?? 0;
    if (status !== 1) return { status: "failure", output: `service unhealthy (responded with ${JSON.stringify(SERVING_STATUS[status] ?? String(status))})` };
    return { status: "success", output: "service healthy" };
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    client.close();
  }
}
