import { describe, expect, it } from "vitest";
import { specsFromContainerLabels } from "../../../../kubelet/runtime/labels.ts";

describe("specsFromContainerLabels (upstream's restoreSpecsFromContainerLabels)", () => {
  const labels = { "io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "shop", "io.kubernetes.pod.uid": "u-1", "io.kubernetes.container.name": "app" };

  it("restores names, grace periods, the termination message path and the preStop handler", () => {
    const restored = specsFromContainerLabels(labels, {
      "io.kubernetes.pod.terminationGracePeriod": "45",
      "io.kubernetes.pod.deletionGracePeriod": "7",
      "io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
      "io.kubernetes.container.preStopHandler": '{"httpGet":{"port":8080,"path":"/stop"}}',
    });
    expect(restored).toEqual({
      pod: { metadata: { name: "web", namespace: "shop", uid: "u-1", deletionGracePeriodSeconds: 7 }, spec: { containers: [], terminationGracePeriodSeconds: 45 } },
      container: { name: "app", terminationMessagePath: "/dev/termination-log", lifecycle: { preStop: { httpGet: { port: 8080, path: "/stop" } } } },
    });
  });

  it("leaves out what is missing or does not parse", () => {
    expect(specsFromContainerLabels(labels, { "io.kubernetes.pod.terminationGracePeriod": "soon", "io.kubernetes.container.preStopHandler": "{not json" })).toEqual({
      pod: { metadata: { name: "web", namespace: "shop", uid: "u-1" }, spec: { containers: [] } },
      container: { name: "app" },
    });
  });
});
