/**
 * The service link variables (upstream's getServiceEnvVarMap and envvars.FromServices): for every Service of the
 * pod's namespace with a cluster IP when `enableServiceLinks` is true, and always for the `kubernetes` Service
 * of the default namespace, docker-link style variables: `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT` (the first
 * port), `<NAME>_SERVICE_PORT_<PORTNAME>`, `<NAME>_PORT=tcp://ip:port` and
 * `<NAME>_PORT_<port>_<PROTO>{,_PROTO,_PORT,_ADDR}`. Services are sorted by name as upstream. Pure.
 */
import type { V1Service } from "@kubernetes/client-node";
import type { KeyValue } from "../cri/types.ts";

const envName = (name: string): string => name.toUpperCase().replace(/-/g, "_");

function ipSet(s: V1Service): boolean {
  const ip = s.spec?.clusterIP ?? "";
  return ip !== "" && ip !== "None";
}

function fromService(s: V1Service): KeyValue[] {
  const name = envName(s.metadata?.name ?? "");
  const ip = s.spec?.clusterIP ?? "";
  const ports = s.spec?.ports ?? [];
  const out: KeyValue[] = [{ key: `${name}_SERVICE_HOST`, value: ip }];
  const first = ports[0];
  if (first) out.push({ key: `${name}_SERVICE_PORT`, value: String(first.port) });
  for (const p of ports) if (p.name) out.push({ key: `${name}_SERVICE_PORT_${envName(p.name)}`, value: String(p.port) });
  if (first) {
    const url = (ip.includes(":") ? `[${ip}]` : ip) + `:${first.port}`;
    out.push({ key: `${name}_PORT`, value: `${(first.protocol ?? "TCP").toLowerCase()}://${url}` });
  }
  for (const p of ports) {
    const proto = (p.protocol ?? "TCP").toLowerCase();
    const prefix = `${name}_PORT_${p.port}_${proto.toUpperCase()}`;
    out.push(
      { key: prefix, value: `${proto}://${ip.includes(":") ? `[${ip}]` : ip}:${p.port}` },
      { key: `${prefix}_PROTO`, value: proto },
      { key: `${prefix}_PORT`, value: String(p.port) },
      { key: `${prefix}_ADDR`, value: ip },
    );
  }
  return out;
}

export function serviceEnv(services: readonly V1Service[], namespace: string, enableServiceLinks: boolean): KeyValue[] {
  const chosen = new Map<string, V1Service>();
  for (const s of services) {
    if (!ipSet(s)) continue;
    const name = s.metadata?.name ?? "";
    if (s.metadata?.namespace === "default" && name === "kubernetes") {
      if (!chosen.has(name)) chosen.set(name, s);
    } else if (s.metadata?.namespace === namespace && enableServiceLinks) chosen.set(name, s);
  }
  return [...chosen.values()].sort((a, b) => ((a.metadata?.name ?? "") < (b.metadata?.name ?? "") ? -1 : 1)).flatMap(fromService);
}
