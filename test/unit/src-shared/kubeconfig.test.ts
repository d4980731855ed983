import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadKubeconfig, parseKubeconfig } from "../../../src-shared/kube/kubeconfig.ts";
import { DeckhandError } from "../../../src-shared/errors.ts";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "deckhand-kubeconfig-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const b64 = (s: string): string => Buffer.from(s).toString("base64");
const doc = (user: string, cluster = `server: https://127.0.0.1:6443\n    certificate-authority-data: ${b64("CA")}`): string => `apiVersion: v1
kind: Config
current-context: main
contexts:
- name: main
  context: {cluster: c, user: u}
- name: other
  context: {cluster: c, user: nobody}
clusters:
- name: c
  cluster:
    ${cluster}
users:
- name: u
  user:
${user}
`;

describe("kubeconfig", () => {
  it("reads inline certificates and a static token", async () => {
    const c = parseKubeconfig(doc(`    client-certificate-data: ${b64("CERT")}\n    client-key-data: ${b64("KEY")}\n    token: abc`), "/x/kubeconfig");
    expect(c.server.href).toBe("https://127.0.0.1:6443/");
    expect([c.ca?.toString(), c.cert?.toString(), c.key?.toString()]).toEqual(["CA", "CERT", "KEY"]);
    expect(await c.token()).toBe("abc");
    expect(c.context).toBe("main");
  });

  it("reads files relative to the kubeconfig, and re-reads a token file once a minute (client-go's cache)", async () => {
    await writeFile(join(dir, "ca.crt"), "FILECA");
    await writeFile(join(dir, "token"), "t1\n");
    const path = join(dir, "kubeconfig");
    await writeFile(path, doc("    tokenFile: token", "server: https://10.0.0.1\n    certificate-authority: ca.crt"));
    const c = loadKubeconfig(path);
    expect(c.ca?.toString()).toBe("FILECA");
    expect(await c.token()).toBe("t1");
    await writeFile(join(dir, "token"), "t2\n");
    expect(await c.token()).toBe("t1");
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 61_000);
      expect(await c.token()).toBe("t2");
    } finally {
      vi.useRealTimers();
    }
  });

  it("runs an exec credential plugin and caches its token until it expires", async () => {
    const plugin = join(dir, "plugin.sh");
    await writeFile(join(dir, "count"), "");
    await writeFile(plugin, `#!/bin/sh\necho x >> ${join(dir, "count")}\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec","expirationTimestamp":"2999-01-01T00:00:00Z"}}'\n`);
    await chmod(plugin, 0o755);
    const c = parseKubeconfig(doc(`    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ${plugin}`), join(dir, "kubeconfig"));
    expect(await c.token()).toBe("from-exec");
    expect(await c.token()).toBe("from-exec");
    const { readFile } = await import("node:fs/promises");
    expect((await readFile(join(dir, "count"), "utf8")).trim().split("\n")).toHaveLength(1);
  });

  it.each([
    ["not: [yaml", /not YAML or JSON/],
    ["current-context: nowhere\ncontexts: []", /current-context "nowhere" is not among contexts/],
    [doc("    token: x", "server: ''"), /server is empty/],
    [doc("    client-certificate: /no/such/file"), /client-certificate: cannot read \/no\/such\/file/],
  ])("says what is wrong with %j", (text, message) => {
    expect(() => parseKubeconfig(text, "/etc/kubernetes/kubelet.kubeconfig")).toThrow(message);
    expect(() => parseKubeconfig(text, "/etc/kubernetes/kubelet.kubeconfig")).toThrow(DeckhandError);
  });
});
