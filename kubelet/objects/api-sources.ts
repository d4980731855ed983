/**
 * The volume manager's sources on a kubelet with an API: the ConfigMap and Secret watch managers (one watch
 * per referenced object) and the token manager, behind the VolumeSources interface. A changed object wakes
 * the pods that reference it (their next sync writes the new content).
 */
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../../src-shared/log.ts";
import { DeckhandError } from "../../src-shared/errors.ts";
import type { KubeClient } from "../../src-shared/kube/client.ts";
import type { Clock } from "../../src-shared/clock.ts";
import type { VolumeSources } from "../volumes/volume-manager.ts";
import { volumeReferences } from "../volumes/volume-manager.ts";
import { envReferences, type EnvSources } from "../runtime/container-config.ts";
import { ObjectWatchManager } from "./watch-manager.ts";
import { TokenManager, type Token, type TokenRequestSpec } from "./token-manager.ts";

type ConfigMap = KubernetesObject & { data?: Record<string, string>; binaryData?: Record<string, string> };
type Secret = KubernetesObject & { data?: Record<string, string> };

export class ApiVolumeSources implements VolumeSources {
  readonly configMaps: ObjectWatchManager<ConfigMap>;
  readonly secrets: ObjectWatchManager<Secret>;
  readonly tokens: TokenManager;

  constructor(options: { client: KubeClient; logger: Logger; clock?: Clock; wake: (uid: string) => void }) {
    this.configMaps = new ObjectWatchManager<ConfigMap>({ client: options.client, kind: "configmaps", logger: options.logger });
    this.secrets = new ObjectWatchManager<Secret>({ client: options.client, kind: "secrets", logger: options.logger });
    this.tokens = new TokenManager({ client: options.client, ...(options.clock ? { clock: options.clock } : {}) });
    for (const m of [this.configMaps, this.secrets]) m.onChange((_ns, _name, pods) => pods.forEach((uid) => options.wake(uid)));
  }

  start(signal: AbortSignal): void {
    this.configMaps.start(signal);
    this.secrets.start(signal);
  }

  /** Watches what the pod's volumes and its containers' env reference. */
  register(pod: V1Pod): void {
    const uid = pod.metadata?.uid ?? "";
    const ns = pod.metadata?.namespace ?? "";
    const refs = volumeReferences(pod);
    for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
      const env = envReferences(c);
      env.configMaps.forEach((n) => refs.configMaps.add(n));
      env.secrets.forEach((n) => refs.secrets.add(n));
    }
    this.configMaps.register(uid, ns, refs.configMaps);
    this.secrets.register(uid, ns, refs.secrets);
  }

  unregister(uid: string): void {
    this.configMaps.unregister(uid);
    this.secrets.unregister(uid);
    this.tokens.forgetPod(uid);
  }

  configMap(namespace: string, name: string, signal?: AbortSignal): Promise<ConfigMap | undefined> {
    return this.configMaps.get(namespace, name, signal);
  }

  secret(namespace: string, name: string, signal?: AbortSignal): Promise<Secret | undefined> {
    return this.secrets.get(namespace, name, signal);
  }

  token(spec: TokenRequestSpec, signal?: AbortSignal): Promise<Token> {
    return this.tokens.get(spec, signal);
  }

  async close(): Promise<void> {
    await Promise.all([this.configMaps.close(), this.secrets.close()]);
  }
}

/** Without an API (static pods only): no object exists and no token can be had. */
export class StandaloneVolumeSources implements VolumeSources {
  register(): void {}
  unregister(): void {}
  configMap(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  secret(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  token(): Promise<Token> {
    return Promise.reject(new DeckhandError("Unavailable", "no API server: service account tokens cannot be requested"));
  }
}

/** The objects a container's env reads, from the volume sources (Secret values decoded from base64). */
export async function envSourcesOf(sources: VolumeSources, namespace: string, refs: { configMaps: Set<string>; secrets: Set<string> }, signal?: AbortSignal): Promise<EnvSources> {
  const configMaps = new Map<string, Record<string, string> | undefined>();
  const secrets = new Map<string, Record<string, string> | undefined>();
  for (const name of refs.configMaps) {
    const cm = await sources.configMap(namespace, name, signal);
    configMaps.set(name, cm ? { ...(cm.data ?? {}) } : undefined);
  }
  for (const name of refs.secrets) {
    const s = await sources.secret(namespace, name, signal);
    secrets.set(name, s ? Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")])) : undefined);
  }
  return { configMaps, secrets };
}
