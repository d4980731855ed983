/** What the kubelet configuration tests share: an in-memory file system, a loader, the error of a call. */
import { expect } from "vitest";
import { DeckhandError } from "../../../../src-shared/errors.ts";
import { loadKubeletConfig, type KubeletConfig } from "../../../../kubelet/config/kubelet-config.ts";

export const CONFIG = "/etc/kubernetes/kubelet.yaml";
export const HEADER = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

/** A readFile over an in-memory set of files. */
export function files(map: Record<string, string>): (path: string) => string {
  return (path) => {
    const text = map[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: "ENOENT" });
    return text;
  };
}

export const env = { hostname: () => "node-a", cwd: "/work" };

/** Loads a config whose file (at CONFIG) is HEADER + body, with extra flags. */
export function load(body: string, flags: string[] = []): KubeletConfig {
  const c = loadKubeletConfig(["--config", CONFIG, ...flags], files({ [CONFIG]: HEADER + body }), env);
  if (c === "help") throw new Error("unexpected help");
  return c;
}

/** The InvalidConfig error thrown by fn. */
export function configError(fn: () => unknown): DeckhandError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DeckhandError);
    expect((err as DeckhandError).code).toBe("InvalidConfig");
    return err as DeckhandError;
  }
  throw new Error("expected an InvalidConfig error");
}

export function errorsOf(err: DeckhandError): string[] {
  return err.details["errors"] as string[];
}
