import type { V1Pod } from "@kubernetes/client-node";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { etcHostsMount, managedHostsContent, nodeHostsContent } from "../../../../kubelet/volumes/etc-hosts.ts";

const pod = (spec: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod => ({ metadata: { name: "web-0", namespace: "prod", uid: "u1" }, spec: { containers: [{ name: "main" }], ...spec } });

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "deckhand-hosts-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("the pod's /etc/hosts", () => {
  it("is upstream's managed file: localhost lines, the pod's IP with its FQDN under a subdomain, then the aliases", () => {
    expect(managedHostsContent(pod({ hostname: "db", subdomain: "db-svc", hostAliases: [{ ip: "10.1.2.3", hostnames: ["foo.local", "bar.local"] }] }), ["10.244.0.7"], "cluster.local")).toBe(
      [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
        "10.244.0.7\tdb.db-svc.prod.svc.cluster.local\tdb",
        "",
        "# Entries added by HostAliases.",
        "10.1.2.3\tfoo.local\tbar.local",
        "",
      ].join("\n"),
    );
    expect(managedHostsContent(pod(), ["10.244.0.7"], "cluster.local").split("\n").slice(-2)).toEqual(["10.244.0.7\tweb-0", ""]);
    expect(nodeHostsContent("127.0.0.1 localhost\n", pod({ hostAliases: [{ ip: "1.1.1.1", hostnames: ["one"] }] }))).toBe("127.0.0.1 localhost\n\n# Entries added by HostAliases.\n1.1.1.1\tone\n");
  });

  it("is written under the pod's folder and mounted, unless the container mounts its own or the pod has no IP yet", async () => {
    const p = pod();
    const m = await etcHostsMount(root, p, { name: "main" }, ["10.244.0.7"], "cluster.local");
    expect(m).toEqual({ container_path: "/etc/hosts", host_path: join(root, "pods", "u1", "etc-hosts"), readonly: false, propagation: "PROPAGATION_PRIVATE", selinux_relabel: true });
    expect(await readFile(join(root, "pods", "u1", "etc-hosts"), "utf8")).toContain("10.244.0.7\tweb-0");
    expect(await etcHostsMount(root, p, { name: "main", volumeMounts: [{ name: "h", mountPath: "/etc/hosts" }] }, ["10.244.0.7"], "cluster.local")).toBeUndefined();
    expect(await etcHostsMount(root, p, { name: "main" }, [], "cluster.local")).toBeUndefined();
    await writeFile(join(root, "node-hosts"), "192.168.1.1 node\n");
    await etcHostsMount(root, pod({ hostNetwork: true }), { name: "main" }, [], "cluster.local", join(root, "node-hosts"));
    expect(await readFile(join(root, "pods", "u1", "etc-hosts"), "utf8")).toBe("192.168.1.1 node\n");
  });
});
