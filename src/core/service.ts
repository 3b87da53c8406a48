// What the reconciler needs to know about a service: how many groups, how large, and how to
// render one group's members once the platform has given them addresses.
import type { StreamTokenIds } from '../engine/template.js';
import type { Autoscaling } from '../autoscaler/decide.js';
import type { RolloutPolicy } from '../controller/service-plan.js';
import type { Endpoint, GroupRef, GroupTemplate } from './group.js';

export interface ServiceTemplate {
  name: string;
  servedName: string;
  replicas: number;
  /** Members per group (leader + workers). */
  size: number;
  /** Identifies everything the groups run; a new hash rolls the groups over one by one. */
  hash: string;
  rollout: RolloutPolicy;
  /** Requests one group serves at once (the engine's sequence slots); the gateway queues the rest. */
  slots: number;
  /** Members bind wildcard ports: the platform gives the group a network of its own. */
  isolated?: boolean;
  /** How the engine's streams report token ids, for the gateway to continue them on another group. */
  tokenIds?: StreamTokenIds;
  /** spec.autoscaling: an autoscaler owns `replicas`. */
  autoscaling?: Autoscaling;
  render(group: GroupRef, endpoints: Endpoint[]): GroupTemplate;
}

/** The environment every member gets, as LeaderWorkerSet sets it. */
export function groupEnv(endpoints: Endpoint[], index: number): Record<string, string> {
  return {
    LWS_LEADER_ADDRESS: endpoints[0]!.host,
    LWS_GROUP_SIZE: String(endpoints.length),
    LWS_WORKER_INDEX: String(index),
  };
}
