import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          // e2e suites drive real containerd, netns and iptables: each file gets its own node sandbox,
          // and on a 2-core machine two files at a time is what keeps them from starving each other.
          pool: "forks",
          maxWorkers: 2,
          testTimeout: 120_000,
          hookTimeout: 180_000,
          globalSetup: ["test/harness/global-setup.ts"],
        },
      },
    ],
  },
});
