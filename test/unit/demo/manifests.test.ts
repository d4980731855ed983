import { describe, expect, it } from "vitest";
import { checkSupported } from "../../../kubelet/admission.ts";
import { APP, helloPod, helloService, PAGE, parseWhoami } from "../../demo/manifests.ts";

describe("the demo's objects", () => {
  it("a sample pod this kubelet runs without refusing a field, placed on its node, serving the ConfigMap page", () => {
    const pod = helloPod("hello-2", "node-2-dh-x");
    expect(checkSupported(pod)).toEqual({ admit: true, warnings: [] });
    expect(pod.spec?.nodeSelector).toEqual({ "kubernetes.io/hostname": "node-2-dh-x" });
    expect(pod.spec?.volumes).toEqual([{ name: "page", configMap: { name: PAGE } }]);
    expect(pod.metadata?.labels).toEqual({ app: APP });
  });

  it("a Service selecting the sample pods, to their named port", () => {
    const svc = helloService();
    expect(svc.spec?.selector).toEqual({ app: APP });
    const port = svc.spec?.ports?.[0];
    expect(helloPod("x", "n").spec?.containers[0]?.ports?.some((p) => p.name === port?.targetPort)).toBe(true);
  });

  it("reads a /whoami answer, and nothing else", () => {
    expect(parseWhoami("hello-2 10.244.0.2 node-2-dh-x\n")).toEqual({ pod: "hello-2", ip: "10.244.0.2", node: "node-2-dh-x" });
    expect(parseWhoami("")).toBeUndefined();
    expect(parseWhoami("hello-2 10.244.0.2")).toBeUndefined();
    expect(parseWhoami("<html>404 Not Found</html> a b c")).toBeUndefined();
  });
});
