import { describe, expect, it } from "vitest";
import { MAX_NODES, parseDemoArgs } from "../../demo/args.ts";
import { isDeckhandError } from "../../../src-shared/errors.ts";

function failure(argv: string[]): unknown {
  try {
    parseDemoArgs(argv);
  } catch (err) {
    return err;
  }
  throw new Error(`parseDemoArgs(${argv.join(" ")}) did not fail`);
}

describe("the demo's command line", () => {
  it("runs two nodes until Ctrl-C by default", () => {
    expect(parseDemoArgs([])).toEqual({ once: false, nodes: 2 });
  });

  it("takes --once and --nodes N in either form", () => {
    expect(parseDemoArgs(["--once", "--nodes", "3"])).toEqual({ once: true, nodes: 3 });
    expect(parseDemoArgs([`--nodes=${MAX_NODES}`])).toEqual({ once: false, nodes: MAX_NODES });
    expect(parseDemoArgs(["--nodes", "1"]).nodes).toBe(1);
    expect(parseDemoArgs(["--kubelet-config", "k.yaml", "--once"])).toEqual({ once: true, nodes: 2, kubeletConfig: "k.yaml" });
  });

  it.each([["0"], ["-1"], ["two"], ["1.5"], [String(MAX_NODES + 1)], [""]])("refuses --nodes %j, naming flag and value", (value) => {
    const err = failure([`--nodes=${value}`]);
    expect(isDeckhandError(err, "InvalidArgument")).toBe(true);
    expect((err as Error).message).toContain(`--nodes "${value}"`);
  });

  it("refuses an unknown flag or a positional argument", () => {
    expect(isDeckhandError(failure(["--fast"]), "InvalidArgument")).toBe(true);
    expect(isDeckhandError(failure(["extra"]), "InvalidArgument")).toBe(true);
  });
});
