/**
 * The shared strict decoder, and the point of sharing it: one file means the same to the kubelet and the
 * proxy (YAML 1.1 booleans, duplicate and unknown fields refused with the same reasons).
 */
import { describe, expect, it } from "vitest";
import { decodeConfigDocument, IGN, obj, parseConfigDocument, S } from "../../../src-shared/config-decode.ts";
import { isDeckhandError, type DeckhandError } from "../../../src-shared/errors.ts";
import { parseKubeletConfigFile } from "../../../kubelet/config/kubelet-config.ts";
import { parseConfigText } from "../../../proxy/config.ts";

const KUBELET = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
const PROXY = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n";

function problemsOf(fn: () => unknown): unknown[] {
  try {
    fn();
  } catch (err) {
    if (isDeckhandError(err, "InvalidConfig")) return err.details["problems"] as unknown[];
    throw err;
  }
  return [];
}

async function proxyProblems(text: string): Promise<unknown[]> {
  const err = await parseConfigText(text, "p.yaml").then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) return [];
  expect(isDeckhandError(err, "InvalidConfig")).toBe(true);
  return (err as DeckhandError).details["problems"] as unknown[];
}

describe("parseConfigDocument (sigs.k8s.io/yaml, strict)", () => {
  it.each([
    ["yes", true],
    ["Yes", true],
    ["YES", true],
    ["y", true],
    ["on", true],
    ["ON", true],
    ["true", true],
    ["no", false],
    ["n", false],
    ["off", false],
    ["False", false],
  ])("%s is the boolean %s (go-yaml v2 resolves YAML 1.1 booleans)", (word, value) => {
    expect(parseConfigDocument(`a: ${word}\n`)).toEqual({ doc: { a: value } });
    expect(parseConfigDocument(`a: "${word}"\n`)).toEqual({ doc: { a: word } });
  });

  it("reads JSON, and refuses its duplicate fields too", () => {
    expect(parseConfigDocument('{"a": 1}')).toEqual({ doc: { a: 1 } });
    expect(parseConfigDocument('{"a": 1, "a": 2}')).toMatchObject({ problem: { reason: "DuplicateField", value: "a" } });
  });

  it("gives every document problem a stable reason", () => {
    expect(parseConfigDocument("a: 1\na: 2\n")).toMatchObject({ problem: { reason: "DuplicateField", detail: 'duplicate field "a" (line 2, column 1)' } });
    expect(parseConfigDocument("a: [")).toMatchObject({ problem: { reason: "Syntax" } });
    expect(parseConfigDocument("  \n")).toMatchObject({ problem: { reason: "Syntax", detail: "the file is empty" } });
  });
});

describe("decodeConfigDocument", () => {
  const type = { apiVersion: "x/v1", kind: "X", schema: obj({ apiVersion: S("string"), kind: S("string"), count: S("int32"), d: S("duration"), legacy: IGN("bool") }) };

  it("decodes the supported fields, lists the ignored ones set, names unknown ones with path and value", () => {
    const d = decodeConfigDocument("apiVersion: x/v1\nkind: X\ncount: 3\nd: 1m30s\nlegacy: yes\nextra: 1\n", type);
    expect(d.fields).toEqual({ count: 3, d: 90_000 });
    expect(d.ignoredFields).toEqual(["legacy"]);
    expect(d.problems).toEqual([{ path: "", detail: 'unknown field "extra"', reason: "UnknownField", value: 1 }]);
  });

  it("reports the wrong kind alone", () => {
    const d = decodeConfigDocument("apiVersion: y/v1\ncount: bad\n", type);
    expect(d.fatal.map((p) => p.reason)).toEqual(["Unsupported", "Required"]);
    expect(d.problems).toEqual([]);
  });

  it("names a value of the wrong type", () => {
    expect(decodeConfigDocument("apiVersion: x/v1\nkind: X\ncount: on\n", type).problems).toEqual([
      { path: "count", detail: "Invalid value: true: must be an integer", reason: "Invalid", value: true },
    ]);
  });
});

describe("one file, one meaning, for the kubelet and the proxy", () => {
  it.each(["yes", "on", "y", "true", "no", "off", "n", "false"])("%s: the same boolean for both", async (word) => {
    const kubelet = parseKubeletConfigFile(`${KUBELET}failSwapOn: ${word}\n`, "/etc/k.yaml").fields.failSwapOn;
    const proxy = (await parseConfigText(`${PROXY}iptables:\n  masqueradeAll: ${word}\n`, "p.yaml")).iptables.masqueradeAll;
    expect(typeof kubelet).toBe("boolean");
    expect(proxy).toBe(kubelet);
  });

  it("refuses a duplicate field, for both, with the same problem", async () => {
    const kubelet = problemsOf(() => parseKubeletConfigFile(`${KUBELET}oomScoreAdj: 1\noomScoreAdj: 2\n`, "/etc/k.yaml"));
    const proxy = await proxyProblems(`${PROXY}oomScoreAdj: 1\noomScoreAdj: 2\n`);
    expect(kubelet).toEqual([{ path: "", detail: 'duplicate field "oomScoreAdj" (line 4, column 1)', reason: "DuplicateField", value: "oomScoreAdj" }]);
    expect(proxy).toEqual(kubelet);
  });

  it("refuses an unknown field, for both, naming its path and value", async () => {
    const kubelet = problemsOf(() => parseKubeletConfigFile(`${KUBELET}oomScoreADJ: 1\n`, "/etc/k.yaml"));
    const proxy = await proxyProblems(`${PROXY}oomScoreADJ: 1\n`);
    expect(kubelet).toEqual([{ path: "", detail: 'unknown field "oomScoreADJ"', reason: "UnknownField", value: 1 }]);
    expect(proxy).toEqual(kubelet);
  });

  it("refuses a string field given a bare YAML 1.1 boolean, for both", async () => {
    const kubelet = problemsOf(() => parseKubeletConfigFile(`${KUBELET}cgroupDriver: on\n`, "/etc/k.yaml"));
    const proxy = await proxyProblems(`${PROXY}mode: on\n`);
    expect(kubelet).toMatchObject([{ reason: "Invalid", value: true, detail: "Invalid value: true: must be a string (quote it in YAML)" }]);
    expect(proxy).toMatchObject([{ reason: "Invalid", value: true, detail: "Invalid value: true: must be a string (quote it in YAML)" }]);
  });
});
