/**
 * Namespace lifecycle and per-namespace defaults:
 * - a deleted namespace (phase Terminating) has its content deleted — pods gracefully, so bound pods wait
 *   for their kubelet — and goes away once empty;
 * - every active namespace gets the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap
 *   (serviceaccounts-controller and root-ca-cert-publisher).
 */
import type { Logger } from "pino";
import { ADMIN, resource, type Api } from "../api.ts";
import { RESOURCES, isVirtual } from "../registry.ts";
import type { StoreEvent } from "../store.ts";
import { isApiError } from "../status.ts";
import { Controller } from "./base.ts";

const namespaces = resource("", "namespaces");
const serviceaccounts = resource("", "serviceaccounts");
const configmaps = resource("", "configmaps");

export class NamespaceController extends Controller {
  protected readonly watches = ["core/namespaces", "core/serviceaccounts", "core/configmaps", "core/pods"];
  private readonly caPem: string;

  constructor(api: Api, log: Logger, caPem: string) {
    super(api, log);
    this.caPem = caPem;
  }

  protected keysFor(ev: StoreEvent): string[] {
    if (ev.storage === "core/namespaces") return ev.type === "DELETED" ? [] : [ev.object.metadata.name ?? ""];
    const ns = ev.object.metadata.namespace ?? "";
    return ns === "" ? [] : [ns];
  }

  protected initialKeys(): string[] {
    return this.api.store.list(namespaces.storage).map((n) => n.metadata.name ?? "");
  }

  protected reconcile(name: string): void {
    const ns = this.api.store.get(namespaces.storage, undefined, name);
    if (ns === undefined) return;
    if (ns.metadata.deletionTimestamp === undefined) {
      this.ensure(name);
      return;
    }
    let remaining = 0;
    const storages = new Set<string>();
    for (const r of RESOURCES) {
      if (!r.namespaced || isVirtual(r) || storages.has(r.storage)) continue;
      storages.add(r.storage);
      for (const o of this.api.store.list(r.storage, name)) {
        remaining++;
        if (o.metadata.deletionTimestamp !== undefined && r.kind === "Pod") continue;
        try {
          this.api.delete(ADMIN, r, name, o.metadata.name ?? "", {});
        } catch (e) {
          if (!isApiError(e, "NotFound")) throw e;
        }
      }
    }
    if (remaining > 0) {
      this.retryLater(name, 1000);
      return;
    }
    this.api.store.delete(namespaces.storage, undefined, name);
    this.log.info({ namespace: name }, "namespace deleted");
  }

  private ensure(ns: string): void {
    const create = (r: typeof serviceaccounts, body: Record<string, unknown>) => {
      try {
        this.api.create(ADMIN, r, ns, body);
      } catch (e) {
        if (!isApiError(e, "AlreadyExists") && !isApiError(e, "Forbidden")) throw e;
      }
    };
    if (this.api.store.get(serviceaccounts.storage, ns, "default") === undefined)
      create(serviceaccounts, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: ns } });
    const cm = this.api.store.get(configmaps.storage, ns, "kube-root-ca.crt");
    if (cm === undefined)
      create(configmaps, {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: "kube-root-ca.crt",
          namespace: ns,
          annotations: { "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters." },
        },
        data: { "ca.crt": this.caPem },
      });
  }
}
