import { describe, expect, it } from "vitest";
import { demoKubeletConfig } from "../../demo/kubelet-config.ts";
import { isDeckhandError } from "../../../src-shared/errors.ts";

const HEAD = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

function failure(text: string): string {
  try {
    demoKubeletConfig(text, "/home/u/kubelet.yaml");
  } catch (err) {
    expect(isDeckhandError(err, "InvalidConfig")).toBe(true);
    return (err as Error).message;
  }
  throw new Error("accepted");
}

describe("demo --kubelet-config", () => {
  it("gives the file's fields to merge over the demo's, paths resolved against the file's folder", () => {
    const fields = demoKubeletConfig(`${HEAD}kubeReserved: {memory: 256Mi}\nevictionHard: {memory.available: 200Mi}\npodPidsLimit: 100\ntlsCertFile: pki/k.crt\ntlsPrivateKeyFile: /etc/k.key\nauthentication: {webhook: {enabled: true}}\n`, "/home/u/kubelet.yaml");
    expect(fields).toEqual({
      kubeReserved: { memory: "256Mi" },
      evictionHard: { "memory.available": "200Mi" },
      podPidsLimit: 100,
      tlsCertFile: "/home/u/pki/k.crt",
      tlsPrivateKeyFile: "/etc/k.key",
      authentication: { webhook: { enabled: true } },
    });
  });

  it("names the field and value of a bad file, as the kubelet would", () => {
    expect(failure(`${HEAD}maxPods: many\n`)).toMatch(/kubelet config \/home\/u\/kubelet\.yaml: .*maxPods.*many/);
    expect(failure(`${HEAD}evictionHard: {memory.available: 10x}\n`)).toMatch(/evictionHard\[memory\.available\].*10x/);
    expect(failure(`${HEAD}kubeReservd: {memory: 1Gi}\n`)).toMatch(/kubeReservd/);
  });

  it("refuses the fields the demo's sandbox node owns, saying why", () => {
    expect(failure(`${HEAD}containerRuntimeEndpoint: unix:///run/containerd/containerd.sock\n`)).toMatch(/containerRuntimeEndpoint: "unix:\/\/\/run\/containerd\/containerd.sock" cannot be set on the demo node \(the sandbox node runs its own containerd\)/);
    expect(failure(`${HEAD}authentication: {x509: {clientCAFile: /etc/ca.crt}}\n`)).toMatch(/authentication\.x509\.clientCAFile/);
  });
});
