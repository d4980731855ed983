/**
 * HTTP(S) GET probes (upstream's pkg/probe/http): the request built from the probe's httpGet (host defaulting
 * to the pod IP, named ports, headers with upstream's User-Agent and Accept defaults, a Host header override),
 * TLS without verification, no keep-alive, no proxy, redirects followed only to the same host (a redirect
 * elsewhere ends the probe as a success with a warning), at most 10 KiB of body read, 200-399 a success. The
 * timeout covers the whole exchange, as Go's Client.Timeout.
 */
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import type { V1Container, V1HTTPGetAction } from "@kubernetes/client-node";
import { DeckhandError } from "../../src-shared/errors.ts";
import { formatMs } from "../../src-shared/go-duration.ts";
import { MAX_PROBE_OUTPUT, PROBE_USER_AGENT, dialErrorText, joinHostPort, resolveContainerPort, type ProbeOutcome } from "./probe.ts";

/** A probe request: the URL and the headers in order (names as written; duplicates kept). */
export interface HttpProbeRequest {
  url: URL;
  /** host:port as the probe names them (the Host header unless one is given). */
  hostHeader: string;
  headers: [string, string][];
}

const MAX_REDIRECTS = 10;

function headerValue(headers: readonly [string, string][], name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/**
 * upstream's NewRequestForHTTPGetAction. Throws for a port it cannot resolve. Lifecycle hooks send their own
 * User-Agent (`kube-lifecycle/<version>`).
 */
export function newRequestForHttpGet(httpGet: V1HTTPGetAction, container: V1Container, podIP: string, userAgent = PROBE_USER_AGENT): HttpProbeRequest {
  const scheme = (httpGet.scheme ?? "").toLowerCase() || "http";
  const host = httpGet.host || podIP;
  const port = resolveContainerPort(httpGet.port, container);
  const path = httpGet.path ?? "";
  let url: URL;
  try {
    url = new URL(path.startsWith("/") || path === "" ? path : `/${path}`, `${scheme}://${joinHostPort(host, port)}`);
  } catch (err) {
    throw new DeckhandError("InvalidArgument", `parse probe URL: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const headers: [string, string][] = (httpGet.httpHeaders ?? []).map((h) => [h.name, h.value]);
  if (headerValue(headers, "User-Agent") === undefined) headers.push(["User-Agent", userAgent]);
  const accept = headerValue(headers, "Accept");
  // An Accept header given empty is removed; none given accepts everything.
  if (accept === undefined) headers.push(["Accept", "*/*"]);
  const hostHeader = joinHostPort(host, port);
  if (accept === "") return { url, hostHeader, headers: headers.filter(([n]) => n.toLowerCase() !== "accept") };
  return { url, hostHeader, headers };
}

interface Exchange {
  status: number;
  location: string | undefined;
  body: string;
}

class ProbeTimeout extends Error {}

/** One GET: resolves with the status and at most MAX_PROBE_OUTPUT bytes of body; rejects on abort or error. */
function get(url: URL, hostHeader: string, headers: [string, string][], signal: AbortSignal): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === "https:";
    const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const options: https.RequestOptions = {
      method: "GET",
      protocol: url.protocol,
      host: hostname,
      port: url.port || (secure ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      // No pooling (upstream's DisableKeepAlives); a fresh connection from the node's network each time.
      agent: false,
      // Raw headers (order and duplicates kept) get no Host from Node: send the URL's unless the probe set one.
      headers: [...(headerValue(headers, "Host") === undefined ? [["Host", hostHeader]] : []), ...headers].flat(),
      signal,
      ...(secure ? { rejectUnauthorized: false, ...(isIP(hostname) ? {} : { servername: hostname }) } : {}),
    };
    const req = (secure ? https : http).request(options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = (): void => {
        res.removeAllListeners("data");
        resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: Buffer.concat(chunks).subarray(0, MAX_PROBE_OUTPUT).toString("utf8") });
        res.destroy();
      };
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        // The rest of a large body is not read: truncation is not an error (upstream's ReadAtMost).
        if (size >= MAX_PROBE_OUTPUT) done();
      });
      res.on("end", done);
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** Go's url.Error wording: `Get "http://10.0.0.5:80/healthz": dial tcp 10.0.0.5:80: connect: connection refused`. */
function requestError(url: URL, err: unknown, timedOut: boolean): string {
  const target = `Get ${JSON.stringify(url.href)}`;
  if (timedOut) return `${target}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)`;
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    return `${target}: ${dialErrorText(joinHostPort(url.hostname.replace(/^\[(.*)\]$/, "$1"), port), err)}`;
  }
  return `${target}: ${err instanceof Error ? err.message : String(err)}`;
}

export interface HttpProbeOptions {
  timeoutSeconds: number;
  signal?: AbortSignal;
}

/**
 * What a GET with the prober's redirect policy came to: the last response, or why there was none (with the
 * system error code when there is one: `EPROTO` for a TLS exchange that failed).
 */
export type HttpGetResult = { ok: true; status: number; body: string } | { ok: false; error: string; code?: string };

/**
 * A GET with the client upstream's prober and lifecycle hooks share (RedirectChecker(false)): redirects to the
 * same host name followed, 10 requests at most, a redirect elsewhere returned as the response. `timeoutMs`
 * (none when omitted, as the hooks' client) covers the whole exchange. Rejects only when `signal` aborts.
 */
export async function httpGetWithRedirects(request: HttpProbeRequest, o: { timeoutMs?: number; signal?: AbortSignal }): Promise<HttpGetResult> {
  const deadline = new AbortController();
  let timedOut = false;
  const timeoutMs = o.timeoutMs;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          deadline.abort(new ProbeTimeout(`timeout after ${formatMs(timeoutMs)}`));
        }, timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, deadline.signal]) : deadline.signal;
  const first = request.url;
  let url = first;
  let headers = request.headers;
  try {
    for (let redirects = 0; ; redirects++) {
      let res: Exchange;
      try {
        // Go writes the URL's host:port as built (the port even when it is the scheme's default).
        res = await get(url, redirects === 0 ? request.hostHeader : url.host, headers, signal);
      } catch (err) {
        if (o.signal?.aborted) throw err;
        const code = (err as { code?: unknown } | undefined)?.code;
        return { ok: false, error: requestError(url, err, timedOut), ...(!timedOut && typeof code === "string" ? { code } : {}) };
      }
      const follow = [301, 302, 303, 307, 308].includes(res.status) && res.location;
      if (follow && res.location) {
        let next: URL;
        try {
          next = new URL(res.location, url);
        } catch {
          return { ok: false, error: `Get ${JSON.stringify(url.href)}: failed to parse Location header ${JSON.stringify(res.location)}` };
        }
        // Only redirects to the same host name are followed: the probe must not be turned to another
        // machine. The redirect response itself then decides (a warning).
        if (next.hostname === first.hostname) {
          // Go's client stops after 10 requests in a row.
          if (redirects + 1 >= MAX_REDIRECTS) return { ok: false, error: `Get ${JSON.stringify(next.href)}: stopped after ${MAX_REDIRECTS} redirects` };
          // As Go's client: a custom Host survives only a relative redirect; the Referer names where we were.
          const relative = !/^[a-z][a-z0-9+.-]*:/i.test(res.location);
          headers = headers.filter(([n]) => n.toLowerCase() !== "referer" && (relative || n.toLowerCase() !== "host"));
          if (!(url.protocol === "https:" && next.protocol === "http:")) headers.push(["Referer", url.href]);
          url = next;
          continue;
        }
      }
      return { ok: true, status: res.status, body: res.body };
    }
  } finally {
    clearTimeout(timer);
  }
}

/** upstream's DoHTTPProbe with the prober's client (no redirects to other hosts, 10 redirects at most). */
export async function httpProbe(request: HttpProbeRequest, o: HttpProbeOptions): Promise<ProbeOutcome> {
  const res = await httpGetWithRedirects(request, { timeoutMs: o.timeoutSeconds * 1000, ...(o.signal ? { signal: o.signal } : {}) });
  if (!res.ok) return { status: "failure", output: res.error };
  if (res.status >= 200 && res.status < 400) {
    if (res.status >= 300) return { status: "warning", output: `Probe terminated redirects, Response body: ${res.body}` };
    return { status: "success", output: res.body };
  }
  // The body is not shown to users (upstream issue 99425).
  return { status: "failure", output: `HTTP probe failed with statuscode: ${res.status}` };
}
