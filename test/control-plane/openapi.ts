/**
 * A minimal OpenAPI v3 discovery: the /openapi/v3 root and one document per group-version listing each
 * resource's operations with `x-kubernetes-group-version-kind` and the `fieldValidation` query parameter.
 * That is what kubectl reads to learn that the server validates fields itself (so it sends
 * fieldValidation=Strict instead of downloading schemas). No component schemas are served: kubectl apply
 * then computes strategic merge patches from its compiled-in types, as it does for built-in kinds.
 */
import { createHash } from "node:crypto";
import { RESOURCES, apiVersionOf, groupVersions, isVirtual } from "./registry.ts";

function gvPath(group: string, version: string): string {
  return group === "" ? `api/${version}` : `apis/${group}/${version}`;
}

export function openapiV3Doc(group: string, version: string): Record<string, unknown> | undefined {
  const rs = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (rs.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  const param = (name: string) => ({ name, in: "query", schema: { type: "string", uniqueItems: true } });
  const writeParams = [param("dryRun"), param("fieldManager"), param("fieldValidation")];
  for (const r of rs) {
    const gvk = { "x-kubernetes-group-version-kind": { group: r.group, version: r.version, kind: r.kind } };
    const base = `/${gvPath(group, version)}`;
    const coll = r.namespaced ? `${base}/namespaces/{namespace}/${r.plural}` : `${base}/${r.plural}`;
    const body = { content: { "application/json": { schema: { type: "object" } } } };
    const ok = { responses: { "200": { description: "OK" } } };
    if (isVirtual(r)) {
      paths[coll] = { post: { ...gvk, ...ok, "x-kubernetes-action": "post", operationId: `create${r.kind}`, parameters: writeParams, requestBody: body } };
      continue;
    }
    const patchBody = {
      content: {
        "application/json-patch+json": { schema: { type: "object" } },
        "application/merge-patch+json": { schema: { type: "object" } },
        "application/apply-patch+yaml": { schema: { type: "object" } },
      },
    };
    paths[coll] = {
      get: { ...gvk, ...ok, "x-kubernetes-action": "list", operationId: `list${r.kind}` },
      post: { ...gvk, ...ok, "x-kubernetes-action": "post", operationId: `create${r.kind}`, parameters: writeParams, requestBody: body },
    };
    paths[`${coll}/{name}`] = {
      get: { ...gvk, ...ok, "x-kubernetes-action": "get", operationId: `read${r.kind}` },
      put: { ...gvk, ...ok, "x-kubernetes-action": "put", operationId: `replace${r.kind}`, parameters: writeParams, requestBody: body },
      patch: { ...gvk, ...ok, "x-kubernetes-action": "patch", operationId: `patch${r.kind}`, parameters: [...writeParams, param("force")], requestBody: patchBody },
      delete: { ...gvk, ...ok, "x-kubernetes-action": "delete", operationId: `delete${r.kind}` },
    };
    for (const sub of r.subresources) {
      if (sub !== "status") continue;
      paths[`${coll}/{name}/status`] = {
        get: { ...gvk, ...ok, "x-kubernetes-action": "get" },
        put: { ...gvk, ...ok, "x-kubernetes-action": "put", parameters: writeParams, requestBody: body },
        patch: { ...gvk, ...ok, "x-kubernetes-action": "patch", parameters: [...writeParams, param("force")], requestBody: patchBody },
      };
    }
  }
  return { openapi: "3.0.0", info: { title: "Kubernetes", version: "v1.33.0" }, paths, components: { schemas: {} } };
}

export function openapiV3Root(): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const gv of groupVersions()) {
    const doc = openapiV3Doc(gv.group, gv.version);
    const hash = createHash("sha512").update(JSON.stringify(doc)).digest("hex").slice(0, 128).toUpperCase();
    paths[gvPath(gv.group, gv.version)] = { serverRelativeURL: `/openapi/v3/${gvPath(gv.group, gv.version)}?hash=${hash}` };
  }
  return { paths };
}

export { apiVersionOf };
