/**
 * What every probe handler shares (upstream's pkg/probe): the handler result, the container port a probe
 * names, the User-Agent probes send, and Go's wording of dial errors (users grep events for them).
 */
import type { V1Container } from "@kubernetes/client-node";
import { DeckhandError } from "../../src-shared/errors.ts";
import { KUBELET_VERSION } from "../node/node-status.ts";

/** upstream's probe.Result: a warning is a success with something to say (an HTTP redirect not followed). */
export type ProbeStatus = "success" | "warning" | "failure" | "unknown";

/** What a handler returns; a handler that cannot run the probe at all throws instead (upstream's `err`). */
export interface ProbeOutcome {
  status: ProbeStatus;
  output: string;
}

/** Output kept from a command or a response body, as upstream's 10 KiB limits. */
export const MAX_PROBE_OUTPUT = 10 * 1024;

function majorMinor(version: string): string {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  return m ? `${m[1]}.${m[2]}` : version;
}

/** `kube-probe/<major>.<minor>`, upstream's default User-Agent for HTTP and gRPC probes. */
export const PROBE_USER_AGENT = `kube-probe/${majorMinor(KUBELET_VERSION)}`;

/** `kube-lifecycle/<major>.<minor>`, upstream's User-Agent for httpGet lifecycle hooks (same HTTP code). */
export const LIFECYCLE_USER_AGENT = `kube-lifecycle/${majorMinor(KUBELET_VERSION)}`;

/**
 * upstream's probe.ResolveContainerPort: a number, or a port name of the container (then a number written as a
 * string); 1-65535.
 */
export function resolveContainerPort(port: number | string | undefined, container: V1Container): number {
  let n: number;
  if (typeof port === "number") n = port;
  else if (typeof port === "string") {
    const named = container.ports?.find((p) => p.name === port);
    if (named) n = named.containerPort;
    else if (/^[+-]?\d+$/.test(port)) n = Number(port);
    else throw new DeckhandError("InvalidArgument", `strconv.Atoi: parsing ${JSON.stringify(port)}: invalid syntax`, { details: { port } });
  } else throw new DeckhandError("InvalidArgument", `intOrString had no kind: ${String(port)}`);
  if (Number.isInteger(n) && n > 0 && n < 65536) return n;
  throw new DeckhandError("InvalidArgument", `invalid port number: ${n}`, { details: { port } });
}

/** Go's net.JoinHostPort: IPv6 literals in brackets. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

const SYSCALL_WORDS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset by peer",
  EHOSTUNREACH: "no route to host",
  ENETUNREACH: "network is unreachable",
  EADDRNOTAVAIL: "cannot assign requested address",
  ETIMEDOUT: "connection timed out",
};

/** A failed connect as Go words it: `dial tcp 10.0.0.5:80: connect: connection refused`. */
export function dialErrorText(address: string, err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  const word = typeof code === "string" ? SYSCALL_WORDS[code] : undefined;
  if (word) return `dial tcp ${address}: connect: ${word}`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `dial tcp: lookup ${address.replace(/:\d+$/, "")}: no such host`;
  return `dial tcp ${address}: ${err instanceof Error ? err.message : String(err)}`;
}

/** Go's wording of a dial that ran out of time. */
export function dialTimeoutText(address: string): string {
  return `dial tcp ${address}: i/o timeout`;
}
