/**
 * Where a pod's volumes live on the node, as upstream lays them out so other tools and people find them:
 * `<root-dir>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>` (hostPath volumes are the host's path itself).
 * Pure.
 */
import type { V1Pod, V1Volume } from "@kubernetes/client-node";
import { join } from "node:path";
import type { PodVolume } from "./container-mounts.ts";

/** The plugins this kubelet implements, by the volume source field that selects them. */
export const PLUGIN_DIRS = {
  emptyDir: "kubernetes.io~empty-dir",
  configMap: "kubernetes.io~configmap",
  secret: "kubernetes.io~secret",
  downwardAPI: "kubernetes.io~downward-api",
  projected: "kubernetes.io~projected",
} as const;

export type PluginName = keyof typeof PLUGIN_DIRS | "hostPath";
export const PLUGINS: readonly PluginName[] = ["emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected"];

export function podsDir(rootDir: string): string {
  return join(rootDir, "pods");
}

export function podDir(rootDir: string, uid: string): string {
  if (uid === "" || uid.includes("/") || uid === "." || uid === "..") throw new Error(`invalid pod uid ${JSON.stringify(uid)}`);
  return join(podsDir(rootDir), uid);
}

export function podVolumesDir(rootDir: string, uid: string): string {
  return join(podDir(rootDir, uid), "volumes");
}

/** Where checked subPaths are pinned by bind mounts, as upstream: `<pod>/volume-subpaths/<volume>/<container>/<index>`. */
export function podSubPathsDir(rootDir: string, uid: string): string {
  return join(podDir(rootDir, uid), "volume-subpaths");
}

/** The source field of a volume (its plugin), or undefined when it has none this kubelet knows. */
export function pluginOf(v: V1Volume): PluginName | undefined {
  const r = v as unknown as Record<string, unknown>;
  return PLUGINS.find((p) => r[p] !== undefined && r[p] !== null);
}

/** The API-data volumes: always mounted read-only, as upstream since 1.10. */
const READ_ONLY: ReadonlySet<PluginName> = new Set(["configMap", "secret", "downwardAPI", "projected"]);

/** Every volume of the pod as it is (or will be) on the node. */
export function podVolumes(rootDir: string, pod: V1Pod): Map<string, PodVolume> {
  const uid = pod.metadata?.uid ?? "";
  const out = new Map<string, PodVolume>();
  for (const v of pod.spec?.volumes ?? []) {
    const plugin = pluginOf(v);
    if (plugin === undefined) continue;
    const path = plugin === "hostPath" ? (v.hostPath?.path ?? "") : join(podVolumesDir(rootDir, uid), PLUGIN_DIRS[plugin], v.name);
    out.set(v.name, { plugin, path, readOnly: READ_ONLY.has(plugin) });
  }
  return out;
}
