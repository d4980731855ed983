import { describe, expect, it } from "vitest";
import { formatGoDuration, loadKubeletConfig, parseGoDuration } from "../../../../kubelet/config/kubelet-config.ts";
import { CONFIG, configError, env, errorsOf, files, load } from "./helpers.ts";

describe("durations", () => {
  const ms = (s: string): number => {
    const r = parseGoDuration(s);
    if (!r.ok) throw new Error(r.error);
    return Number(r.ns) / 1e6;
  };

  it("parse as Go's time.ParseDuration", () => {
    expect(ms("10s")).toBe(10_000);
    expect(ms("1m30s")).toBe(90_000);
    expect(ms("100ms")).toBe(100);
    expect(ms("2h")).toBe(7_200_000);
    expect(ms("1h2m3.5s")).toBe(3_723_500);
    expect(ms("1.5h")).toBe(5_400_000);
    expect(ms(".5s")).toBe(500);
    expect(ms("5.s")).toBe(5_000);
    expect(ms("1s1h")).toBe(3_601_000);
    expect(ms("0")).toBe(0);
    expect(ms("+0")).toBe(0);
    expect(ms("-1.5s")).toBe(-1_500);
    expect(ms("+2m")).toBe(120_000);
    expect(ms("1500us")).toBe(1.5);
    expect(ms("1500µs")).toBe(1.5);
    expect(ms("1500μs")).toBe(1.5);
    expect(ms("250ns")).toBe(0.00025);
    const max = parseGoDuration("9223372036854775807ns");
    expect(max.ok && max.ns).toBe(9223372036854775807n);
    const min = parseGoDuration("-9223372036854775808ns");
    expect(min.ok && min.ns).toBe(-9223372036854775808n);
  });

  it("reject what Go rejects, with Go's messages", () => {
    const err = (s: string): string => {
      const r = parseGoDuration(s);
      return r.ok ? "ok" : r.error;
    };
    expect(err("10")).toBe('time: missing unit in duration "10"');
    expect(err("")).toBe('time: invalid duration ""');
    expect(err(".")).toBe('time: invalid duration "."');
    expect(err(".s")).toBe('time: invalid duration ".s"');
    expect(err("-")).toBe('time: invalid duration "-"');
    expect(err("1d")).toBe('time: unknown unit "d" in duration "1d"');
    expect(err("1 s")).toBe('time: unknown unit " s" in duration "1 s"');
    expect(err("s")).toBe('time: invalid duration "s"');
    expect(err("--1s")).toBe('time: invalid duration "--1s"');
    expect(err("1S")).toBe('time: unknown unit "S" in duration "1S"');
    expect(err("9223372036854775808ns")).toBe('time: invalid duration "9223372036854775808ns"');
    expect(err("3000000h")).toBe('time: invalid duration "3000000h"');
  });

  it("format as Go's Duration.String", () => {
    expect(formatGoDuration(0n)).toBe("0s");
    expect(formatGoDuration(1_500n)).toBe("1.5µs");
    expect(formatGoDuration(100_000_000n)).toBe("100ms");
    expect(formatGoDuration(90_000_000_000n)).toBe("1m30s");
    expect(formatGoDuration(3_600_000_000_000n)).toBe("1h0m0s");
    expect(formatGoDuration(3_723_500_000_000n)).toBe("1h2m3.5s");
    expect(formatGoDuration(-1_000_000_000n)).toBe("-1s");
  });

  it("in the file are checked, naming the field and the value", () => {
    const err = configError(() => load('syncFrequency: "10"\nfileCheckFrequency: -1s\nruntimeRequestTimeout: 2\nimageMinimumGCAge: 2 m\n'));
    expect(errorsOf(err)).toEqual([
      `kubelet config ${CONFIG}: syncFrequency: Invalid value: "10": time: missing unit in duration "10"`,
      `kubelet config ${CONFIG}: runtimeRequestTimeout: Invalid value: 2: must be a duration string with a unit, e.g. "10s", "1m30s", "100ms"`,
      `kubelet config ${CONFIG}: imageMinimumGCAge: Invalid value: "2 m": time: unknown unit " m" in duration "2 m"`,
      `kubelet config ${CONFIG}: fileCheckFrequency: Invalid value: "-1s": must not be negative`,
    ]);
    expect(load("syncFrequency: 1m30s\nlogging: {flushFrequency: 2000000000}\n")).toMatchObject({ syncFrequency: 90_000, logging: { flushFrequency: 2_000 } });
  });
});


describe("hostname", () => {
  it("defaults to the machine's hostname, lowercased", () => {
    const c = loadKubeletConfig([], files({}), { hostname: () => "Ubuntu-Worker", cwd: "/" });
    expect(c !== "help" && c.hostname).toBe("ubuntu-worker");
  });

  it("takes --hostname-override, lowercased and trimmed; an empty override falls back to the machine's", () => {
    const c = loadKubeletConfig(["--hostname-override", " Worker-7.Example.com "], files({}), env);
    expect(c !== "help" && c.hostname).toBe("worker-7.example.com");
    const e = loadKubeletConfig(["--hostname-override="], files({}), env);
    expect(e !== "help" && e.hostname).toBe("node-a");
  });

  it("must be a DNS-1123 subdomain", () => {
    expect(configError(() => loadKubeletConfig(["--hostname-override=node_1"], files({}), env)).message).toMatch(
      /^hostname \(--hostname-override\): Invalid value: "node_1": a lowercase RFC 1123 subdomain/,
    );
    expect(configError(() => loadKubeletConfig(["--hostname-override=-node"], files({}), env)).message).toContain('"-node"');
    expect(configError(() => loadKubeletConfig(["--hostname-override=  "], files({}), env)).message).toBe(
      "hostname (--hostname-override): Required value: empty hostname is invalid",
    );
    expect(configError(() => loadKubeletConfig([`--hostname-override=${"a".repeat(254)}`], files({}), env)).message).toContain("must be no more than 253 characters");
    expect(configError(() => loadKubeletConfig([], files({}), { hostname: () => "my_laptop", cwd: "/" })).message).toMatch(
      /^hostname \(the machine's; set --hostname-override\): Invalid value: "my_laptop"/,
    );
  });
});
