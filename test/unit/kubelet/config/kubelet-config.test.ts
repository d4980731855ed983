import { describe, expect, it } from "vitest";
import { loadKubeletConfig } from "../../../../kubelet/config/kubelet-config.ts";
import { files, env, configError } from "./helpers.ts";

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
