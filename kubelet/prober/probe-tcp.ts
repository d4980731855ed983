/**
 * TCP socket probes (upstream's pkg/probe/tcp): a connection opened within the timeout is a success, and is
 * closed at once; a refused or timed-out connect is a failure with Go's wording of the error.
 */
import net from "node:net";
import { dialErrorText, dialTimeoutText, joinHostPort, type ProbeOutcome } from "./probe.ts";

export interface TcpProbeOptions {
  host: string;
  port: number;
  timeoutSeconds: number;
  signal?: AbortSignal;
}

export function tcpProbe(o: TcpProbeOptions): Promise<ProbeOutcome> {
  const address = joinHostPort(o.host, o.port);
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(o.signal.reason as Error);
      return;
    }
    const socket = net.connect({ host: o.host, port: o.port });
    const finish = (outcome: ProbeOutcome | undefined, err?: Error): void => {
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      socket.removeAllListeners();
      socket.on("error", () => {});
      socket.destroy();
      if (outcome) resolve(outcome);
      else reject(err ?? new Error("aborted"));
    };
    const onAbort = (): void => finish(undefined, o.signal?.reason as Error);
    const timer = setTimeout(() => finish({ status: "failure", output: dialTimeoutText(address) }), o.timeoutSeconds * 1000);
    o.signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => finish({ status: "success", output: "" }));
    socket.once("error", (err) => finish({ status: "failure", output: dialErrorText(address, err) }));
  });
}
