/**
 * `kubectl proxy` on a free loopback port, as an operator runs it to open the kubelet's paths (and, with issue
 * 16's node page, `/api/v1/nodes/<node>/proxy/ui/`) in a browser. Resolves once it serves, with its base URL;
 * the caller stops the child.
 */
import { spawn, type ChildProcess } from "node:child_process";

export async function startKubectlProxy(kubeconfig: string, timeoutMs = 15_000): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn("kubectl", ["--kubeconfig", kubeconfig, "proxy", "--address", "127.0.0.1", "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => (err += d));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`kubectl proxy did not start in ${timeoutMs} ms: ${err.trim()}`)), timeoutMs);
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (d: string) => {
        out += d;
        // "Starting to serve on 127.0.0.1:41234"
        const m = /serve on ([\d.]+):(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(`http://${m[1] ?? ""}:${m[2] ?? ""}`);
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`kubectl proxy exited with ${code ?? "a signal"}: ${err.trim()}`));
      });
    });
    return { child, url };
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
}
