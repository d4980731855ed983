/**
 * The kubelet's configuration: a KubeletConfiguration file (kubelet.config.k8s.io/v1beta1, YAML or JSON) with
 * upstream's defaults, the familiar flags over it, and deckhand's own flag-only settings. Pure parsing and
 * validation; reading the --config file (one `readFile` call in `loadKubeletConfig`) is the only I/O.
 *
 * This module loads (flags → file → defaults → flag overrides → validation) and is the public entry; the jobs
 * live beside it: `types.ts` (the resolved shapes), `decode.ts` (the v1beta1 schema through the shared strict
 * decoder src-shared/config-decode.ts), `defaults.ts`, `validate.ts` (+ `validators.ts`, `feature-gates.ts`)
 * and `flags.ts`.
 *
 * Upstream, followed here:
 * - strict decoding: an unknown field (case-sensitive, with its full path, e.g. `authentication.webhook.cacheTtl`)
 *   is an error, and so is a value of the wrong JSON type (`maxPods: "110"`, `kubeReserved: {cpu: 1}`);
 *   YAML is read with YAML 1.1 booleans (`yes`/`no`/`on`/`off`), as sigs.k8s.io/yaml does (the same decoder
 *   reads the kube-proxy's file);
 * - defaults from pkg/kubelet/apis/config/v1beta1/defaults.go, with its zero-value semantics (`syncFrequency: 0s`,
 *   `maxPods: 0`, `port: 0`... mean "default"), the nodeStatusReportFrequency back-compat rule, and
 *   serializeImagePulls following maxParallelImagePulls;
 * - evictionHard: the Linux defaults (memory.available 100Mi, nodefs.available 10%, nodefs.inodesFree 5%,
 *   imagefs.available 15%, imagefs.inodesFree 5%) only when the file does not set evictionHard at all
 *   (cmd/kubelet/app/server.go loadConfigFile); a file that sets some signals gets only those, unless
 *   `mergeDefaultEvictionSettings: true` (default false) asks for the missing ones to be merged in;
 * - validation from pkg/kubelet/apis/config/validation/validation.go (ranges, enums, cross-field rules, the
 *   feature gates some fields need), plus the eviction, reserved-resource and taint parsing the kubelet does
 *   before it starts (pkg/kubelet/eviction/helpers.go, pkg/kubelet/cm, pkg/util/taints);
 * - relative paths in the file (staticPodPath, tlsCertFile, tlsPrivateKeyFile, authentication.x509.clientCAFile,
 *   resolvConf, podLogsDir) resolve against the file's directory (KubeletConfigurationPathRefs);
 * - flags override the file, after its defaults were applied (kubeletConfigFlagPrecedence);
 * - cgroupRoot "" becomes "/" when cgroupsPerQOS (cmd/kubelet/app/server.go).
 *
 * Deliberate differences:
 * - upstream fields deckhand does not implement are accepted only at their inert value (e.g. `cpuManagerPolicy:
 *   none`, `staticPodURL: ""`) and refused otherwise, naming the field; fields without effect here (iptables
 *   bits, tracing...) are accepted, type-checked and listed in `ignoredFields`;
 * - no `--config` means the config-file defaults (anonymous auth off, Webhook authz, no read-only port), not
 *   upstream's insecure legacy flag defaults;
 * - clusterDNS entries and clusterDomain are validated (upstream logs and skips a bad DNS IP);
 * - `null` for any field means "not set" (upstream errors for a null duration);
 * - a file with a wrong apiVersion or kind reports only that, not every field of the unrelated object.
 */
import { readFileSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { resolve as resolvePath } from "node:path";
import { configError, invalid, listMessage } from "../../src-shared/config-decode.ts";
import { DeckhandError, errorMessage } from "../../src-shared/errors.ts";
import { levelForVerbosity } from "../../src-shared/log.ts";
import { decodeFile, render, type Origin } from "./decode.ts";
import { applyKubeletDefaults, finish } from "./defaults.ts";
import { parseKubeletFlags } from "./flags.ts";
import type { KubeletConfig, PartialKubeletConfiguration } from "./types.ts";
import { validateKubeletConfiguration } from "./validate.ts";
import { dns1123SubdomainProblem } from "./validators.ts";

export * from "./types.ts";
export { applyKubeletDefaults, defaultKubeletConfiguration } from "./defaults.ts";
export { parseKubeletFlags, usage, type KubeletFlags } from "./flags.ts";
export { parseGoDuration, formatGoDuration } from "../../src-shared/go-duration.ts";
export { KNOWN_FEATURE_GATES, gateEnabled } from "./feature-gates.ts";

export interface KubeletConfigFile {
  /** Absolute path of the file. */
  path: string;
  /** What the file set, relative paths resolved against its directory. */
  fields: PartialKubeletConfiguration;
  /** Upstream fields the file set that deckhand accepts without acting on them. */
  ignoredFields: string[];
}

/**
 * Parses and validates a KubeletConfiguration file (YAML or JSON) on its own: strict decoding, types, values, and
 * the cross-field rules with upstream's defaults filling the rest. Every problem is reported in one
 * `DeckhandError("InvalidConfig")`, each naming the field and value.
 */
export function parseKubeletConfigFile(text: string, path: string): KubeletConfigFile {
  const file = resolvePath(path);
  const d = decodeFile(text, file);
  const problems = d.fatal.length > 0 ? d.fatal : [...d.problems, ...validateKubeletConfiguration(finish(applyKubeletDefaults(d.fields)), d.set)];
  if (problems.length > 0) {
    const lines = problems.map((p) => (p.path === "" ? p.detail : `${p.path}: ${p.detail}`));
    throw configError(listMessage(`kubelet config ${file}`, lines), lines, problems);
  }
  return { path: file, fields: d.fields, ignoredFields: d.ignoredFields };
}

export type ReadFile = (path: string, encoding: "utf8") => string;

export interface LoadEnvironment {
  /** The machine's hostname (default os.hostname). */
  hostname?: () => string;
  /** The directory relative flag paths resolve against (default process.cwd()). */
  cwd?: string;
}

/**
 * The kubelet's configuration from its command line: flags → the --config file (if any) → upstream defaults →
 * flag overrides → validation. Returns "help" for --help (print `usage()`). Every problem found is reported in
 * one `DeckhandError("InvalidConfig")` before anything is started; each names the field (and the file or flag
 * it came from) and the value.
 */
export function loadKubeletConfig(argv: readonly string[], readFile: ReadFile = readFileSync, env: LoadEnvironment = {}): KubeletConfig | "help" {
  const flags = parseKubeletFlags(argv);
  if (flags.help) return "help";
  const cwd = env.cwd ?? process.cwd();
  const abs = (p: string): string => (p === "" ? p : resolvePath(cwd, p));

  const origins = new Map<string, Origin>();
  const explicit = new Set<string>();
  const problems: string[] = [];
  let fileFields: PartialKubeletConfiguration = {};
  let ignoredFields: string[] = [];

  const configFile = flags.config ? abs(flags.config) : undefined;
  if (configFile !== undefined) {
    let text: string;
    try {
      text = readFile(configFile, "utf8");
    } catch (err) {
      const line = `cannot read it: ${errorMessage(err)}`;
      throw new DeckhandError("InvalidConfig", `kubelet config ${configFile}: ${line}`, { cause: err, details: { errors: [line] } });
    }
    const d = decodeFile(text, configFile);
    if (d.fatal.length > 0) {
      const lines = d.fatal.map((p) => (p.path === "" ? p.detail : `${p.path}: ${p.detail}`));
      throw configError(listMessage(`kubelet config ${configFile}`, lines), lines, d.fatal);
    }
    const fileOrigin: Origin = { kind: "file", file: configFile };
    for (const path of d.set) {
      origins.set(path, fileOrigin);
      explicit.add(path);
    }
    problems.push(...d.problems.map((p) => render(p, origins, fileOrigin)));
    fileFields = d.fields;
    ignoredFields = d.ignoredFields;
  }

  // Flags override the file once its defaults are applied, as upstream re-parses them over the loaded file.
  for (const [path, flag] of flags.setBy) {
    origins.set(path, { kind: "flag", flag });
    explicit.add(path);
  }
  const base = applyKubeletDefaults(fileFields);
  const { logging, featureGates, authentication: _authn, authorization: _authz, crashLoopBackOff: _clb, ...flat } = flags.overrides;
  if (flat.staticPodPath !== undefined) flat.staticPodPath = abs(flat.staticPodPath);
  const resolved = finish({
    ...base,
    ...flat,
    logging: { ...base.logging, ...logging },
    featureGates: { ...base.featureGates, ...featureGates },
  });
  problems.push(...validateKubeletConfiguration(resolved, explicit).map((p) => render(p, origins)));

  // The node name: upstream's GetHostname (override or the machine's, trimmed and lowercased).
  const hostnameOverride = flags.hostnameOverride ?? "";
  const fromFlag = hostnameOverride !== "";
  const hostname = (fromFlag ? hostnameOverride : (env.hostname ?? osHostname)()).trim().toLowerCase();
  const where = fromFlag ? "hostname (--hostname-override)" : "hostname (the machine's; set --hostname-override)";
  if (hostname === "") problems.push(`${where}: Required value: empty hostname is invalid`);
  else {
    const pr = dns1123SubdomainProblem(hostname);
    if (pr) problems.push(`${where}: ${invalid(hostname, pr)}`);
  }

  if (problems.length > 0) {
    const message = problems.length === 1 ? (problems[0] ?? "") : `invalid kubelet configuration (${problems.length} errors):\n${problems.map((l) => `  - ${l}`).join("\n")}`;
    throw configError(message, problems);
  }

  return {
    ...resolved,
    configFile,
    hostname,
    hostnameOverride,
    nodeIP: flags.nodeIP ?? [],
    kubeconfig: abs(flags.kubeconfig ?? ""),
    rootDir: abs(flags.rootDir ?? "/var/lib/kubelet"),
    certDir: abs(flags.certDir ?? "/var/lib/kubelet/pki"),
    cniConfDir: abs(flags.cniConfDir ?? "/etc/cni/net.d"),
    cniBinDir: abs(flags.cniBinDir ?? "/opt/cni/bin"),
    cniDaemonSocket: flags.cniDaemonSocket === "" ? "" : abs(flags.cniDaemonSocket ?? "/run/deckhand/cni.sock"),
    nodeLabels: { ...flags.nodeLabels },
    verbosity: resolved.logging.verbosity,
    logLevel: levelForVerbosity(resolved.logging.verbosity),
    ignoredFields,
  };
}
