// What the reconciler needs to know about a service: how many groups, how large, and how to
// render one group's members once the platform has given them addresses.
import type { Endpoint, GroupRef, GroupTemplate } from './group.js';

/** How an engine's streams report the ids of the tokens they send (for continuing them elsewhere). */
export type StreamTokenIds = 'llama-server' | 'vllm';

/** spec.rollout: how many groups may be down, and how many extra may exist, while a service rolls. */
export interface RolloutPolicy {
  maxUnavailable: number;
  maxSurge: number;
}

export type AutoscalingPolicyName = 'ahead' | 'reactive';

/** spec.autoscaling as the decision reads it: durations in milliseconds, defaults filled in. */
export interface Autoscaling {
  minReplicas: number;
  maxReplicas: number;
  initialReplicas: number;
  /** Ongoing + queued requests per replica to aim for. */
  target: number;
  upscaleDelayMs: number;
  downscaleDelayMs: number;
  scaleToZeroAfterMs: number;
  upscaleSmoothing: number;
  downscaleSmoothing: number;
  lookBackMs: number;
  policy: AutoscalingPolicyName;
}

/** One node's share of a group's model. */
export interface NodeShare {
  /** Transformer layers [from, to). */
  layers: [number, number];
  weightBytes: number;
  /** The KV cache for the engine's whole context on this node's layers. */
  kvCacheBytes: number;
}

export interface ServiceTemplate {
  name: string;
  servedName: string;
  replicas: number;
  /** Members per group (leader + workers). */
  size: number;
  /** Identifies what the groups' members run; a new hash rolls the groups over one by one. */
  hash: string;
  rollout: RolloutPolicy;
  /** Requests one group serves at once (the engine's sequence slots); the gateway queues the rest. */
  slots: number;
  /** Its members run the model on GPUs (spec.resources.gpu): the engine decodes its slots as one batch. */
  accelerated?: boolean;
  /** A cached prompt of its engine serves one request at a time (Backend.exclusiveCache). */
  exclusiveCache?: boolean;
  /** Members bind wildcard ports: the platform gives the group a network of its own. */
  isolated?: boolean;
  /** How the engine's streams report token ids, for the gateway to continue them on another group. */
  tokenIds?: StreamTokenIds;
  /** spec.autoscaling: an autoscaler owns `replicas`. */
  autoscaling?: Autoscaling;
  /** What each member holds, leader first, as the planner splits the model. */
  split?: NodeShare[];
  render(group: GroupRef, endpoints: Endpoint[]): GroupTemplate;
}
