/**
 * `npm run demo -- --kubelet-config FILE`: a user's KubeletConfiguration merged over the demo node's, so that
 * thresholds, reservations and the like can be tried on the demo node. The file is checked as the kubelet would
 * check it (strict decoding, values, cross-field rules: every problem named with its field), and the fields the
 * demo's sandbox node owns (where its containerd, cgroups, static pods, logs and client CA are) are refused
 * rather than silently overridden. The node's harness merges the result over the demo's configuration, objects key
 * by key (`authentication.webhook` keeps the demo's `x509`). Relative paths resolve against the file's
 * directory, as the kubelet resolves them. Pure, apart from the caller's read of the file.
 */
import { dirname, isAbsolute, join, resolve } from "node:path";
import yaml from "js-yaml";
import { parseKubeletConfigFile } from "../../kubelet/config/kubelet-config.ts";
import { DeckhandError } from "../../src-shared/errors.ts";

/** The demo node's own settings (test/harness/cluster.ts addNode), with why a file may not change them. */
const DEMO_OWNED: Record<string, string> = {
  cgroupRoot: "the sandbox node's cgroups live under its own root",
  cgroupDriver: "the sandbox node's containerd uses cgroupfs",
  containerRuntimeEndpoint: "the sandbox node runs its own containerd",
  imageServiceEndpoint: "the sandbox node runs its own containerd",
  staticPodPath: "the demo's static pod folder is the sandbox node's",
  podLogsDir: "the sandbox node's pod logs are in its private /var/log/pods",
  "authentication.x509.clientCAFile": "the demo's API server signs its kubelet-client certificate with the demo's CA",
};
const PATH_FIELDS = [["tlsCertFile"], ["tlsPrivateKeyFile"], ["resolvConf"]];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function dig(o: Obj, path: readonly string[]): unknown {
  let cur: unknown = o;
  for (const k of path) cur = isObj(cur) ? cur[k] : undefined;
  return cur;
}

/**
 * The fields of the user's file (`text`, read from `path`) to merge over the demo node's configuration. Throws
 * DeckhandError("InvalidConfig") naming the file, the field and the value.
 */
export function demoKubeletConfig(text: string, path: string): Obj {
  const file = resolve(path);
  // The kubelet's own checks, every problem with its field.
  parseKubeletConfigFile(text, file);
  const raw = yaml.load(text);
  if (!isObj(raw)) throw new DeckhandError("InvalidConfig", `kubelet config ${file}: not a KubeletConfiguration object`);
  const refused = Object.entries(DEMO_OWNED)
    .filter(([field]) => dig(raw, field.split(".")) !== undefined)
    .map(([field, why]) => `${field}: ${JSON.stringify(dig(raw, field.split(".")))} cannot be set on the demo node (${why})`);
  if (refused.length > 0) {
    throw new DeckhandError("InvalidConfig", `kubelet config ${file}: ${refused.join("; ")}`, { details: { errors: refused } });
  }
  const user: Obj = { ...raw };
  delete user["apiVersion"];
  delete user["kind"];
  for (const [field] of PATH_FIELDS) {
    const v = field === undefined ? undefined : user[field];
    if (field !== undefined && typeof v === "string" && v !== "" && !isAbsolute(v)) user[field] = join(dirname(file), v);
  }
  return user;
}
