/**
 * The CNI protocol as the spec (1.0.0 and 1.1.0) defines it: versions, environment, error codes, result shape.
 * Pure: the plugin, the daemon and the tests share it.
 */

/** Spec versions we answer in. Results of 0.3.x/0.4.0 differ from 1.x only by `ips[].version`. */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = "1.1.0";

/** Well-known error codes (spec "Error" section); 100+ are ours. */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  ContainerUnknown: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  PluginNotAvailableLimitedConnectivity: 51,
  /** Not in the spec: an operation of ours failed (netlink, an `ip` command...). */
  Internal: 100,
  /** Not in the spec: the address range has no free address. */
  RangeExhausted: 101,
} as const;
export type CniCodeValue = (typeof CniCode)[keyof typeof CniCode];

/** An error the plugin reports as the spec's error JSON on stdout, with a non-zero exit. */
export class CniError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(code: number, msg: string, details = "") {
    super(msg);
    this.name = "CniError";
    this.code = code;
    this.details = details;
  }
}

export function isCniError(err: unknown): err is CniError {
  return err instanceof CniError;
}

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION" | "GC" | "STATUS";
export const COMMANDS: readonly CniCommand[] = ["ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS"];

/** The CNI_* variables of one invocation. */
export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS parsed ("K=V;K2=V2"). */
  args: ReadonlyMap<string, string>;
  path: string;
}

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Reads and validates the CNI_* variables a command needs (code 4 naming the variable when one is wrong). */
export function parseEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const command = env["CNI_COMMAND"] ?? "";
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(CniCode.InvalidEnvironment, `CNI_COMMAND ${JSON.stringify(command)} is not one of ${COMMANDS.join(", ")}`);
  }
  const cmd = command as CniCommand;
  const containerId = env["CNI_CONTAINERID"] ?? "";
  const netns = env["CNI_NETNS"] ?? "";
  const ifname = env["CNI_IFNAME"] ?? "";
  const needsContainer = cmd === "ADD" || cmd === "DEL" || cmd === "CHECK";
  if (needsContainer) {
    if (!containerId) throw new CniError(CniCode.InvalidEnvironment, `CNI_CONTAINERID is required for ${cmd}`);
    if (!CONTAINER_ID.test(containerId)) throw new CniError(CniCode.InvalidEnvironment, `CNI_CONTAINERID ${JSON.stringify(containerId)} is not a valid container id`);
    if (!ifname) throw new CniError(CniCode.InvalidEnvironment, `CNI_IFNAME is required for ${cmd}`);
    const bad = validIfname(ifname);
    if (bad) throw new CniError(CniCode.InvalidEnvironment, `CNI_IFNAME ${JSON.stringify(ifname)}: ${bad}`);
    if ((cmd === "ADD" || cmd === "CHECK") && !netns) throw new CniError(CniCode.InvalidEnvironment, `CNI_NETNS is required for ${cmd}`);
  }
  return { command: cmd, containerId, netns, ifname, args: parseCniArgs(env["CNI_ARGS"] ?? ""), path: env["CNI_PATH"] ?? "" };
}

/** Linux interface name rules as the spec words them; undefined when valid, else why not. */
export function validIfname(name: string): string | undefined {
  if (name.length === 0) return "is empty";
  if (name.length > 15) return "is longer than 15 characters";
  if (name === "." || name === "..") return "is not a valid interface name";
  if (/[/:\s]/.test(name)) return "contains '/', ':' or whitespace";
  return undefined;
}

export function parseCniArgs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!text) return out;
  for (const pair of text.split(";")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CniError(CniCode.InvalidEnvironment, `CNI_ARGS: ${JSON.stringify(pair)} is not KEY=VALUE`);
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

// ---- results

export interface ResultInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface ResultIp {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
}

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: ResultInterface[];
  ips?: ResultIp[];
  routes?: ResultRoute[];
  dns: Dns;
}

/** The result JSON in the requested version (0.3.x/0.4.0 carry `version` on each IP; 1.1.0 adds interface `mtu`). */
export function encodeResult(result: CniResult, version: string): string {
  const legacy = version.startsWith("0.");
  const out = {
    cniVersion: version,
    ...(result.interfaces
      ? {
          interfaces: result.interfaces.map((i) => {
            const { mtu, ...rest } = i;
            return version === "1.1.0" && mtu !== undefined ? { ...rest, mtu } : rest;
          }),
        }
      : {}),
    ...(result.ips
      ? { ips: result.ips.map((ip) => (legacy ? { version: ip.address.includes(":") ? "6" : "4", ...ip } : ip)) }
      : {}),
    ...(result.routes ? { routes: result.routes } : {}),
    dns: result.dns,
  };
  return JSON.stringify(out);
}

export function encodeError(err: CniError, version: string): string {
  return JSON.stringify({ cniVersion: version, code: err.code, msg: err.message, ...(err.details ? { details: err.details } : {}) });
}

export function encodeVersion(version: string): string {
  return JSON.stringify({ cniVersion: version, supportedVersions: SUPPORTED_VERSIONS });
}

/** Compares dotted versions numerically: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupportedVersion(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}
