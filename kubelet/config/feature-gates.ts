/**
 * The feature gates the kubelet's `featureGates` (and `--feature-gates`) accept: a curated list of the
 * node-side gates of Kubernetes v1.35 with their default and stage. Upstream rejects a gate it does not know
 * ("unrecognized feature gate") and a locked gate set against its locked value; so do we. The gates the
 * configuration itself consults (CustomCPUCFSQuotaPeriod, GracefulNodeShutdown, KubeletCrashLoopBackOffMax,
 * KubeletEnsureSecretPulledImages, NodeLogQuery, RotateKubeletServerCertificate, ImageMaximumGCAge, NodeSwap,
 * KubeletTracing, MemoryQoS) were checked against kubernetes/website's feature-gate pages; the others only need
 * their name to be right, since deckhand's behaviour does not depend on them.
 */

export type GateStage = "ALPHA" | "BETA" | "GA" | "DEPRECATED";

export interface FeatureGateSpec {
  default: boolean;
  stage: GateStage;
  /** GA (or deprecated) gates that can no longer be set against their default. */
  locked?: boolean;
}

export const KNOWN_FEATURE_GATES: Readonly<Record<string, FeatureGateSpec>> = {
  AllAlpha: { default: false, stage: "ALPHA" },
  AllBeta: { default: false, stage: "BETA" },
  ClusterTrustBundleProjection: { default: false, stage: "BETA" },
  ContainerCheckpoint: { default: true, stage: "BETA" },
  ContainerRestartRules: { default: true, stage: "BETA" },
  ContainerStopSignals: { default: false, stage: "ALPHA" },
  ContextualLogging: { default: true, stage: "BETA" },
  CPUManagerPolicyAlphaOptions: { default: false, stage: "ALPHA" },
  CPUManagerPolicyBetaOptions: { default: true, stage: "BETA" },
  CPUManagerPolicyOptions: { default: true, stage: "BETA" },
  CRIListStreaming: { default: false, stage: "ALPHA" },
  CustomCPUCFSQuotaPeriod: { default: false, stage: "ALPHA" },
  DisableCPUQuotaWithExclusiveCPUs: { default: true, stage: "BETA" },
  DynamicResourceAllocation: { default: true, stage: "GA" },
  EventedPLEG: { default: false, stage: "ALPHA" },
  ExecProbeTimeout: { default: true, stage: "GA" },
  GracefulNodeShutdown: { default: true, stage: "BETA" },
  GracefulNodeShutdownBasedOnPodPriority: { default: true, stage: "BETA" },
  ImageMaximumGCAge: { default: true, stage: "GA", locked: true },
  ImageVolume: { default: false, stage: "BETA" },
  InPlacePodVerticalScaling: { default: true, stage: "BETA" },
  KubeletCgroupDriverFromCRI: { default: true, stage: "GA", locked: true },
  KubeletCrashLoopBackOffMax: { default: true, stage: "BETA" },
  KubeletEnsureSecretPulledImages: { default: true, stage: "BETA" },
  KubeletFineGrainedAuthz: { default: true, stage: "BETA" },
  KubeletInUserNamespace: { default: false, stage: "ALPHA" },
  KubeletPodResourcesDynamicResources: { default: false, stage: "ALPHA" },
  KubeletPodResourcesGet: { default: false, stage: "ALPHA" },
  KubeletSeparateDiskGC: { default: true, stage: "BETA" },
  KubeletTracing: { default: true, stage: "GA", locked: true },
  LocalStorageCapacityIsolationFSQuotaMonitoring: { default: false, stage: "BETA" },
  LoggingAlphaOptions: { default: false, stage: "ALPHA" },
  LoggingBetaOptions: { default: true, stage: "BETA" },
  MemoryQoS: { default: false, stage: "ALPHA" },
  NodeLogQuery: { default: false, stage: "BETA" },
  NodeSwap: { default: true, stage: "GA", locked: true },
  PodAndContainerStatsFromCRI: { default: false, stage: "ALPHA" },
  PodLevelResources: { default: true, stage: "BETA" },
  PodLifecycleSleepActionAllowZero: { default: true, stage: "BETA" },
  PodObservedGenerationTracking: { default: true, stage: "BETA" },
  PodReadyToStartContainersCondition: { default: true, stage: "BETA" },
  ProcMountType: { default: true, stage: "BETA" },
  RecursiveReadOnlyMounts: { default: true, stage: "BETA" },
  ReduceDefaultCrashLoopBackOffDecay: { default: false, stage: "ALPHA" },
  ResourceHealthStatus: { default: false, stage: "ALPHA" },
  RotateKubeletServerCertificate: { default: true, stage: "BETA" },
  SELinuxMountReadWriteOncePod: { default: true, stage: "BETA" },
  SidecarContainers: { default: true, stage: "GA", locked: true },
  SupplementalGroupsPolicy: { default: true, stage: "BETA" },
  TopologyManagerPolicyAlphaOptions: { default: false, stage: "ALPHA" },
  TopologyManagerPolicyBetaOptions: { default: true, stage: "BETA" },
  TopologyManagerPolicyOptions: { default: true, stage: "GA" },
  UserNamespacesSupport: { default: true, stage: "BETA" },
};

/** Upstream's featuregate.SetFromMap checks: each problem names the gate. */
export function featureGateProblems(gates: Readonly<Record<string, boolean>>): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(gates)) {
    const spec = KNOWN_FEATURE_GATES[name];
    if (!spec) {
      problems.push(`unrecognized feature gate: ${name}`);
      continue;
    }
    if (spec.locked && value !== spec.default) {
      problems.push(`cannot set feature gate ${name} to ${value}, feature is locked to ${spec.default}`);
    }
  }
  return problems;
}

/** Whether a gate is on given the configured gates (AllAlpha / AllBeta apply to gates not set explicitly). */
export function gateEnabled(gates: Readonly<Record<string, boolean>>, name: string): boolean {
  const explicit = gates[name];
  if (explicit !== undefined) return explicit;
  const spec = KNOWN_FEATURE_GATES[name];
  if (!spec) return false;
  if (spec.stage === "ALPHA" && gates["AllAlpha"] === true) return true;
  if (spec.stage === "BETA" && gates["AllBeta"] !== undefined) return gates["AllBeta"];
  return spec.default;
}
