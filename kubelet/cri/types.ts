// TypeScript shapes for deckhand's CRI subset (kubelet/cri/api.proto, package runtime.v1).
//
// The interfaces below describe messages exactly as @grpc/proto-loader decodes them with
//   { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true }
// which is how every CRI client/server in deckhand must load the proto:
//   - field names stay snake_case (and upstream's odd ones stay as spelled: uidMappings, CDI_devices);
//   - every field is present (defaults: true): "" / 0 / false, [] for repeated, {} for maps,
//     null for an unset nested message, the first enum value for an unset enum;
//   - int64/uint64 are decimal strings, typed `Int64` (= `${bigint}`, a subtype of string);
//   - enums are the value names as string-literal unions (see ENUMS). Caveat: protobufjs hands
//     back the bare number for a value this file does not know, so a newer runtime could send one;
//   - bytes are Buffers; maps are Record<string, string> (all CRI maps are map<string, string>);
//   - there are no oneofs in this API, so `oneofs: true` adds nothing.
// The decoded interfaces are the shapes a client receives and a (fake) server's handler receives.
//
// Requests (and anything else you build to be encoded) use `Input<T>`: a deep partial of the
// decoded shape in which every field may be omitted (protobufjs encodes an omitted field as its
// default; explicit `undefined` is accepted too), nested messages may be null, int64 fields also
// take a JS number, and bytes take any Uint8Array. Every decoded message is therefore a valid
// Input of its own type. RuntimeServiceMethods / ImageServiceMethods pair each RPC's Input request
// with its decoded response, for building a typed client generically.
//
// Keep this file in step with api.proto: test/unit/kubelet/cri/proto.test.ts checks ENUMS and the
// decoded default shape of the main messages against the loaded proto.

/**
 * A decoded int64/uint64: proto-loader with `longs: String` yields a decimal string. It reads as a
 * plain string; to build one write `${someBigint}` or a literal ("0") — `String(x)` is only `string`.
 * (In an Input a number is accepted too.)
 */
export type Int64 = `${bigint}`;

/** Decoded shape of a message without fields. */
export type Empty = Record<string, never>;

/**
 * What may be passed where a message of decoded shape T is encoded: every field optional,
 * nested messages nullable, int64 also as number, bytes as any Uint8Array.
 */
export type Input<T> = T extends Int64
  ? Int64 | number
  : T extends Buffer
    ? Uint8Array
    : T extends string | number | boolean | null
      ? T
      : T extends readonly (infer E)[]
        ? readonly Input<E>[]
        : string extends keyof T
          ? T // map<string, string>, or Empty
          : { [K in keyof T]?: Input<T[K]> | undefined };

/** Enum value names in number order (index = wire value). */
export const ENUMS = {
  Protocol: ["TCP", "UDP", "SCTP"],
  MountPropagation: ["PROPAGATION_PRIVATE", "PROPAGATION_HOST_TO_CONTAINER", "PROPAGATION_BIDIRECTIONAL"],
  NamespaceMode: ["POD", "CONTAINER", "NODE", "TARGET"],
  SupplementalGroupsPolicy: ["Merge", "Strict"],
  "SecurityProfile.ProfileType": ["RuntimeDefault", "Unconfined", "Localhost"],
  PodSandboxState: ["SANDBOX_READY", "SANDBOX_NOTREADY"],
  ContainerState: ["CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED", "CONTAINER_UNKNOWN"],
} as const;

export type Protocol = (typeof ENUMS.Protocol)[number];
export type MountPropagation = (typeof ENUMS.MountPropagation)[number];
export type NamespaceMode = (typeof ENUMS.NamespaceMode)[number];
export type SupplementalGroupsPolicy = (typeof ENUMS.SupplementalGroupsPolicy)[number];
/** SecurityProfile.ProfileType */
export type ProfileType = (typeof ENUMS)["SecurityProfile.ProfileType"][number];
export type PodSandboxState = (typeof ENUMS.PodSandboxState)[number];
export type ContainerState = (typeof ENUMS.ContainerState)[number];

// ---------------------------------------------------------------------------------------------
// Version

export interface VersionRequest {
  version: string;
}

export interface VersionResponse {
  version: string;
  runtime_name: string;
  runtime_version: string;
  runtime_api_version: string;
}

// ---------------------------------------------------------------------------------------------
// Shared building blocks

export interface Int64Value {
  value: Int64;
}

export interface UInt64Value {
  value: Int64;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface IDMapping {
  host_id: number;
  container_id: number;
  length: number;
}

export interface UserNamespace {
  mode: NamespaceMode;
  uids: IDMapping[];
  gids: IDMapping[];
}

export interface NamespaceOption {
  network: NamespaceMode;
  pid: NamespaceMode;
  ipc: NamespaceMode;
  target_id: string;
  userns_options: UserNamespace | null;
}

export interface SELinuxOption {
  user: string;
  role: string;
  type: string;
  level: string;
}

export interface SecurityProfile {
  profile_type: ProfileType;
  localhost_ref: string;
}

export interface Capability {
  add_capabilities: string[];
  drop_capabilities: string[];
  add_ambient_capabilities: string[];
}

export interface ImageSpec {
  image: string;
  annotations: Record<string, string>;
  user_specified_image: string; // newer than containerd 1.6 (ignored / left default by it)
  runtime_handler: string; // newer than containerd 1.6 (ignored / left default by it)
}

export interface Mount {
  container_path: string;
  host_path: string;
  readonly: boolean;
  selinux_relabel: boolean;
  propagation: MountPropagation;
  uidMappings: IDMapping[]; // newer than containerd 1.6 (ignored / left default by it)
  gidMappings: IDMapping[]; // newer than containerd 1.6 (ignored / left default by it)
  recursive_read_only: boolean; // newer than containerd 1.6 (ignored / left default by it)
  image: ImageSpec | null; // newer than containerd 1.6 (ignored / left default by it)
  image_sub_path: string; // newer than containerd 1.6 (ignored / left default by it)
}

export interface Device {
  container_path: string;
  host_path: string;
  permissions: string;
}

export interface CDIDevice {
  name: string;
}

export interface HugepageLimit {
  page_size: string;
  limit: Int64;
}

export interface LinuxContainerResources {
  cpu_period: Int64;
  cpu_quota: Int64;
  cpu_shares: Int64;
  memory_limit_in_bytes: Int64;
  oom_score_adj: Int64;
  cpuset_cpus: string;
  cpuset_mems: string;
  hugepage_limits: HugepageLimit[];
  unified: Record<string, string>;
  memory_swap_limit_in_bytes: Int64;
}

export interface WindowsCpuGroupAffinity {
  cpu_mask: Int64;
  cpu_group: number;
}

export interface WindowsContainerResources {
  cpu_shares: Int64;
  cpu_count: Int64;
  cpu_maximum: Int64;
  memory_limit_in_bytes: Int64;
  rootfs_size_in_bytes: Int64;
  affinity_cpus: WindowsCpuGroupAffinity[]; // newer than containerd 1.6 (ignored / left default by it)
}

export interface ContainerResources {
  linux: LinuxContainerResources | null;
  windows: WindowsContainerResources | null;
}

// ---------------------------------------------------------------------------------------------
// Pod sandboxes

export interface DNSConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

export interface PortMapping {
  protocol: Protocol;
  container_port: number;
  host_port: number; // 0: no host port
  host_ip: string;
}

export interface LinuxSandboxSecurityContext {
  namespace_options: NamespaceOption | null;
  selinux_options: SELinuxOption | null;
  run_as_user: Int64Value | null;
  readonly_rootfs: boolean;
  supplemental_groups: Int64[];
  privileged: boolean;
  seccomp_profile_path: string;
  run_as_group: Int64Value | null;
  seccomp: SecurityProfile | null;
  apparmor: SecurityProfile | null;
  supplemental_groups_policy: SupplementalGroupsPolicy; // newer than containerd 1.6 (ignored / left default by it)
}

export interface LinuxPodSandboxConfig {
  cgroup_parent: string;
  security_context: LinuxSandboxSecurityContext | null;
  sysctls: Record<string, string>;
  overhead: LinuxContainerResources | null;
  resources: LinuxContainerResources | null;
}

export interface WindowsNamespaceOption {
  network: NamespaceMode;
}

export interface WindowsSandboxSecurityContext {
  run_as_username: string;
  credential_spec: string;
  host_process: boolean;
  namespace_options: WindowsNamespaceOption | null;
}

export interface WindowsPodSandboxConfig {
  security_context: WindowsSandboxSecurityContext | null;
}

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata | null;
  hostname: string;
  log_directory: string; // e.g. /var/log/pods/<namespace>_<name>_<uid>
  dns_config: DNSConfig | null;
  port_mappings: PortMapping[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  linux: LinuxPodSandboxConfig | null;
  windows: WindowsPodSandboxConfig | null;
}

export interface RunPodSandboxRequest {
  config: PodSandboxConfig | null;
  runtime_handler: string;
}

export interface RunPodSandboxResponse {
  pod_sandbox_id: string;
}

export interface StopPodSandboxRequest {
  pod_sandbox_id: string;
}

export type StopPodSandboxResponse = Empty;

export interface RemovePodSandboxRequest {
  pod_sandbox_id: string;
}

export type RemovePodSandboxResponse = Empty;

export interface PodSandboxStatusRequest {
  pod_sandbox_id: string;
  verbose: boolean;
}

export interface PodIP {
  ip: string;
}

export interface PodSandboxNetworkStatus {
  ip: string;
  additional_ips: PodIP[];
}

export interface Namespace {
  options: NamespaceOption | null;
}

export interface LinuxPodSandboxStatus {
  namespaces: Namespace | null;
}

export interface PodSandboxStatus {
  id: string;
  metadata: PodSandboxMetadata | null;
  state: PodSandboxState;
  created_at: Int64; // ns since the epoch
  network: PodSandboxNetworkStatus | null;
  linux: LinuxPodSandboxStatus | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtime_handler: string;
}

export interface PodSandboxStatusResponse {
  status: PodSandboxStatus | null;
  info: Record<string, string>;
  containers_statuses: ContainerStatus[]; // evented PLEG only; empty from containerd 1.6
  timestamp: Int64; // evented PLEG only; "0" from containerd 1.6
}

export interface PodSandboxStateValue {
  state: PodSandboxState;
}

export interface PodSandboxFilter {
  id: string;
  state: PodSandboxStateValue | null;
  label_selector: Record<string, string>;
}

export interface ListPodSandboxRequest {
  filter: PodSandboxFilter | null;
}

export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata | null;
  state: PodSandboxState;
  created_at: Int64; // ns since the epoch
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtime_handler: string;
}

export interface ListPodSandboxResponse {
  items: PodSandbox[];
}

// ---------------------------------------------------------------------------------------------
// Containers

export interface LinuxContainerSecurityContext {
  capabilities: Capability | null;
  privileged: boolean;
  namespace_options: NamespaceOption | null;
  selinux_options: SELinuxOption | null;
  run_as_user: Int64Value | null;
  run_as_username: string;
  readonly_rootfs: boolean;
  supplemental_groups: Int64[];
  apparmor_profile: string;
  seccomp_profile_path: string;
  no_new_privs: boolean;
  run_as_group: Int64Value | null;
  masked_paths: string[];
  readonly_paths: string[];
  seccomp: SecurityProfile | null;
  apparmor: SecurityProfile | null;
  supplemental_groups_policy: SupplementalGroupsPolicy; // newer than containerd 1.6 (ignored / left default by it)
}

export interface LinuxContainerConfig {
  resources: LinuxContainerResources | null;
  security_context: LinuxContainerSecurityContext | null;
}

export interface WindowsContainerSecurityContext {
  run_as_username: string;
  credential_spec: string;
  host_process: boolean;
}

export interface WindowsContainerConfig {
  resources: WindowsContainerResources | null;
  security_context: WindowsContainerSecurityContext | null;
}

export interface ContainerMetadata {
  name: string;
  attempt: number;
}

export interface ContainerConfig {
  metadata: ContainerMetadata | null;
  image: ImageSpec | null;
  command: string[]; // image ENTRYPOINT override
  args: string[]; // image CMD override
  working_dir: string;
  envs: KeyValue[];
  mounts: Mount[];
  devices: Device[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  log_path: string; // relative to PodSandboxConfig.log_directory
  stdin: boolean;
  stdin_once: boolean;
  tty: boolean;
  linux: LinuxContainerConfig | null;
  windows: WindowsContainerConfig | null;
  CDI_devices: CDIDevice[]; // newer than containerd 1.6 (ignored / left default by it)
}

export interface CreateContainerRequest {
  pod_sandbox_id: string;
  config: ContainerConfig | null;
  sandbox_config: PodSandboxConfig | null;
}

export interface CreateContainerResponse {
  container_id: string;
}

export interface StartContainerRequest {
  container_id: string;
}

export type StartContainerResponse = Empty;

export interface StopContainerRequest {
  container_id: string;
  timeout: Int64; // grace period in seconds; 0 kills at once
}

export type StopContainerResponse = Empty;

export interface RemoveContainerRequest {
  container_id: string;
}

export type RemoveContainerResponse = Empty;

export interface ContainerStateValue {
  state: ContainerState;
}

export interface ContainerFilter {
  id: string;
  state: ContainerStateValue | null;
  pod_sandbox_id: string;
  label_selector: Record<string, string>;
}

export interface ListContainersRequest {
  filter: ContainerFilter | null;
}

export interface Container {
  id: string;
  pod_sandbox_id: string;
  metadata: ContainerMetadata | null;
  image: ImageSpec | null;
  image_ref: string;
  state: ContainerState;
  created_at: Int64; // ns since the epoch
  labels: Record<string, string>;
  annotations: Record<string, string>;
  image_id: string; // newer than containerd 1.6 (ignored / left default by it)
}

export interface ListContainersResponse {
  containers: Container[];
}

export interface ContainerStatusRequest {
  container_id: string;
  verbose: boolean;
}

export interface LinuxContainerUser {
  uid: Int64;
  gid: Int64;
  supplemental_groups: Int64[];
}

export interface ContainerUser {
  linux: LinuxContainerUser | null;
}

export interface ContainerStatus {
  id: string;
  metadata: ContainerMetadata | null;
  state: ContainerState;
  created_at: Int64; // ns since the epoch
  started_at: Int64; // ns since the epoch; 0 if never started
  finished_at: Int64; // ns since the epoch; 0 if still running
  exit_code: number;
  image: ImageSpec | null;
  image_ref: string;
  reason: string; // "OOMKilled" after a cgroup OOM kill
  message: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  mounts: Mount[];
  log_path: string;
  resources: ContainerResources | null;
  image_id: string; // newer than containerd 1.6 (ignored / left default by it)
  user: ContainerUser | null; // newer than containerd 1.6 (ignored / left default by it)
}

export interface ContainerStatusResponse {
  status: ContainerStatus | null;
  info: Record<string, string>;
}

export interface UpdateContainerResourcesRequest {
  container_id: string;
  linux: LinuxContainerResources | null;
  windows: WindowsContainerResources | null;
  annotations: Record<string, string>;
}

export type UpdateContainerResourcesResponse = Empty;

export interface ReopenContainerLogRequest {
  container_id: string;
}

export type ReopenContainerLogResponse = Empty;

// ---------------------------------------------------------------------------------------------
// Exec / attach / port-forward

export interface ExecSyncRequest {
  container_id: string;
  cmd: string[];
  timeout: Int64; // seconds; 0 = no timeout
}

export interface ExecSyncResponse {
  stdout: Buffer;
  stderr: Buffer;
  exit_code: number;
}

export interface ExecRequest {
  container_id: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface ExecResponse {
  url: string;
}

export interface AttachRequest {
  container_id: string;
  stdin: boolean;
  tty: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface AttachResponse {
  url: string;
}

export interface PortForwardRequest {
  pod_sandbox_id: string;
  port: number[];
}

export interface PortForwardResponse {
  url: string;
}

// ---------------------------------------------------------------------------------------------
// Stats

export interface FilesystemIdentifier {
  mountpoint: string;
}

export interface FilesystemUsage {
  timestamp: Int64;
  fs_id: FilesystemIdentifier | null;
  used_bytes: UInt64Value | null;
  inodes_used: UInt64Value | null;
}

export interface WindowsFilesystemUsage {
  timestamp: Int64;
  fs_id: FilesystemIdentifier | null;
  used_bytes: UInt64Value | null;
}

export interface CpuUsage {
  timestamp: Int64;
  usage_core_nano_seconds: UInt64Value | null;
  usage_nano_cores: UInt64Value | null;
}

export interface WindowsCpuUsage {
  timestamp: Int64;
  usage_core_nano_seconds: UInt64Value | null;
  usage_nano_cores: UInt64Value | null;
}

export interface MemoryUsage {
  timestamp: Int64;
  working_set_bytes: UInt64Value | null;
  available_bytes: UInt64Value | null;
  usage_bytes: UInt64Value | null;
  rss_bytes: UInt64Value | null;
  page_faults: UInt64Value | null;
  major_page_faults: UInt64Value | null;
}

export interface WindowsMemoryUsage {
  timestamp: Int64;
  working_set_bytes: UInt64Value | null;
  available_bytes: UInt64Value | null;
  page_faults: UInt64Value | null;
  commit_memory_bytes: UInt64Value | null;
}

export interface SwapUsage {
  timestamp: Int64;
  swap_available_bytes: UInt64Value | null;
  swap_usage_bytes: UInt64Value | null;
}

export interface NetworkInterfaceUsage {
  name: string;
  rx_bytes: UInt64Value | null;
  rx_errors: UInt64Value | null;
  tx_bytes: UInt64Value | null;
  tx_errors: UInt64Value | null;
}

export interface WindowsNetworkInterfaceUsage {
  name: string;
  rx_bytes: UInt64Value | null;
  rx_packets_dropped: UInt64Value | null;
  tx_bytes: UInt64Value | null;
  tx_packets_dropped: UInt64Value | null;
}

export interface NetworkUsage {
  timestamp: Int64;
  default_interface: NetworkInterfaceUsage | null;
  interfaces: NetworkInterfaceUsage[];
}

export interface WindowsNetworkUsage {
  timestamp: Int64;
  default_interface: WindowsNetworkInterfaceUsage | null;
  interfaces: WindowsNetworkInterfaceUsage[];
}

export interface ProcessUsage {
  timestamp: Int64;
  process_count: UInt64Value | null;
}

export interface WindowsProcessUsage {
  timestamp: Int64;
  process_count: UInt64Value | null;
}

export interface ContainerAttributes {
  id: string;
  metadata: ContainerMetadata | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface ContainerStats {
  attributes: ContainerAttributes | null;
  cpu: CpuUsage | null;
  memory: MemoryUsage | null;
  writable_layer: FilesystemUsage | null;
  swap: SwapUsage | null; // newer than containerd 1.6 (ignored / left default by it)
}

export interface WindowsContainerStats {
  attributes: ContainerAttributes | null;
  cpu: WindowsCpuUsage | null;
  memory: WindowsMemoryUsage | null;
  writable_layer: WindowsFilesystemUsage | null;
}

export interface ContainerStatsRequest {
  container_id: string;
}

export interface ContainerStatsResponse {
  stats: ContainerStats | null;
}

export interface ContainerStatsFilter {
  id: string;
  pod_sandbox_id: string;
  label_selector: Record<string, string>;
}

export interface ListContainerStatsRequest {
  filter: ContainerStatsFilter | null;
}

export interface ListContainerStatsResponse {
  stats: ContainerStats[];
}

export interface PodSandboxAttributes {
  id: string;
  metadata: PodSandboxMetadata | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface LinuxPodSandboxStats {
  cpu: CpuUsage | null;
  memory: MemoryUsage | null;
  network: NetworkUsage | null;
  process: ProcessUsage | null;
  containers: ContainerStats[];
}

export interface WindowsPodSandboxStats {
  cpu: WindowsCpuUsage | null;
  memory: WindowsMemoryUsage | null;
  network: WindowsNetworkUsage | null;
  process: WindowsProcessUsage | null;
  containers: WindowsContainerStats[];
}

export interface PodSandboxStats {
  attributes: PodSandboxAttributes | null;
  linux: LinuxPodSandboxStats | null;
  windows: WindowsPodSandboxStats | null;
}

export interface PodSandboxStatsRequest {
  pod_sandbox_id: string;
}

export interface PodSandboxStatsResponse {
  stats: PodSandboxStats | null;
}

export interface PodSandboxStatsFilter {
  id: string;
  label_selector: Record<string, string>;
}

export interface ListPodSandboxStatsRequest {
  filter: PodSandboxStatsFilter | null;
}

export interface ListPodSandboxStatsResponse {
  stats: PodSandboxStats[];
}

// ---------------------------------------------------------------------------------------------
// Runtime config and status

export interface NetworkConfig {
  pod_cidr: string;
}

export interface RuntimeConfig {
  network_config: NetworkConfig | null;
}

export interface UpdateRuntimeConfigRequest {
  runtime_config: RuntimeConfig | null;
}

export type UpdateRuntimeConfigResponse = Empty;

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface RuntimeStatus {
  conditions: RuntimeCondition[];
}

export interface RuntimeHandlerFeatures {
  recursive_read_only_mounts: boolean;
  user_namespaces: boolean;
}

export interface RuntimeHandler {
  name: string;
  features: RuntimeHandlerFeatures | null;
}

export interface RuntimeFeatures {
  supplemental_groups_policy: boolean;
}

export interface StatusRequest {
  verbose: boolean;
}

export interface StatusResponse {
  status: RuntimeStatus | null;
  info: Record<string, string>;
  runtime_handlers: RuntimeHandler[]; // newer than containerd 1.6 (ignored / left default by it)
  features: RuntimeFeatures | null; // newer than containerd 1.6 (ignored / left default by it)
}

// ---------------------------------------------------------------------------------------------
// Images

export interface ImageFilter {
  image: ImageSpec | null;
}

export interface ListImagesRequest {
  filter: ImageFilter | null;
}

export interface Image {
  id: string;
  repo_tags: string[];
  repo_digests: string[];
  size: Int64;
  uid: Int64Value | null;
  username: string;
  spec: ImageSpec | null;
  pinned: boolean; // newer than containerd 1.6 (ignored / left default by it)
}

export interface ListImagesResponse {
  images: Image[];
}

export interface ImageStatusRequest {
  image: ImageSpec | null;
  verbose: boolean;
}

export interface ImageStatusResponse {
  image: Image | null; // null when the image is not present
  info: Record<string, string>;
}

export interface AuthConfig {
  username: string;
  password: string;
  auth: string;
  server_address: string;
  identity_token: string;
  registry_token: string;
}

export interface PullImageRequest {
  image: ImageSpec | null;
  auth: AuthConfig | null;
  sandbox_config: PodSandboxConfig | null;
}

export interface PullImageResponse {
  image_ref: string;
}

export interface RemoveImageRequest {
  image: ImageSpec | null;
}

export type RemoveImageResponse = Empty;

export type ImageFsInfoRequest = Empty;

export interface ImageFsInfoResponse {
  image_filesystems: FilesystemUsage[];
  container_filesystems: FilesystemUsage[]; // newer than containerd 1.6 (ignored / left default by it)
}

// ---------------------------------------------------------------------------------------------
// Services

/** runtime.v1.RuntimeService: RPC name -> [request to send, decoded response]. All RPCs are unary. */
export interface RuntimeServiceMethods {
  Version: [request: Input<VersionRequest>, response: VersionResponse];
  RunPodSandbox: [request: Input<RunPodSandboxRequest>, response: RunPodSandboxResponse];
  StopPodSandbox: [request: Input<StopPodSandboxRequest>, response: StopPodSandboxResponse];
  RemovePodSandbox: [request: Input<RemovePodSandboxRequest>, response: RemovePodSandboxResponse];
  PodSandboxStatus: [request: Input<PodSandboxStatusRequest>, response: PodSandboxStatusResponse];
  ListPodSandbox: [request: Input<ListPodSandboxRequest>, response: ListPodSandboxResponse];
  CreateContainer: [request: Input<CreateContainerRequest>, response: CreateContainerResponse];
  StartContainer: [request: Input<StartContainerRequest>, response: StartContainerResponse];
  StopContainer: [request: Input<StopContainerRequest>, response: StopContainerResponse];
  RemoveContainer: [request: Input<RemoveContainerRequest>, response: RemoveContainerResponse];
  ListContainers: [request: Input<ListContainersRequest>, response: ListContainersResponse];
  ContainerStatus: [request: Input<ContainerStatusRequest>, response: ContainerStatusResponse];
  UpdateContainerResources: [request: Input<UpdateContainerResourcesRequest>, response: UpdateContainerResourcesResponse];
  ReopenContainerLog: [request: Input<ReopenContainerLogRequest>, response: ReopenContainerLogResponse];
  ExecSync: [request: Input<ExecSyncRequest>, response: ExecSyncResponse];
  Exec: [request: Input<ExecRequest>, response: ExecResponse];
  Attach: [request: Input<AttachRequest>, response: AttachResponse];
  PortForward: [request: Input<PortForwardRequest>, response: PortForwardResponse];
  ContainerStats: [request: Input<ContainerStatsRequest>, response: ContainerStatsResponse];
  ListContainerStats: [request: Input<ListContainerStatsRequest>, response: ListContainerStatsResponse];
  PodSandboxStats: [request: Input<PodSandboxStatsRequest>, response: PodSandboxStatsResponse];
  ListPodSandboxStats: [request: Input<ListPodSandboxStatsRequest>, response: ListPodSandboxStatsResponse];
  UpdateRuntimeConfig: [request: Input<UpdateRuntimeConfigRequest>, response: UpdateRuntimeConfigResponse];
  Status: [request: Input<StatusRequest>, response: StatusResponse];
}

/** runtime.v1.ImageService: RPC name -> [request to send, decoded response]. All RPCs are unary. */
export interface ImageServiceMethods {
  ListImages: [request: Input<ListImagesRequest>, response: ListImagesResponse];
  ImageStatus: [request: Input<ImageStatusRequest>, response: ImageStatusResponse];
  PullImage: [request: Input<PullImageRequest>, response: PullImageResponse];
  RemoveImage: [request: Input<RemoveImageRequest>, response: RemoveImageResponse];
  ImageFsInfo: [request: Input<ImageFsInfoRequest>, response: ImageFsInfoResponse];
}

export type RuntimeServiceMethod = keyof RuntimeServiceMethods;
export type ImageServiceMethod = keyof ImageServiceMethods;
