/**
 * The kubelet-managed /etc/hosts of a pod (upstream's makeHostsMount, pkg/kubelet/kubelet_pods.go): written to
 * `<root-dir>/pods/<uid>/etc-hosts` once the pod has an IP and bind-mounted at /etc/hosts into every container
 * that does not mount something there itself. A pod on the pod network gets upstream's managed content (the
 * localhost lines, its IPs with its FQDN when `subdomain` is set and its hostname, then `hostAliases`); a
 * host-network pod gets the node's own /etc/hosts followed by its `hostAliases`.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { mkdir, readFile, writeFile, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Input, Mount } from "../cri/types.ts";
import { podHostname } from "../runtime/sandbox-config.ts";
import { podDir } from "./layout.ts";

const MANAGED_HEADER = "# Kubernetes-managed hosts file.\n";
const LOCALHOST = [
  "127.0.0.1\tlocalhost",
  "::1\tlocalhost ip6-localhost ip6-loopback",
  "fe00::0\tip6-localnet",
  "fe00::0\tip6-mcastprefix",
  "fe00::1\tip6-allnodes",
  "fe00::2\tip6-allrouters",
].join("\n");

function aliasesSection(pod: V1Pod): string {
  const aliases = pod.spec?.hostAliases ?? [];
  if (aliases.length === 0) return "";
  return "\n# Entries added by HostAliases.\n" + aliases.map((a) => `${a.ip}\t${(a.hostnames ?? []).join("\t")}`).join("\n") + "\n";
}

/** The managed content for a pod on the pod network. Pure. */
export function managedHostsContent(pod: V1Pod, podIPs: readonly string[], clusterDomain: string): string {
  const hostname = podHostname(pod);
  const sub = pod.spec?.subdomain;
  const domain = sub ? `${sub}.${pod.metadata?.namespace ?? ""}.svc.${clusterDomain}` : "";
  const own = podIPs.map((ip) => (domain ? `${ip}\t${hostname}.${domain}\t${hostname}` : `${ip}\t${hostname}`)).join("\n");
  return `${MANAGED_HEADER}${LOCALHOST}\n${own}\n${aliasesSection(pod)}`;
}

/** A host-network pod's: the node's file, then the pod's aliases. Pure. */
export function nodeHostsContent(nodeHosts: string, pod: V1Pod): string {
  return nodeHosts + aliasesSection(pod);
}

/** Whether the container mounts something at /etc/hosts itself (then the kubelet's file is not mounted). */
export function mountsEtcHosts(container: V1Container): boolean {
  return (container.volumeMounts ?? []).some((m) => m.mountPath.replace(/\/+$/, "") === "/etc/hosts");
}

/**
 * Writes the pod's hosts file (atomically, by rename) and returns the mount for `container`, or undefined
 * when there is nothing to mount (no pod IP yet, or the container brings its own /etc/hosts).
 */
export async function etcHostsMount(rootDir: string, pod: V1Pod, container: V1Container, podIPs: readonly string[], clusterDomain: string, nodeHostsPath = "/etc/hosts"): Promise<Input<Mount> | undefined> {
  if (mountsEtcHosts(container)) return undefined;
  const hostNetwork = pod.spec?.hostNetwork === true;
  if (!hostNetwork && podIPs.length === 0) return undefined;
  const content = hostNetwork ? nodeHostsContent(await readFile(nodeHostsPath, "utf8").catch(() => ""), pod) : managedHostsContent(pod, podIPs, clusterDomain);
  const path = join(podDir(rootDir, pod.metadata?.uid ?? ""), "etc-hosts");
  await mkdir(dirname(path), { recursive: true });
  const current = await readFile(path, "utf8").catch(() => undefined);
  if (current !== content) {
    await writeFile(`${path}.tmp`, content, { mode: 0o644 });
    await rename(`${path}.tmp`, path);
  }
  return { container_path: "/etc/hosts", host_path: path, readonly: false, propagation: "PROPAGATION_PRIVATE", selinux_relabel: true };
}
