/**
 * The demo's command line: `--once` (check everything, tear down, exit 0), `--nodes N` (worker nodes, 2 by
 * default) and `--kubelet-config FILE` (a KubeletConfiguration merged over every node's: kubelet-config.ts).
 * New flags go in DEMO_OPTIONS and DemoArgs; parseDemoArgs validates them, naming the flag and value.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { DeckhandError } from "../../src-shared/errors.ts";

/** Nodes the underlay and this machine's two cores sensibly take. */
export const MAX_NODES = 8;

export const DEMO_OPTIONS = {
  once: { type: "boolean", default: false },
  nodes: { type: "string", default: "2" },
  "kubelet-config": { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

export interface DemoArgs {
  once: boolean;
  nodes: number;
  /** The file given with --kubelet-config (read and checked by the caller: kubelet-config.ts). */
  kubeletConfig?: string;
}

export function parseDemoArgs(argv: readonly string[]): DemoArgs {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: DEMO_OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new DeckhandError("InvalidArgument", `demo: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const nodes = Number(values.nodes);
  if (!/^\d+$/.test(values.nodes) || nodes < 1 || nodes > MAX_NODES) {
    throw new DeckhandError("InvalidArgument", `demo: --nodes "${values.nodes}" is not a whole number from 1 to ${MAX_NODES}`);
  }
  const kubeletConfig = values["kubelet-config"];
  return { once: values.once, nodes, ...(kubeletConfig !== undefined ? { kubeletConfig } : {}) };
}
