/**
 * What the autoscaler needs from the Kubernetes API, as plain types: the gateway Deployment's scale
 * and rollout state, its pods, two patches, and the Lease. k8s-client.ts implements these over
 * @kubernetes/client-node; nothing else here knows that library.
 */

/** The scale subresource (apps/v1 deployments/{name}/scale). */
export interface ScaleView {
  specReplicas: number;
  statusReplicas: number;
  /** status.selector: a label selector string (`a=b,c=d`). */
  selector: string;
  resourceVersion: string;
}

/** What the Deployment's status says about a rollout. */
export interface RolloutView {
  generation: number;
  observedGeneration: number;
  specReplicas: number;
  replicas: number;
  updatedReplicas: number;
  readyReplicas: number;
  availableReplicas: number;
}

export interface GatewayPod {
  name: string;
  uid: string;
  /** status.podIP; null until scheduled. */
  ip: string | null;
  ready: boolean;
  /** metadata.deletionTimestamp is set, or the pod has failed or succeeded: no longer part of the fleet. */
  terminating: boolean;
  createdMs: number;
  /** lastTransitionTime of the Ready condition while it is True. */
  readySinceMs: number | null;
  /** Sum of the containers' CPU requests, in cores; null when none is set. */
  cpuRequestCores: number | null;
  /** The roomcast.io/metrics-port annotation, when set. */
  metricsPort: number | null;
  /** The controller.kubernetes.io/pod-deletion-cost annotation, when set. */
  deletionCost: string | null;
}

export interface ScaleTarget {
  readScale(): Promise<ScaleView>;
  readRollout(): Promise<RolloutView>;
  listPods(selector: string): Promise<GatewayPod[]>;
  /**
   * Sets spec.replicas (merge patch of the scale subresource), only if the scale is still at
   * `resourceVersion`: KubeApiError 409 when someone changed it since it was read.
   */
  patchReplicas(replicas: number, resourceVersion: string): Promise<void>;
  /** Sets (a string) or removes (null) the pod-deletion-cost annotation (merge patch of the pod). */
  setDeletionCost(podName: string, cost: string | null): Promise<void>;
}

export interface LeaseRecord {
  holderIdentity: string | null;
  leaseDurationSeconds: number;
  acquireTimeMs: number | null;
  renewTimeMs: number | null;
  leaseTransitions: number;
  /** Set on records read from the API; replace() sends it as the precondition. */
  resourceVersion?: string;
}

export interface LeaseStore {
  /** The Lease, or null when it does not exist. */
  get(): Promise<LeaseRecord | null>;
  /** Creates the Lease; KubeApiError 409 when someone else did first. */
  create(record: LeaseRecord): Promise<LeaseRecord>;
  /** Replaces the Lease if its resourceVersion is still `record.resourceVersion`; KubeApiError 409 otherwise. */
  replace(record: LeaseRecord): Promise<LeaseRecord>;
}

/** A failed API call, with the HTTP status and the Status object's reason and message. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(readonly status: number, readonly reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export const DELETION_COST_ANNOTATION = 'controller.kubernetes.io/pod-deletion-cost';
export const METRICS_PORT_ANNOTATION = 'roomcast.io/metrics-port';
