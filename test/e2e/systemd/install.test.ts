/**
 * The installation path a worker takes: systemd/install.sh installs the units pointing at the checkout and the
 * CNI launcher; the installed kubelet then runs from the compiled dist/ on the pinned Node. (`npm test` builds
 * dist/ before the suites, so the test skips install.sh's own build rather than rewrite dist/ under the
 * suites running beside it.)
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../../../src-shared/exec.ts";

const REPO = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
let dir = "";

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("systemd/install.sh", () => {
  it("installs units that run the compiled kubelet and kube-proxy, and the CNI launcher", async () => {
    dir = await mkdtemp(join(tmpdir(), "deckhand-install-"));
    const res = await run("bash", [join(REPO, "systemd", "install.sh"), "--no-build", "--unit-dir", join(dir, "units"), "--cni-bin-dir", join(dir, "cni-bin")], { allowFailure: true, timeoutMs: 300_000 });
    expect(res.code, res.stderr).toBe(0);
    const unit = await readFile(join(dir, "units", "kubelet.service"), "utf8");
    expect(unit).toContain(`ExecStart=${REPO}/bin/kubelet --config=/etc/kubernetes/kubelet.yaml --kubeconfig=/etc/kubernetes/kubelet.kubeconfig`);
    // The kubelet speaks sd_notify (src-shared/sd-notify.ts) from a helper child: systemd must accept that.
    expect(unit.split("\n")).toEqual(expect.arrayContaining(["Type=notify", "NotifyAccess=all", "TimeoutStartSec=infinity", expect.stringMatching(/^WatchdogSec=\d+s$/) as string]));
    // systemd's own parser accepts the installed units (it runs without a running systemd).
    const verify = await run("systemd-analyze", ["verify", "--man=no", join(dir, "units", "kubelet.service"), join(dir, "units", "kube-proxy.service")], { allowFailure: true });
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stderr).toBe("");
    expect(await readFile(join(dir, "units", "kube-proxy.service"), "utf8")).toContain(`ExecStart=${REPO}/bin/kube-proxy`);
    expect(await readlink(join(dir, "cni-bin", "deckhand-bridge"))).toBe(join(REPO, "bin", "deckhand-bridge"));
    expect(await readlink(join(dir, "cni-bin", "portmap"))).toBe("/usr/lib/cni/portmap");
    expect(existsSync(join(REPO, "dist", "kubelet", "main.js"))).toBe(true);
    expect(existsSync(join(REPO, "dist", "kubelet", "cri", "api.proto"))).toBe(true);

    const help = await run(join(REPO, "bin", "kubelet"), ["--help"]);
    expect(help.stdout).toMatch(/^Usage: kubelet/);
    const bad = await run(join(REPO, "bin", "kubelet"), ["--config", join(dir, "missing.yaml")], { allowFailure: true });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("missing.yaml");
    const badFlag = await run(join(REPO, "bin", "kubelet"), ["--max-pods=-3"], { allowFailure: true });
    expect(badFlag.code).toBe(1);
    expect(badFlag.stderr).toContain("maxPods");
  }, 300_000);
});
