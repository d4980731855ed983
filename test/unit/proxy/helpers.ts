/**
 * Helpers shared by the proxy unit tests: API objects in upstream proxier_test.go's shape, a "fake proxier"
 * that runs the trackers and the pure rule generator the way the real proxier does, and upstream's
 * normalisation of restore text (assertIPTablesRulesEqual sorts chains; rule order within a chain matters).
 */
import type { V1EndpointSlice, V1Service } from "@kubernetes/client-node";
import { EndpointsTracker, SERVICE_NAME_LABEL } from "../../../proxy/endpoints-tracker.ts";
import { RulesCache, generateRules, type RulesOptions, type RulesResult } from "../../../proxy/rules.ts";
import { ServiceChangeTracker } from "../../../proxy/service-change-tracker.ts";
import type { EndpointsMap, ServiceMap } from "../../../proxy/types.ts";

export const TEST_NODE_NAME = "test-node";
export const TEST_NODE_IP = "192.168.0.2";

export function makeService(ns: string, name: string, mutate: (svc: V1Service) => void): V1Service {
  const svc: V1Service = { metadata: { namespace: ns, name, annotations: {} }, spec: {}, status: {} };
  mutate(svc);
  return svc;
}

export function makeSlice(ns: string, name: string, index: number, mutate: (slice: V1EndpointSlice) => void): V1EndpointSlice {
  const slice: V1EndpointSlice = {
    metadata: { namespace: ns, name: `${name}-${index}`, labels: { [SERVICE_NAME_LABEL]: name }, annotations: {} },
    addressType: "IPv4",
    endpoints: [],
  };
  mutate(slice);
  return slice;
}

/** upstream NewFakeProxier's settings: pod CIDR 10.0.0.0/8 as the local detector, mark 0x4000, nfacct present. */
export function fakeOptions(overrides: Partial<RulesOptions> = {}): RulesOptions {
  return {
    nodeName: TEST_NODE_NAME,
    nodeIP: TEST_NODE_IP,
    masqueradeMark: "0x4000",
    masqueradeAll: false,
    localCidr: "10.0.0.0/8",
    localhostNodePorts: true,
    nodePortIPs: "all",
    randomFully: false,
    conntrackTCPLiberal: false,
    nfacct: { ctStateInvalid: true, localhostNodePorts: true },
    ...overrides,
  };
}

/** Trackers + generator, with "existing chains" = what the previous sync left, as a fake iptables would hold. */
export class FakeProxier {
  readonly services = new ServiceChangeTracker();
  readonly endpoints: EndpointsTracker;
  readonly serviceMap: ServiceMap = new Map();
  readonly endpointsMap: EndpointsMap = new Map();
  readonly cache = new RulesCache();
  options: RulesOptions;
  nodeLabels: Record<string, string> = {};
  /** The service chains the restores so far left in the (fake) nat table. */
  existing = new Set<string>();
  stale: string[] = [];
  needFullSync = true;
  last: RulesResult | undefined;

  constructor(options: RulesOptions = fakeOptions()) {
    this.options = options;
    this.endpoints = new EndpointsTracker(options.nodeName);
  }

  addServices(...svcs: V1Service[]): void {
    for (const s of svcs) this.services.update(undefined, s);
  }

  addSlices(...slices: V1EndpointSlice[]): void {
    for (const s of slices) this.endpoints.update(s, false);
  }

  sync(): string {
    const su = this.services.apply(this.serviceMap);
    const eu = this.endpoints.apply(this.endpointsMap);
    const changed = new Set([...su.updatedServices, ...eu.updatedServices]);
    const result = generateRules({
      services: this.serviceMap,
      endpoints: this.endpointsMap,
      nodeLabels: this.nodeLabels,
      options: this.options,
      full: this.needFullSync,
      changedServices: changed,
      existingNatChains: this.existing,
      staleNatChains: this.stale,
      cache: this.cache,
    });
    this.needFullSync = false;
    this.apply(result);
    return result.text;
  }

  /** What a restore of this result leaves in the nat table, as iptables would. */
  apply(result: RulesResult): void {
    const nat = result.text.slice(result.text.indexOf("*nat"));
    for (const m of nat.matchAll(/^:(KUBE-(?:SVC|SVL|EXT|FW|SEP)-\w+) /gm)) this.existing.add(m[1] ?? "");
    for (const m of nat.matchAll(/^-X (\S+)$/gm)) this.existing.delete(m[1] ?? "");
    this.stale = result.staleNatChains;
    this.last = result;
  }
}

/**
 * Canonical form of restore text for comparison: per table, chain declarations sorted, then each chain's
 * rules in their order (chains sorted by name), then `-X` lines sorted. Rule order inside a chain is kept.
 */
export function normalizeRestore(text: string): string {
  const out: string[] = [];
  let table = "";
  let chains: string[] = [];
  let deletes: string[] = [];
  let rules = new Map<string, string[]>();
  const flush = (): void => {
    out.push(`*${table}`, ...chains.sort());
    for (const c of [...rules.keys()].sort()) out.push(...(rules.get(c) ?? []));
    out.push(...deletes.sort(), "COMMIT");
  };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("*")) {
      table = line.slice(1);
      chains = [];
      deletes = [];
      rules = new Map();
    } else if (line === "COMMIT") flush();
    else if (line.startsWith(":")) chains.push(line);
    else if (line.startsWith("-X ")) deletes.push(line);
    else {
      const chain = line.split(" ")[1] ?? "";
      const list = rules.get(chain) ?? [];
      list.push(line);
      rules.set(chain, list);
    }
  }
  return out.join("\n");
}

/** Removes the common indentation of a template literal (Go's dedent.Dedent). */
export function dedent(text: string): string {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .join("\n");
}
