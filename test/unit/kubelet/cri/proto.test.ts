import { describe, it, expect } from "vitest";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import {
  ENUMS,
  type ContainerStatus,
  type CreateContainerRequest,
  type ExecSyncResponse,
  type ImageServiceMethod,
  type Input,
  type PodSandboxConfig,
  type RuntimeServiceMethod,
  type StatusResponse,
} from "../../../../kubelet/cri/types.ts";

const PROTO = fileURLToPath(new URL("../../../../kubelet/cri/api.proto", import.meta.url));
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

const RUNTIME_RPCS = [
  "Version",
  "RunPodSandbox",
  "StopPodSandbox",
  "RemovePodSandbox",
  "PodSandboxStatus",
  "ListPodSandbox",
  "CreateContainer",
  "StartContainer",
  "StopContainer",
  "RemoveContainer",
  "ListContainers",
  "ContainerStatus",
  "UpdateContainerResources",
  "ReopenContainerLog",
  "ExecSync",
  "Exec",
  "Attach",
  "PortForward",
  "ContainerStats",
  "ListContainerStats",
  "PodSandboxStats",
  "ListPodSandboxStats",
  "UpdateRuntimeConfig",
  "Status",
] as const satisfies readonly RuntimeServiceMethod[];
const IMAGE_RPCS = ["ListImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo"] as const satisfies readonly ImageServiceMethod[];

// Compile-time: the lists above cover the method maps in types.ts.
const runtimeListComplete: [Exclude<RuntimeServiceMethod, (typeof RUNTIME_RPCS)[number]>] extends [never] ? true : false = true;
const imageListComplete: [Exclude<ImageServiceMethod, (typeof IMAGE_RPCS)[number]>] extends [never] ? true : false = true;

// Field numbers as in kubernetes/kubernetes@f9e5dd84ad4df476b02bd7237b2e2d05d6d79f7b
// staging/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto. Messages listed here are checked
// completely (no missing or extra fields), so every field a message has must appear.
const FIELD_NUMBERS: Record<string, Record<string, number>> = {
  CreateContainerRequest: { pod_sandbox_id: 1, config: 2, sandbox_config: 3 },
  RunPodSandboxRequest: { config: 1, runtime_handler: 2 },
  PodSandboxMetadata: { name: 1, uid: 2, namespace: 3, attempt: 4 },
  PodSandboxConfig: {
    metadata: 1, hostname: 2, log_directory: 3, dns_config: 4, port_mappings: 5,
    labels: 6, annotations: 7, linux: 8, windows: 9,
  },
  LinuxPodSandboxConfig: { cgroup_parent: 1, security_context: 2, sysctls: 3, overhead: 4, resources: 5 },
  LinuxSandboxSecurityContext: {
    namespace_options: 1, selinux_options: 2, run_as_user: 3, readonly_rootfs: 4, supplemental_groups: 5,
    privileged: 6, seccomp_profile_path: 7, run_as_group: 8, seccomp: 9, apparmor: 10, supplemental_groups_policy: 11,
  },
  NamespaceOption: { network: 1, pid: 2, ipc: 3, target_id: 4, userns_options: 5 },
  Namespace: { options: 2 },
  PortMapping: { protocol: 1, container_port: 2, host_port: 3, host_ip: 4 },
  SecurityProfile: { profile_type: 1, localhost_ref: 2 },
  LinuxContainerResources: {
    cpu_period: 1, cpu_quota: 2, cpu_shares: 3, memory_limit_in_bytes: 4, oom_score_adj: 5,
    cpuset_cpus: 6, cpuset_mems: 7, hugepage_limits: 8, unified: 9, memory_swap_limit_in_bytes: 10,
  },
  LinuxContainerSecurityContext: {
    capabilities: 1, privileged: 2, namespace_options: 3, selinux_options: 4, run_as_user: 5,
    run_as_username: 6, readonly_rootfs: 7, supplemental_groups: 8, apparmor_profile: 9,
    seccomp_profile_path: 10, no_new_privs: 11, run_as_group: 12, masked_paths: 13, readonly_paths: 14,
    seccomp: 15, apparmor: 16, supplemental_groups_policy: 17,
  },
  ContainerConfig: {
    metadata: 1, image: 2, command: 3, args: 4, working_dir: 5, envs: 6, mounts: 7, devices: 8,
    labels: 9, annotations: 10, log_path: 11, stdin: 12, stdin_once: 13, tty: 14, linux: 15, windows: 16,
    CDI_devices: 17,
  },
  ImageSpec: { image: 1, annotations: 2, user_specified_image: 18, runtime_handler: 19 },
  Mount: {
    container_path: 1, host_path: 2, readonly: 3, selinux_relabel: 4, propagation: 5,
    uidMappings: 6, gidMappings: 7, recursive_read_only: 8, image: 9, image_sub_path: 10,
  },
  ContainerStatus: {
    id: 1, metadata: 2, state: 3, created_at: 4, started_at: 5, finished_at: 6, exit_code: 7, image: 8,
    image_ref: 9, reason: 10, message: 11, labels: 12, annotations: 13, mounts: 14, log_path: 15,
    resources: 16, image_id: 17, user: 18,
  },
  PodSandboxStatus: {
    id: 1, metadata: 2, state: 3, created_at: 4, network: 5, linux: 6, labels: 7, annotations: 8, runtime_handler: 9,
  },
  PodSandboxStatusResponse: { status: 1, info: 2, containers_statuses: 3, timestamp: 4 },
  StopContainerRequest: { container_id: 1, timeout: 2 },
  ExecSyncRequest: { container_id: 1, cmd: 2, timeout: 3 },
  ExecSyncResponse: { stdout: 1, stderr: 2, exit_code: 3 },
  ExecRequest: { container_id: 1, cmd: 2, tty: 3, stdin: 4, stdout: 5, stderr: 6 },
  AttachRequest: { container_id: 1, stdin: 2, tty: 3, stdout: 4, stderr: 5 },
  PullImageRequest: { image: 1, auth: 2, sandbox_config: 3 },
  AuthConfig: { username: 1, password: 2, auth: 3, server_address: 4, identity_token: 5, registry_token: 6 },
  Image: { id: 1, repo_tags: 2, repo_digests: 3, size: 4, uid: 5, username: 6, spec: 7, pinned: 8 },
  ImageFsInfoResponse: { image_filesystems: 1, container_filesystems: 2 },
  FilesystemUsage: { timestamp: 1, fs_id: 2, used_bytes: 3, inodes_used: 4 },
  ContainerStats: { attributes: 1, cpu: 2, memory: 3, writable_layer: 4, swap: 5 },
  MemoryUsage: {
    timestamp: 1, working_set_bytes: 2, available_bytes: 3, usage_bytes: 4, rss_bytes: 5, page_faults: 6, major_page_faults: 7,
  },
  StatusResponse: { status: 1, info: 2, runtime_handlers: 3, features: 4 },
  RuntimeCondition: { type: 1, status: 2, reason: 3, message: 4 },
  VersionResponse: { version: 1, runtime_name: 2, runtime_version: 3, runtime_api_version: 4 },
};

// The proto types of some fields whose JS shape depends on them.
const FIELD_TYPES: [message: string, field: string, type: string][] = [
  ["LinuxContainerResources", "memory_limit_in_bytes", "int64"],
  ["HugepageLimit", "limit", "uint64"],
  ["Image", "size", "uint64"],
  ["ContainerStatus", "created_at", "int64"],
  ["ContainerStatus", "exit_code", "int32"],
  ["ExecSyncRequest", "timeout", "int64"],
  ["ExecSyncResponse", "stdout", "bytes"],
  ["PodSandboxMetadata", "attempt", "uint32"],
  ["IDMapping", "host_id", "uint32"],
  ["PortForwardRequest", "port", "int32"],
];

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.loadSync(PROTO, { keepCase: true });
  root.resolveAll();
  return root;
}

function loadGrpcPackage(): grpc.GrpcObject {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, LOADER_OPTIONS));
  return (pkg.runtime as grpc.GrpcObject).v1 as grpc.GrpcObject;
}

/** Decode as @grpc/proto-loader does (its deserializer is `toObject(decode(buf), options)`). */
function roundTrip(type: protobuf.Type, value: object): unknown {
  const bytes = type.encode(type.fromObject(value)).finish();
  return type.toObject(type.decode(bytes), LOADER_OPTIONS);
}

describe("kubelet/cri/api.proto", () => {
  const root = loadRoot();
  const msg = (name: string): protobuf.Type => root.lookupType(`runtime.v1.${name}`);

  it("is package runtime.v1 with both services exposing exactly the kubelet's RPCs", () => {
    expect(runtimeListComplete && imageListComplete).toBe(true);
    const v1 = loadGrpcPackage();
    for (const [name, rpcs] of [
      ["RuntimeService", RUNTIME_RPCS],
      ["ImageService", IMAGE_RPCS],
    ] as const) {
      const ctor = v1[name] as grpc.ServiceClientConstructor;
      expect(typeof ctor).toBe("function");
      expect(ctor.serviceName).toBe(name);
      const service = ctor.service;
      expect(Object.keys(service).sort()).toEqual([...rpcs].sort());
      for (const rpc of rpcs) {
        const def = service[rpc];
        expect(def?.path).toBe(`/runtime.v1.${name}/${rpc}`);
        expect(def?.requestStream).toBe(false);
        expect(def?.responseStream).toBe(false);
      }
      const reflected = root.lookupService(`runtime.v1.${name}`);
      for (const method of reflected.methodsArray) {
        expect([method.requestType, method.responseType]).toEqual([`${method.name}Request`, `${method.name}Response`]);
      }
    }
  });

  it("has the upstream field names and numbers", () => {
    for (const [message, fields] of Object.entries(FIELD_NUMBERS)) {
      const type = msg(message);
      const actual = Object.fromEntries(type.fieldsArray.map((f) => [f.name, f.id]));
      expect({ message, fields: actual }).toEqual({ message, fields });
    }
    for (const [message, field, protoType] of FIELD_TYPES) {
      expect({ message, field, type: msg(message).fields[field]?.type }).toEqual({ message, field, type: protoType });
    }
  });

  it("has no field number used twice in any message", () => {
    const types: protobuf.Type[] = [];
    const collect = (ns: protobuf.NamespaceBase): void => {
      for (const nested of ns.nestedArray) {
        if (nested instanceof protobuf.Type) types.push(nested);
        if (nested instanceof protobuf.Namespace) collect(nested);
      }
    };
    collect(root.lookup("runtime.v1") as protobuf.Namespace);
    expect(types.length).toBeGreaterThan(100);
    for (const type of types) {
      const ids = type.fieldsArray.map((f) => f.id);
      expect({ message: type.name, unique: new Set(ids).size === ids.length }).toEqual({ message: type.name, unique: true });
    }
  });

  it("declares exactly the enums of types.ts ENUMS, values in number order", () => {
    const enums: Record<string, readonly string[]> = {};
    const collect = (ns: protobuf.NamespaceBase, prefix: string): void => {
      for (const nested of ns.nestedArray) {
        if (nested instanceof protobuf.Enum) {
          const byNumber = Object.entries(nested.values).sort((a, b) => a[1] - b[1]);
          expect(byNumber.map(([, n]) => n)).toEqual(byNumber.map((_, i) => i));
          enums[prefix + nested.name] = byNumber.map(([name]) => name);
        } else if (nested instanceof protobuf.Namespace) {
          collect(nested, nested instanceof protobuf.Type ? `${prefix}${nested.name}.` : prefix);
        }
      }
    };
    collect(root.lookup("runtime.v1") as protobuf.Namespace, "");
    expect(enums).toEqual(ENUMS);
  });

  it("puts the expected tags on the wire", () => {
    const hex = (name: string, value: object): string =>
      Buffer.from(msg(name).encode(msg(name).fromObject(value)).finish()).toString("hex");
    // field 3, length-delimited (0x1a) holding PodSandboxConfig.hostname (field 2, 0x12) = "h"
    expect(hex("CreateContainerRequest", { sandbox_config: { hostname: "h" } })).toBe("1a03120168");
    // PodSandboxConfig.linux (field 8, 0x42) holding cgroup_parent (field 1, 0x0a) = "x"
    expect(hex("PodSandboxConfig", { linux: { cgroup_parent: "x" } })).toBe("42030a0178");
    // memory_limit_in_bytes: field 4, varint (0x20)
    expect(hex("LinuxContainerResources", { memory_limit_in_bytes: 1 })).toBe("2001");
    // ContainerConfig.log_path: field 11, length-delimited (0x5a)
    expect(hex("ContainerConfig", { log_path: "l" })).toBe("5a016c");
    // ExecSyncRequest.container_id (0x0a) and timeout (field 3, varint 0x18)
    expect(hex("ExecSyncRequest", { container_id: "c", timeout: 5 })).toBe("0a01631805");
    // PullImageRequest.auth (field 2, 0x12) holding AuthConfig.registry_token (field 6, 0x32)
    expect(hex("PullImageRequest", { auth: { registry_token: "t" } })).toBe("1203320174");
    // ImageSpec.user_specified_image is field 18: tag 18<<3|2 = 146 = varint 92 01
    expect(hex("ImageSpec", { user_specified_image: "u" })).toBe("92010175");
  });
});

describe("kubelet/cri/types.ts decoded shapes", () => {
  const root = loadRoot();
  const msg = (name: string): protobuf.Type => root.lookupType(`runtime.v1.${name}`);
  const decodeEmpty = (name: string): unknown => msg(name).toObject(msg(name).decode(new Uint8Array(0)), LOADER_OPTIONS);

  it("ContainerStatus defaults", () => {
    const expected: ContainerStatus = {
      id: "",
      metadata: null,
      state: "CONTAINER_CREATED",
      created_at: "0",
      started_at: "0",
      finished_at: "0",
      exit_code: 0,
      image: null,
      image_ref: "",
      reason: "",
      message: "",
      labels: {},
      annotations: {},
      mounts: [],
      log_path: "",
      resources: null,
      image_id: "",
      user: null,
    };
    expect(decodeEmpty("ContainerStatus")).toEqual(expected);
  });

  it("ExecSyncResponse defaults, with bytes as Buffers", () => {
    const expected: ExecSyncResponse = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), exit_code: 0 };
    const decoded = decodeEmpty("ExecSyncResponse") as ExecSyncResponse;
    expect(decoded).toEqual(expected);
    expect(Buffer.isBuffer(decoded.stdout)).toBe(true);
  });

  it("StatusResponse defaults", () => {
    const expected: StatusResponse = { status: null, info: {}, runtime_handlers: [], features: null };
    expect(decodeEmpty("StatusResponse")).toEqual(expected);
  });

  it("round-trips a PodSandboxConfig", () => {
    const input: Input<PodSandboxConfig> = {
      metadata: { name: "web", uid: "4f1c", namespace: "default", attempt: 1 },
      hostname: "web",
      log_directory: "/var/log/pods/default_web_4f1c",
      dns_config: { servers: ["10.96.0.10"], searches: ["default.svc.cluster.local"], options: ["ndots:5"] },
      port_mappings: [{ protocol: "UDP", container_port: 53, host_port: 5353 }],
      labels: { app: "web" },
      annotations: { "kubernetes.io/config.seen": "now" },
      linux: {
        cgroup_parent: "/kubepods/besteffort/pod4f1c",
        security_context: {
          namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" },
          run_as_user: { value: 0 },
          supplemental_groups: [1000, "2000"],
          seccomp: { profile_type: "RuntimeDefault" },
        },
        sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" },
        resources: { cpu_shares: 2, memory_limit_in_bytes: "9007199254740993" },
      },
      windows: null,
    };
    const expected: PodSandboxConfig = {
      metadata: { name: "web", uid: "4f1c", namespace: "default", attempt: 1 },
      hostname: "web",
      log_directory: "/var/log/pods/default_web_4f1c",
      dns_config: { servers: ["10.96.0.10"], searches: ["default.svc.cluster.local"], options: ["ndots:5"] },
      port_mappings: [{ protocol: "UDP", container_port: 53, host_port: 5353, host_ip: "" }],
      labels: { app: "web" },
      annotations: { "kubernetes.io/config.seen": "now" },
      linux: {
        cgroup_parent: "/kubepods/besteffort/pod4f1c",
        security_context: {
          namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD", target_id: "", userns_options: null },
          selinux_options: null,
          run_as_user: { value: "0" },
          run_as_group: null,
          readonly_rootfs: false,
          supplemental_groups: ["1000", "2000"],
          supplemental_groups_policy: "Merge",
          privileged: false,
          seccomp: { profile_type: "RuntimeDefault", localhost_ref: "" },
          apparmor: null,
          seccomp_profile_path: "",
        },
        sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" },
        overhead: null,
        resources: {
          cpu_period: "0",
          cpu_quota: "0",
          cpu_shares: "2",
          memory_limit_in_bytes: "9007199254740993", // beyond 2^53: survives as a string
          oom_score_adj: "0",
          cpuset_cpus: "",
          cpuset_mems: "",
          hugepage_limits: [],
          unified: {},
          memory_swap_limit_in_bytes: "0",
        },
      },
      windows: null,
    };
    expect(roundTrip(msg("PodSandboxConfig"), input)).toEqual(expected);
  });

  it("round-trips a CreateContainerRequest through the grpc-js method serializers", () => {
    const v1 = loadGrpcPackage();
    const create = (v1.RuntimeService as grpc.ServiceClientConstructor).service.CreateContainer;
    if (!create) throw new Error("CreateContainer missing");

    const request: Input<CreateContainerRequest> = {
      pod_sandbox_id: "sb-1",
      config: {
        metadata: { name: "app", attempt: 2 },
        image: { image: "docker.io/library/nginx:1.27", user_specified_image: "nginx:1.27" },
        command: ["nginx"],
        args: ["-g", "daemon off;"],
        envs: [{ key: "A", value: "1" }],
        mounts: [
          { container_path: "/data", host_path: "/var/lib/kubelet/pods/x/volumes/d", readonly: true, propagation: "PROPAGATION_HOST_TO_CONTAINER" },
        ],
        devices: [{ container_path: "/dev/fuse", host_path: "/dev/fuse", permissions: "rwm" }],
        labels: { "io.kubernetes.container.name": "app" },
        log_path: "app/2.log",
        tty: true,
        linux: {
          resources: { cpu_quota: 50_000, cpu_period: 100_000, memory_limit_in_bytes: 256 * 1024 * 1024, hugepage_limits: [{ page_size: "2MB", limit: 0 }] },
          security_context: {
            capabilities: { add_capabilities: ["NET_ADMIN"], drop_capabilities: ["ALL"] },
            run_as_user: { value: 1000 },
            no_new_privs: true,
            masked_paths: ["/proc/kcore"],
            apparmor: { profile_type: "Localhost", localhost_ref: "k8s-nginx" },
          },
        },
        CDI_devices: [{ name: "vendor.com/gpu=0" }],
      },
      sandbox_config: { metadata: { name: "web", uid: "u", namespace: "ns" }, log_directory: "/var/log/pods/ns_web_u" },
    };

    const bytes = create.requestSerialize(request);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    const decoded = create.requestDeserialize(bytes) as CreateContainerRequest;

    expect(decoded.pod_sandbox_id).toBe("sb-1");
    const config = decoded.config;
    expect(config).not.toBeNull();
    expect(config?.metadata).toEqual({ name: "app", attempt: 2 });
    expect(config?.image).toEqual({
      image: "docker.io/library/nginx:1.27",
      annotations: {},
      user_specified_image: "nginx:1.27",
      runtime_handler: "",
    });
    expect(config?.args).toEqual(["-g", "daemon off;"]);
    expect(config?.working_dir).toBe("");
    expect(config?.envs).toEqual([{ key: "A", value: "1" }]);
    expect(config?.mounts).toEqual([
      {
        container_path: "/data",
        host_path: "/var/lib/kubelet/pods/x/volumes/d",
        readonly: true,
        selinux_relabel: false,
        propagation: "PROPAGATION_HOST_TO_CONTAINER",
        uidMappings: [],
        gidMappings: [],
        recursive_read_only: false,
        image: null,
        image_sub_path: "",
      },
    ]);
    expect(config?.devices).toEqual([{ container_path: "/dev/fuse", host_path: "/dev/fuse", permissions: "rwm" }]);
    expect(config?.annotations).toEqual({});
    expect(config?.log_path).toBe("app/2.log");
    expect([config?.stdin, config?.stdin_once, config?.tty]).toEqual([false, false, true]);
    expect(config?.linux?.resources).toMatchObject({
      cpu_quota: "50000",
      cpu_period: "100000",
      memory_limit_in_bytes: "268435456",
      hugepage_limits: [{ page_size: "2MB", limit: "0" }],
    });
    expect(config?.linux?.security_context).toMatchObject({
      capabilities: { add_capabilities: ["NET_ADMIN"], drop_capabilities: ["ALL"], add_ambient_capabilities: [] },
      privileged: false,
      run_as_user: { value: "1000" },
      run_as_group: null,
      no_new_privs: true,
      masked_paths: ["/proc/kcore"],
      seccomp: null,
      apparmor: { profile_type: "Localhost", localhost_ref: "k8s-nginx" },
      supplemental_groups_policy: "Merge",
    });
    expect(config?.windows).toBeNull();
    expect(config?.CDI_devices).toEqual([{ name: "vendor.com/gpu=0" }]);
    expect(decoded.sandbox_config).toMatchObject({
      metadata: { name: "web", uid: "u", namespace: "ns", attempt: 0 },
      hostname: "",
      log_directory: "/var/log/pods/ns_web_u",
      dns_config: null,
      port_mappings: [],
      linux: null,
    });

    // A decoded message is itself a valid request, and re-encoding it loses nothing.
    const again: Input<CreateContainerRequest> = decoded;
    expect(create.requestDeserialize(create.requestSerialize(again))).toEqual(decoded);
  });
});
