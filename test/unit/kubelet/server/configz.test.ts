import { describe, expect, it } from "vitest";
import { configz } from "../../../../kubelet/server/configz.ts";
import { applyKubeletDefaults } from "../../../../kubelet/config/defaults.ts";

describe("/configz", () => {
  it("shows the resolved configuration under kubeletconfig, durations as Go writes them", () => {
    const c = applyKubeletDefaults({ evictionSoftGracePeriod: { "memory.available": 90_000 } });
    const z = configz(c).kubeletconfig;
    expect(z).toMatchObject({
      port: 10250,
      syncFrequency: "1m0s",
      authentication: { webhook: { enabled: true, cacheTTL: "2m0s" }, anonymous: { enabled: false } },
      authorization: { mode: "Webhook", webhook: { cacheAuthorizedTTL: "5m0s", cacheUnauthorizedTTL: "30s" } },
      evictionSoftGracePeriod: { "memory.available": "1m30s" },
      logging: { flushFrequency: "5s" },
    });
    // Only fields of the file format: deckhand's flag-only settings are not KubeletConfiguration fields.
    expect(Object.keys(z)).not.toContain("certDir");
  });
});
