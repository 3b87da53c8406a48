// What a reconciler shows of its services (and the gateway, the autoscaler and the CLI read):
// plain data, no behaviour.
import type { Endpoint, Role } from './group.js';
import type { NodeShare, StreamTokenIds } from './service.js';

/** A group's phase as the group planner decides it from what it observes. */
export type GroupPhase = 'Pending' | 'Starting' | 'Ready' | 'Recreating' | 'BackingOff' | 'Updating' | 'Failed';

export type MemberState = 'Pending' | 'Starting' | 'Ready' | 'Exited' | 'Terminating';

export interface MemberSnapshot {
  index: number;
  role: Role;
  address: string;
  state: MemberState;
  pid?: number;
}

export interface GroupSnapshot {
  replica: number;
  phase: GroupPhase | 'Deleting';
  /** The leader's endpoint: where the group serves. */
  leader: Endpoint;
  restarts: number;
  lastFailure?: { at: number; reason: string };
  /** Why the group is Failed (past spec.failurePolicy). */
  failed?: string;
  /** The template its members run (absent while it has none); differs from the service's while it rolls. */
  templateHash?: string;
  /** When its oldest current member was created (ms): where a start that is under way began. */
  createdAt?: number;
  members: MemberSnapshot[];
}

export interface ServiceSnapshot {
  name: string;
  servedName: string;
  replicas: number;
  /** Requests one group serves at once. */
  slots: number;
  /** On GPUs: its engine decodes its slots as one batch. */
  accelerated?: boolean;
  /** A cached prompt of its engine serves one request at a time. */
  exclusiveCache?: boolean;
  tokenIds?: StreamTokenIds;
  /** How long its groups took from creation to Ready: the median of the last few starts. */
  startupMs?: number;
  templateHash: string;
  groups: GroupSnapshot[];
  /** What each node of a group holds, leader first, as the planner splits the model (absent: the engine decides). */
  split?: NodeShare[];
  /** Present when an autoscaler owns `replicas`. */
  autoscaling?: { minReplicas: number; maxReplicas: number; last?: ScaleDecision };
}

/** An autoscaler's change of a service's replicas, and why. */
export interface ScaleDecision {
  at: number;
  from: number;
  to: number;
  reason: string;
}
