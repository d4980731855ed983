import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { containerEnv, envReferences, isEnvVarName, type EnvSources } from "../../../../kubelet/runtime/container-config.ts";
import { testNode } from "../../../harness/runtime-fixture.ts";

const pod: V1Pod = { metadata: { name: "web", namespace: "prod", uid: "u1" }, spec: { containers: [] } };
const sources: EnvSources = {
  configMaps: new Map([["cfg", { LEVEL: "debug", "bad=key": "x", HOST: "db" }]]),
  secrets: new Map([["creds", { PASSWORD: "hunter2", USER: "admin" }]]),
};
const env = (c: Partial<V1Container>, warnings?: string[]): Record<string, string> =>
  Object.fromEntries(containerEnv(pod, { name: "main", image: "i", ...c }, testNode(), { podIPs: ["10.0.0.5"] }, sources, warnings).map((e) => [e.key, e.value]));

describe("containerEnv with ConfigMaps and Secrets", () => {
  it("reads envFrom with prefixes, then env in order (later names win), expanding $(VAR) over all of it", () => {
    const warnings: string[] = [];
    const got = env(
      {
        envFrom: [{ configMapRef: { name: "cfg" }, prefix: "APP_" }, { secretRef: { name: "creds" } }],
        env: [
          { name: "DSN", value: "$(USER):$(PASSWORD)@$(APP_HOST)" },
          { name: "LEVEL", valueFrom: { configMapKeyRef: { name: "cfg", key: "LEVEL" } } },
          { name: "USER", value: "override" },
          { name: "IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
        ],
      },
      warnings,
    );
    expect(got).toEqual({ APP_LEVEL: "debug", APP_HOST: "db", PASSWORD: "hunter2", USER: "override", DSN: "admin:hunter2@db", LEVEL: "debug", IP: "10.0.0.5" });
    expect(warnings).toEqual(["Keys [APP_bad=key] from the EnvFrom configMap prod/cfg were skipped since they are considered invalid environment variable names."]);
  });

  it("fails on a missing object or key with upstream's messages unless optional", () => {
    expect(() => env({ envFrom: [{ configMapRef: { name: "nope" } }] })).toThrow('configmap "nope" not found');
    expect(() => env({ envFrom: [{ secretRef: { name: "nope" } }] })).toThrow('secret "nope" not found');
    expect(() => env({ env: [{ name: "X", valueFrom: { secretKeyRef: { name: "creds", key: "TOKEN" } } }] })).toThrow("couldn't find key TOKEN in Secret prod/creds");
    expect(() => env({ env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "cfg", key: "NOPE" } } }] })).toThrow("couldn't find key NOPE in ConfigMap prod/cfg");
    expect(env({ envFrom: [{ configMapRef: { name: "nope", optional: true } }], env: [{ name: "X", valueFrom: { secretKeyRef: { name: "creds", key: "TOKEN", optional: true } } }] })).toEqual({});
  });

  it("names what a container references, and accepts upstream's relaxed variable names", () => {
    expect(envReferences({ name: "c", envFrom: [{ configMapRef: { name: "a" } }, { secretRef: { name: "b" } }], env: [{ name: "X", valueFrom: { secretKeyRef: { name: "c", key: "k" } } }] })).toEqual({ configMaps: new Set(["a"]), secrets: new Set(["b", "c"]) });
    expect(isEnvVarName("my.var-1")).toBe(true);
    expect(isEnvVarName("1abc")).toBe(true);
    expect(isEnvVarName("a=b")).toBe(false);
    expect(isEnvVarName("")).toBe(false);
  });
});
