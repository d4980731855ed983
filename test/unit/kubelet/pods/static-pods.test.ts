/**
 * The static pod source's first full list: every manifest is delivered, then `synced` once (the kubelet
 * admits that first list in creation order and only then calls the source synced); later scans deliver only
 * changes and do not call it again.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../../../src-shared/log.ts";
import { StaticPodSource, staticPodFromManifest } from "../../../../kubelet/pods/static-pods.ts";

const manifest = (name: string): string => JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name }, spec: { containers: [{ name: "c", image: "busybox" }] } });

let dir = "";
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("StaticPodSource", () => {
  it("delivers the first scan's manifests, then synced once; later scans deliver changes only", async () => {
    dir = await mkdtemp(join(tmpdir(), "deckhand-static-"));
    await writeFile(join(dir, "a.json"), manifest("a"));
    await writeFile(join(dir, "b.json"), manifest("b"));
    const source = new StaticPodSource({ path: dir, nodeName: "n1", logger: silentLogger() });
    const seen: string[] = [];
    source.on({ updated: (p: V1Pod) => seen.push(`updated ${p.metadata?.name ?? ""}`), removed: (p: V1Pod) => seen.push(`removed ${p.metadata?.name ?? ""}`), synced: () => seen.push("synced") });
    await source.scan();
    expect(seen).toEqual(["updated a-n1", "updated b-n1", "synced"]);
    await rm(join(dir, "a.json"));
    await source.scan();
    expect(seen.slice(3)).toEqual(["removed a-n1"]);
    expect(source.synced).toBe(true);
  });

  it("reads a YAML manifest as upstream does (YAML 1.1 into JSON): a date stays a string, a duplicate field is refused", () => {
    const yaml = ["apiVersion: v1", "kind: Pod", "metadata:", "  name: web", "  annotations:", "    released: 2026-01-02", "spec:", "  containers:", "  - name: c", "    image: busybox"].join("\n");
    const pod = staticPodFromManifest(yaml, "/etc/kubernetes/manifests/web.yaml", "n1");
    expect(pod.metadata?.annotations?.["released"]).toBe("2026-01-02");
    expect(pod.metadata?.name).toBe("web-n1");
    expect(() => staticPodFromManifest(`${yaml}\nkind: Pod`, "/m/web.yaml", "n1")).toThrow(/\/m\/web\.yaml: not YAML or JSON: duplicate field "kind"/);
  });
});
