/**
 * The nftables runner and syncer against a fake `nft` (an Exec that records transactions): start-up refusal when
 * nft or the kernel cannot do the mode, stale chains deleted by a later sync, failed transactions.
 */
import { describe, expect, it } from "vitest";
import { DeckhandError, isDeckhandError } from "../../../../src-shared/errors.ts";
import { CommandError, type RunOptions, type RunResult } from "../../../../src-shared/exec.ts";
import { silentLogger } from "../../../../src-shared/log.ts";
import type { Exec } from "../../../../proxy/iptables.ts";
import { NftRunner, parseKernelRelease, parseNftVersion } from "../../../../proxy/nftables/nft.ts";
import { NftablesSyncer } from "../../../../proxy/nftables/syncer.ts";
import { FakeProxier, makeService, makeSlice } from "../helpers.ts";

const ok = (stdout = ""): RunResult => ({ stdout, stderr: "", code: 0, signal: null });

/** A fake nft: records `-f` inputs, answers listings, fails transactions while `failing` is set. */
class FakeNft {
  readonly transactions: string[] = [];
  failing = false;
  version = "nftables v1.0.6 (Lester Gooch #5)";
  missing = false;
  readonly exec: Exec = (file: string, args: readonly string[], options?: RunOptions) => {
    if (file !== "nft") throw new Error(`unexpected ${file}`);
    if (this.missing) return Promise.reject(new DeckhandError("NotFound", "nft: program not found"));
    if (args[0] === "--version") return Promise.resolve(ok(this.version));
    if (args.includes("list")) return Promise.resolve(ok(""));
    const input = String(options?.input ?? "");
    if (args[0] === "--check") return Promise.resolve(ok());
    if (this.failing) {
      const r = { stdout: "", stderr: "/dev/stdin:3:1-10: Error: Could not process rule: No such file or directory", code: 1, signal: null };
      return Promise.reject(new CommandError("nft", r));
    }
    this.transactions.push(input);
    return Promise.resolve(ok());
  };
}

describe("nft runner", () => {
  it("parses versions", () => {
    expect(parseNftVersion("nftables v1.0.6 (Lester Gooch #5)")).toEqual([1, 0, 6]);
    expect(parseKernelRelease("6.18.0-1-amd64")).toEqual([6, 18, 0]);
  });

  it("refuses the mode with a clear error when nft or the kernel cannot do it", async () => {
    const f = new FakeNft();
    const runner = new NftRunner({ family: "ip", exec: f.exec });
    await expect(runner.checkSupported("6.18.0")).resolves.toBeUndefined();
    await expect(runner.checkSupported("5.10.0-21-amd64")).rejects.toThrow(/mode nftables cannot run here: kernel 5\.10\.0-21-amd64 is older than 5\.13\.0/);
    f.version = "nftables v0.9.8 (E.D.S.)";
    await expect(runner.checkSupported("6.18.0")).rejects.toThrow(/nft 0\.9\.8 is older than 1\.0\.1/);
    f.missing = true;
    const err: unknown = await runner.checkSupported("6.18.0").catch((e: unknown) => e);
    expect(isDeckhandError(err, "FailedPrecondition")).toBe(true);
    expect(String(err)).toMatch(/the nft command is not installed/);
  });

  it("names the failing line of a transaction", async () => {
    const f = new FakeNft();
    f.failing = true;
    const err: unknown = await new NftRunner({ family: "ip", exec: f.exec }).run("a\nb\nc\nd\n").catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "NftError", line: 3 });
  });
});

describe("nftables syncer", () => {
  it("deletes stale chains a second after flushing them, after a later sync, and survives failures", async () => {
    const f = new FakeNft();
    let now = 10_000;
    let cleanupFailures = 0;
    const syncer = new NftablesSyncer({ exec: f.exec, log: silentLogger(), now: () => now, onCleanupFailure: () => cleanupFailures++ });
    const fp = new FakeProxier();
    fp.addServices(makeService("ns1", "svc1", (s) => (s.spec = { clusterIP: "172.30.0.41", ports: [{ name: "p80", port: 80, protocol: "TCP" }] })));
    const slice = (ips: string[]) =>
      makeSlice("ns1", "svc1", 1, (e) => {
        e.endpoints = ips.map((a) => ({ addresses: [a] }));
        e.ports = [{ name: "p80", port: 80, protocol: "TCP" }];
      });
    fp.addSlices(slice(["10.180.0.1"]));
    const sync = async (full: boolean) => {
      const su = fp.services.apply(fp.serviceMap);
      const eu = fp.endpoints.apply(fp.endpointsMap);
      return syncer.sync({
        services: fp.serviceMap,
        endpoints: fp.endpointsMap,
        nodeLabels: {},
        options: { family: "ip", masqueradeMark: "0x4000", masqueradeAll: false, localCidr: "10.0.0.0/8", nodeIP: undefined, nodePortIPs: "all" },
        full,
        changedServices: new Set([...su.updatedServices, ...eu.updatedServices]),
      });
    };
    await sync(true);
    expect(f.transactions).toHaveLength(1);
    expect(f.transactions[0]).toMatch(/^add table ip kube-proxy/);
    expect(f.transactions[0]).toContain("delete chain ip kube-proxy nat-prerouting\n"); // base chains re-created once
    fp.addSlices(slice(["10.180.0.2"]));
    await sync(false);
    const ep1 = "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80";
    expect(f.transactions[1]).toContain(`flush chain ip kube-proxy ${ep1}\n`);
    expect([...syncer.staleChains.keys()]).toEqual([ep1]);
    // right after the sync that flushed it, and half a second later: not yet
    expect(await syncer.deleteStaleChains()).toBe(0);
    now += 500;
    expect(await syncer.deleteStaleChains()).toBe(0);
    expect(f.transactions.some((t) => t.startsWith("delete chain"))).toBe(false);
    // a second after the flush: deleted, in a transaction of its own
    now += 600;
    expect(await syncer.deleteStaleChains()).toBe(1);
    expect(f.transactions.at(-1)).toBe(`delete chain ip kube-proxy ${ep1}\n`);
    expect(syncer.staleChains.size).toBe(0);
    // a deletion that fails counts a cleanup failure and does not throw
    fp.addSlices(slice(["10.180.0.4"]));
    await sync(false);
    now += 1100;
    f.failing = true;
    expect(await syncer.deleteStaleChains()).toBe(0);
    expect(cleanupFailures).toBe(1);
    f.failing = false;
    // a failed transaction throws and leaves the state as it was
    f.failing = true;
    fp.addSlices(slice(["10.180.0.3"]));
    await expect(sync(false)).rejects.toMatchObject({ name: "NftError" });
    f.failing = false;
    const again = await sync(true);
    expect(again.result.text).toContain("add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }");
    expect(again.result.text).not.toContain("delete chain ip kube-proxy nat-prerouting"); // only on the first full sync
  });
});
