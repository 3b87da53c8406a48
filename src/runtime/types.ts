// The vocabulary shared by the group planner, the reconciler and every platform (local
// processes now, Kubernetes pods next). Nothing here does I/O.
import type { RestartPolicy, StartupPolicy } from '../spec/schema.js';

export type Role = 'leader' | 'worker';

/** One group = one replica of a service: the leader (index 0) and its workers (1..size-1). */
export interface GroupRef {
  service: string;
  replica: number;
}

/** Where a member listens: its node address and the port its engine serves on. */
export interface Endpoint {
  host: string;
  port: number;
}

export type Probe = { kind: 'http'; path: string } | { kind: 'tcp' };

/** What one member runs, platform-neutral (a pod template, or a local process). */
export interface MemberTemplate {
  index: number;
  role: Role;
  endpoint: Endpoint;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Threads the member's engine may use (spec.resources.cpu, rounded up). */
  cpu?: number;
  readiness: Probe;
}

export interface GroupTemplate {
  members: MemberTemplate[];
  startupPolicy: StartupPolicy;
  restartPolicy: RestartPolicy;
  /** A member not ready this long after its creation has failed (spec.startupTimeout). */
  startupTimeoutMs: number;
  /** Changes whenever anything a member runs changes: a different hash means a rollout. */
  hash: string;
}

export type MemberPhase = 'Running' | 'Exited';

/** A member as the platform sees it. Absent members are simply not listed. */
export interface ObservedMember {
  index: number;
  phase: MemberPhase;
  ready: boolean;
  templateHash: string;
  /** When the platform created it (ms since the epoch). */
  createdAt: number;
  /** It has been ready at least once (a pod container's `started`): its startup deadline no longer applies. */
  started: boolean;
  /** Why it exited, e.g. "exit code 1" or "signal SIGKILL". */
  exitReason?: string;
  pid?: number;
}

/** What the reconciler remembers about a group between observations (CRD status on Kubernetes). */
export interface GroupStatus {
  restarts: number;
  /** Failures since the group was last Ready: the back-off grows with these. */
  consecutiveFailures?: number;
  lastFailure?: { at: number; reason: string };
  /** No member is created before this time (exponential back-off after a failure). */
  backoffUntil?: number;
}

/** The operations every platform provides; group semantics live above this line, once. */
export interface Platform {
  /** Where each member of a group will listen; stable for the life of the group. */
  endpoints(group: GroupRef, size: number): Promise<Endpoint[]>;
  create(group: GroupRef, member: MemberTemplate, templateHash: string): Promise<void>;
  /** Deletes a member and waits until it is gone. Deleting an absent member is not an error. */
  delete(group: GroupRef, index: number): Promise<void>;
  observe(group: GroupRef): Promise<ObservedMember[]>;
  /** Releases what endpoints() reserved for a group that is gone for good. */
  release(group: GroupRef): Promise<void>;
}
