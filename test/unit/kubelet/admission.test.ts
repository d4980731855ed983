import type { V1Pod, V1Volume } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { admitPod, checkSupported, UNKNOWN_POD_FIELD, UNSUPPORTED_POD_FIELD } from "../../../kubelet/admission.ts";
import { podRequests } from "../../../kubelet/cm/pod-resources.ts";
import { serviceAccountVolume } from "../../control-plane/strategies.ts";

const pod = (containers: { cpu?: string; memory?: string; limitOnly?: boolean }[], init: { cpu?: string; sidecar?: boolean }[] = []): V1Pod => ({
  metadata: { name: "p" },
  spec: {
    containers: containers.map((c, i) => ({ name: `c${i}`, resources: c.limitOnly ? { limits: { cpu: c.cpu ?? "0" } } : { requests: { ...(c.cpu ? { cpu: c.cpu } : {}), ...(c.memory ? { memory: c.memory } : {}) } } })),
    initContainers: init.map((c, i) => ({ name: `i${i}`, ...(c.sidecar ? { restartPolicy: "Always" } : {}), resources: { requests: { cpu: c.cpu ?? "0" } } })),
  },
});
const node = { cpuMilli: 2000, memoryBytes: 1024 ** 3, pods: 3 };

describe("admission", () => {
  it("sums app containers, takes the largest init container, adds sidecars, counts limits as requests when alone", () => {
    expect(podRequests(pod([{ cpu: "100m" }, { cpu: "0.5", memory: "64Mi" }]))).toEqual({ cpuMilli: 600, memoryBytes: 64 * 1024 ** 2 });
    expect(podRequests(pod([{ cpu: "100m" }], [{ cpu: "1" }])).cpuMilli).toBe(1000);
    expect(podRequests(pod([{ cpu: "100m" }], [{ cpu: "200m", sidecar: true }, { cpu: "1" }])).cpuMilli).toBe(1200);
    expect(podRequests(pod([{ cpu: "300m", limitOnly: true }])).cpuMilli).toBe(300);
  });

  it("admits what fits and refuses with upstream's reason and message", () => {
    expect(admitPod(pod([{ cpu: "1" }]), [pod([{ cpu: "1" }])], node)).toEqual({ admit: true });
    expect(admitPod(pod([{ cpu: "1500m" }]), [pod([{ cpu: "1" }])], node)).toEqual({
      admit: false,
      reason: "OutOfcpu",
      message: "Pod was rejected: Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000",
    });
    expect(admitPod(pod([{ memory: "2Gi" }]), [], node)).toMatchObject({ admit: false, reason: "OutOfmemory" });
    expect(admitPod(pod([{}]), [pod([{}]), pod([{}]), pod([{}])], node)).toMatchObject({ admit: false, reason: "OutOfpods" });
  });
});

/** A pod of `kubectl create deployment web --image=nginx` as the API server stores it after defaulting. */
function deploymentPod(): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web-7d4b9c5f6d-x2x7q", namespace: "default", uid: "0b8f1c7e-2f4a-4e8b-9a51-0c2f8e0f1a11", labels: { app: "web", "pod-template-hash": "7d4b9c5f6d" } },
    spec: {
      containers: [
        {
          name: "nginx",
          image: "nginx",
          imagePullPolicy: "Always",
          resources: {},
          terminationMessagePath: "/dev/termination-log",
          terminationMessagePolicy: "File",
          volumeMounts: [{ name: "kube-api-access-9zq5c", readOnly: true, mountPath: "/var/run/secrets/kubernetes.io/serviceaccount" }],
        },
      ],
      dnsPolicy: "ClusterFirst",
      enableServiceLinks: true,
      nodeName: "node-1",
      preemptionPolicy: "PreemptLowerPriority",
      priority: 0,
      restartPolicy: "Always",
      schedulerName: "default-scheduler",
      securityContext: {},
      serviceAccount: "default",
      serviceAccountName: "default",
      terminationGracePeriodSeconds: 30,
      tolerations: [
        { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
        { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
      ],
      // As the ServiceAccount admission plugin adds it (the local control plane's copy of it).
      volumes: [serviceAccountVolume("kube-api-access-9zq5c") as unknown as V1Volume],
    },
  };
}

type Spec = NonNullable<V1Pod["spec"]>;
type Container = Spec["containers"][number];
const withSpec = (extra: Partial<Spec> | Record<string, unknown>): V1Pod => {
  const p = deploymentPod();
  return { ...p, spec: { ...(p.spec as Spec), ...extra } };
};
const withContainer = (extra: Partial<Container> | Record<string, unknown>): V1Pod => {
  const p = deploymentPod();
  const spec = p.spec as Spec;
  return { ...p, spec: { ...spec, containers: [{ ...(spec.containers[0] as Container), ...extra }] } };
};
const withVolume = (v: NonNullable<Spec["volumes"]>[number]): V1Pod => {
  const p = deploymentPod();
  (p.spec as Spec).volumes?.push(v);
  return p;
};
const refusal = (pod: V1Pod): string => {
  const r = checkSupported(pod);
  if (r.admit) throw new Error(`admitted: ${JSON.stringify(r.warnings)}`);
  expect(r.reason).toBe(UNSUPPORTED_POD_FIELD);
  return r.message;
};

describe("checkSupported", () => {
  it("admits the pod of an ordinary Deployment, its service account volume included, with no warning", () => {
    expect(checkSupported(deploymentPod())).toEqual({ admit: true, warnings: [] });
  });

  it("admits every volume plugin the volume manager implements, and their mounts", () => {
    const p = deploymentPod();
    const spec = p.spec as Spec;
    spec.volumes?.push(
      { name: "scratch", emptyDir: {} },
      { name: "mem", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
      { name: "host", hostPath: { path: "/var/log", type: "Directory" } },
      { name: "cfg", configMap: { name: "cfg", items: [{ key: "a", path: "a.txt", mode: 0o600 }], defaultMode: 0o644, optional: true } },
      { name: "sec", secret: { secretName: "sec", optional: false } },
      { name: "info", downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }] } },
      { name: "all", projected: { sources: [{ configMap: { name: "cfg" } }, { secret: { name: "sec" } }, { serviceAccountToken: { path: "token", audience: "vault", expirationSeconds: 600 } }] } },
    );
    (spec.containers[0] as Container).volumeMounts?.push(
      { name: "scratch", mountPath: "/scratch", subPath: "a" },
      { name: "mem", mountPath: "/mem", subPathExpr: "$(POD)" },
      { name: "host", mountPath: "/host", readOnly: true, mountPropagation: "HostToContainer" },
    );
    expect(checkSupported(p)).toEqual({ admit: true, warnings: [] });
    expect(checkSupported(withSpec({ securityContext: { fsGroup: 2000, fsGroupChangePolicy: "OnRootMismatch" } }))).toEqual({ admit: true, warnings: [] });
    const env = withContainer({
      envFrom: [{ configMapRef: { name: "cm" }, prefix: "CM_" }, { secretRef: { name: "s", optional: true } }],
      env: [{ name: "A", valueFrom: { configMapKeyRef: { name: "cm", key: "a" } } }, { name: "B", valueFrom: { secretKeyRef: { name: "s", key: "b", optional: true } } }],
    });
    expect(checkSupported(env)).toEqual({ admit: true, warnings: [] });
    expect(checkSupported(withSpec({ hostAliases: [{ ip: "1.2.3.4", hostnames: ["a"] }], hostname: "h", subdomain: "s" }))).toEqual({ admit: true, warnings: [] });
  });

  it("never refuses the scheduler's and the API server's fields", () => {
    const r = checkSupported(
      withSpec({
        nodeSelector: { "kubernetes.io/os": "linux" },
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "a", operator: "Exists" }] }] } } },
        tolerations: [{ operator: "Exists" }],
        priority: 2000001000,
        priorityClassName: "system-node-critical",
        preemptionPolicy: "Never",
        topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "DoNotSchedule" }],
        schedulerName: "my-scheduler",
        schedulingGates: [{ name: "example.com/gate" }],
        readinessGates: [{ conditionType: "example.com/ready" }],
        overhead: { cpu: "10m" },
        automountServiceAccountToken: true,
        activeDeadlineSeconds: 60,
        imagePullSecrets: [{ name: "regcred" }],
        hostname: "web",
        subdomain: "svc",
        dnsConfig: { options: [{ name: "ndots", value: "2" }] },
        os: { name: "linux" },
        hostUsers: true,
        shareProcessNamespace: true,
      }),
    );
    expect(r).toEqual({ admit: true, warnings: [] });
  });

  it("admits what the container config implements", () => {
    const r = checkSupported(
      withContainer({
        command: ["sh"],
        args: ["-c", "echo $(A)"],
        workingDir: "/tmp",
        env: [
          { name: "A", value: "x" },
          { name: "IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
          { name: "MEM", valueFrom: { resourceFieldRef: { resource: "limits.memory", containerName: "nginx" } } },
        ],
        ports: [{ containerPort: 80, protocol: "TCP", name: "http" }],
        resources: { requests: { cpu: "100m", memory: "64Mi", "ephemeral-storage": "1Gi" }, limits: { cpu: "1", memory: "128Mi", "ephemeral-storage": "2Gi" } },
        securityContext: { runAsUser: 1000, runAsGroup: 1000, privileged: false, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, runAsNonRoot: false, procMount: "Default", seccompProfile: { type: "Unconfined" } },
        resizePolicy: [{ resourceName: "cpu", restartPolicy: "NotRequired" }],
        stdin: true,
        tty: true,
      }),
    );
    expect(r).toEqual({ admit: true, warnings: [] });
    expect(checkSupported(withSpec({ hostNetwork: true, containers: [{ name: "c", image: "i", ports: [{ containerPort: 53, hostPort: 53 }] }] })).admit).toBe(true);
    expect(checkSupported(withSpec({ initContainers: [{ name: "sidecar", image: "i", restartPolicy: "Always" }] })).admit).toBe(true);
  });

  it("admits probes of every kind, on app containers and sidecars", () => {
    const probes = { readinessProbe: { exec: { command: ["true"] }, periodSeconds: 10 }, livenessProbe: { tcpSocket: { port: 80 } }, startupProbe: { httpGet: { port: 80, path: "/" } } };
    expect(checkSupported(withContainer(probes))).toMatchObject({ admit: true });
    expect(checkSupported(withSpec({ initContainers: [{ name: "i", image: "i", restartPolicy: "Always", ...probes }] }))).toMatchObject({ admit: true });
  });

  it("admits lifecycle hooks of every kind (a tcpSocket one fails when run, as upstream's) and termination message settings", () => {
    const lifecycle = { postStart: { exec: { command: ["true"] } }, preStop: { httpGet: { port: 80, path: "/stop" } } };
    expect(checkSupported(withContainer({ lifecycle, terminationMessagePath: "/tmp/msg", terminationMessagePolicy: "FallbackToLogsOnError" }))).toMatchObject({ admit: true });
    expect(checkSupported(withContainer({ lifecycle: { preStop: { sleep: { seconds: 3 } }, postStart: { tcpSocket: { port: 80 } } } }))).toMatchObject({ admit: true });
    expect(checkSupported(withSpec({ initContainers: [{ name: "i", image: "i", restartPolicy: "Always", lifecycle }] }))).toMatchObject({ admit: true });
  });

  it("admits host ports (the conflist chains portmap)", () => {
    expect(checkSupported(withContainer({ ports: [{ containerPort: 80, hostPort: 8080, hostIP: "192.0.2.10" }] }))).toMatchObject({ admit: true });
  });

  const refused: [string, V1Pod, string][] = [
    ["a stop signal", withContainer({ lifecycle: { stopSignal: "SIGUSR1" } as Container["lifecycle"] }), 'spec.containers[0].lifecycle.stopSignal="SIGUSR1"'],
    ["a file env source", withContainer({ env: [{ name: "P", valueFrom: { fileKeyRef: { volumeName: "v", path: "p", key: "k" } } }] }), "spec.containers[0].env[0].valueFrom.fileKeyRef"],
    ["another container's resources", withContainer({ env: [{ name: "P", valueFrom: { resourceFieldRef: { resource: "limits.cpu", containerName: "other" } } }] }), 'spec.containers[0].env[0].valueFrom.resourceFieldRef.containerName="other"'],
    ["a recursive read-only mount", withContainer({ volumeMounts: [{ name: "kube-api-access-9zq5c", mountPath: "/data", readOnly: true, recursiveReadOnly: "Enabled" }] }), 'spec.containers[0].volumeMounts[0].recursiveReadOnly="Enabled"'],
    ["a hugepages emptyDir", withVolume({ name: "huge", emptyDir: { medium: "HugePages" } }), 'spec.volumes[1].emptyDir.medium="HugePages"'],
    ["a persistentVolumeClaim", withVolume({ name: "data", persistentVolumeClaim: { claimName: "data" } }), 'spec.volumes[1].persistentVolumeClaim="data"'],
    ["a CSI volume", withVolume({ name: "csi", csi: { driver: "x" } }), 'spec.volumes[1].csi="csi"'],
    ["a clusterTrustBundle projection", withVolume({ name: "bundle", projected: { sources: [{ clusterTrustBundle: { path: "ca.pem", signerName: "example.com/s" } }] } }), "spec.volumes[1].projected.sources[0].clusterTrustBundle"],
    ["volume devices", withContainer({ volumeDevices: [{ name: "blk", devicePath: "/dev/xvda" }] }), "spec.containers[0].volumeDevices"],
    ["a resize policy that restarts", withContainer({ resizePolicy: [{ resourceName: "memory", restartPolicy: "RestartContainer" }] }), 'spec.containers[0].resizePolicy[0].restartPolicy="RestartContainer"'],
    ["a Localhost seccomp profile", withContainer({ securityContext: { seccompProfile: { type: "Localhost", localhostProfile: "p.json" } } }), 'spec.containers[0].securityContext.seccompProfile.type="Localhost"'],
    ["an AppArmor profile", withContainer({ securityContext: { appArmorProfile: { type: "RuntimeDefault" } } }), "spec.containers[0].securityContext.appArmorProfile"],
    ["SELinux options", withContainer({ securityContext: { seLinuxOptions: { level: "s0:c1" } } }), "spec.containers[0].securityContext.seLinuxOptions"],
    ["Windows options", withContainer({ securityContext: { windowsOptions: { runAsUserName: "x" } } }), "spec.containers[0].securityContext.windowsOptions"],
    ["procMount Unmasked", withContainer({ securityContext: { procMount: "Unmasked" } }), 'spec.containers[0].securityContext.procMount="Unmasked"'],
    ["hugepages", withContainer({ resources: { limits: { "hugepages-2Mi": "4Mi", memory: "8Mi" } } }), 'spec.containers[0].resources.limits["hugepages-2Mi"]'],
    ["an extended resource", withContainer({ resources: { requests: { "example.com/gpu": "1" } } }), 'spec.containers[0].resources.requests["example.com/gpu"]'],
    ["resource claims", withContainer({ resources: { claims: [{ name: "gpu" }] } }), "spec.containers[0].resources.claims"],
    ["a container restart policy", withContainer({ restartPolicy: "Never" }), 'spec.containers[0].restartPolicy="Never"'],
    ["container restart rules", withContainer({ restartPolicyRules: [{ action: "Restart", exitCodes: { operator: "In", values: [42] } }] }), "spec.containers[0].restartPolicyRules"],
    ["an init container's stop signal", withSpec({ initContainers: [{ name: "i", image: "i", restartPolicy: "Always", lifecycle: { stopSignal: "SIGINT" } }] }), 'spec.initContainers[0].lifecycle.stopSignal="SIGINT"'],
    ["ephemeral containers", withSpec({ ephemeralContainers: [{ name: "debug", image: "busybox" }] }), "spec.ephemeralContainers"],
    ["an unknown DNS policy", withSpec({ dnsPolicy: "Cluster" }), 'spec.dnsPolicy="Cluster"'],
    ["a Windows pod", withSpec({ os: { name: "windows" } }), 'spec.os.name="windows"'],
    ["user namespaces", withSpec({ hostUsers: false }), "spec.hostUsers=false"],
    ["setHostnameAsFQDN", withSpec({ setHostnameAsFQDN: true }), "spec.setHostnameAsFQDN=true"],
    ["pod resource claims", withSpec({ resourceClaims: [{ name: "gpu", resourceClaimName: "gpu" }] }), "spec.resourceClaims"],
    ["pod-level resources", withSpec({ resources: { limits: { cpu: "1" } } }), "spec.resources"],
    ["a runtime class", withSpec({ runtimeClassName: "kata" }), 'spec.runtimeClassName="kata"'],
    ["a hostname override", withSpec({ hostnameOverride: "other" }), 'spec.hostnameOverride="other"'],
    ["a pod seccomp profile", withSpec({ securityContext: { seccompProfile: { type: "Localhost", localhostProfile: "p.json" } } }), 'spec.securityContext.seccompProfile.type="Localhost"'],
    ["supplementalGroupsPolicy Strict", withSpec({ securityContext: { supplementalGroupsPolicy: "Strict" } }), 'spec.securityContext.supplementalGroupsPolicy="Strict"'],
    ["pod SELinux options", withSpec({ securityContext: { seLinuxOptions: { type: "spc_t" } } }), "spec.securityContext.seLinuxOptions"],
    ["the legacy AppArmor annotation", { ...deploymentPod(), metadata: { ...deploymentPod().metadata, annotations: { "container.apparmor.security.beta.kubernetes.io/nginx": "runtime/default" } } }, 'metadata.annotations["container.apparmor.security.beta.kubernetes.io/nginx"]="runtime/default"'],
  ];
  it.each(refused)("refuses %s, naming the field", (_what, pod, field) => {
    expect(refusal(pod)).toBe(`Pod field ${field} is not supported by this kubelet yet`);
  });

  it("names every offending field in one message", () => {
    const p = withVolume({ name: "data", persistentVolumeClaim: { claimName: "data" } });
    Object.assign((p.spec as Spec).containers[0] as Container, { lifecycle: { preStop: { exec: { command: ["true"] } }, stopSignal: "SIGUSR1" }, volumeDevices: [{ name: "blk", devicePath: "/dev/xvda" }] });
    expect(refusal(p)).toBe('Pod fields spec.volumes[1].persistentVolumeClaim="data", spec.containers[0].volumeDevices, spec.containers[0].lifecycle.stopSignal="SIGUSR1" are not supported by this kubelet yet');
  });

  it("runs a pod with a field newer than this kubelet, with a warning naming it", () => {
    const r = checkSupported(withContainer({ futureField: { enabled: true } }));
    expect(r).toMatchObject({ admit: true, warnings: [{ reason: UNKNOWN_POD_FIELD, message: "Pod field spec.containers[0].futureField is unknown to this kubelet and ignored" }] });
  });
});
