// The vocabulary shared by the group planner, the reconciler and every platform (local processes,
// Kubernetes pods), and the ports the reconciler reads and writes through. Contracts only: no
// imports, no I/O.

/** spec.startupPolicy: which members are created first (group-plan.ts). */
export type StartupPolicy = 'LeaderCreated' | 'LeaderReady' | 'WorkersReady';
/** spec.restartPolicy: a member's exit recreates the whole group, or only that member. */
export type RestartPolicy = 'RecreateGroupOnPodRestart' | 'None';

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
  /** Where clients outside the group (the gateway, probes) reach it, when not at host:port. */
  external?: Endpoint;
}

/** How a member is known ready: its HTTP path answers, its port accepts (checked until it first does: some servers take one client at a time), or (a worker with no API) it runs. */
export type Probe = { kind: 'http'; path: string } | { kind: 'tcp' } | { kind: 'running' };

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
  /** A member not placed on a node this long after its creation has failed (spec.scheduling.placementTimeout). */
  placementTimeoutMs: number;
  /** More than `maxRestarts` recreations within `windowMs` and the group is Failed (spec.failurePolicy). */
  failurePolicy: { maxRestarts: number; windowMs: number };
  /** Changes whenever anything a member runs changes: a different hash means a rollout. */
  hash: string;
}

export type MemberPhase = 'Running' | 'Exited';

/** A member as the platform sees it. Absent members are simply not listed. */
export interface ObservedMember {
  replica: number;
  index: number;
  /** Identifies this incarnation of the member (a pod's uid): a recreated member has a new one. */
  uid: string;
  /** Being deleted (a pod's deletionTimestamp); it still holds its name and resources. */
  terminating: boolean;
  /** Placed on a node; `pendingReason` says why not (a scheduler's message). */
  scheduled: boolean;
  pendingReason?: string;
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

/**
 * What the reconciler remembers about a group between observations, persisted by a StatusStore
 * (the custom resource's status on Kubernetes) so that a restarted reconciler carries on.
 */
export interface GroupStatus {
  restarts: number;
  /** Failures since the group was last Ready: the back-off grows with these. */
  consecutiveFailures?: number;
  lastFailure?: { at: number; reason: string };
  /** No member is created before this time (exponential back-off after a failure). */
  backoffUntil?: number;
  /** The current incarnation's members seen so far, index → uid: a listed member that vanishes was lost. */
  members?: Record<string, string>;
  /** Uids whose failure was already counted: a stale observation of the same exit counts once. */
  counted?: string[];
  /** When recent failures happened (ms), within spec.failurePolicy's window. */
  recentFailures?: number[];
  /** Past the restart budget: no recreation while the template hash is this one. */
  failed?: { templateHash: string; reason: string };
}

/** How a group is laid out: what its group-level objects depend on. */
export interface GroupShape {
  /** Members per group. */
  size: number;
  /** The engine binds wildcard ports: the group needs a network of its own (a pod has one already). */
  isolated: boolean;
}

/**
 * The operations every platform provides; group semantics live above this line, once. Every call
 * is idempotent and checked against what the platform observes, so a pass may repeat any of them.
 */
export interface Platform {
  /**
   * Makes the group-level objects exist as they should (addresses, a network namespace, a headless
   * Service and a NetworkPolicy), re-creating any that went; returns where each member listens,
   * stable for the life of the group.
   */
  ensureGroup(group: GroupRef, shape: GroupShape): Promise<Endpoint[]>;
  /** Removes the group-level objects of a group that is gone for good. */
  releaseGroup(group: GroupRef): Promise<void>;
  /** Creates a member; a member that exists already is left as it is. */
  create(group: GroupRef, member: MemberTemplate, templateHash: string): Promise<void>;
  /** Starts deleting a member and returns; it is observed `terminating` until it is gone. */
  delete(group: GroupRef, index: number): Promise<void>;
  /** Every member of every group of a service, from the platform's cache (no request per group). */
  observe(service: string): Promise<ObservedMember[]>;
  /** Calls `listener` with a service's name whenever something of it changed (an exit, readiness, a deleted object). */
  onChange(listener: (service: string) => void): void;
}

/**
 * Where the planner state of groups (restarts, back-off, Failed) lives between reconciler
 * lifetimes. `load` is read on every pass; `save` writes what changed, and fails (to be retried
 * on a fresh read) when what it would overwrite is not what `load` returned.
 */
export interface StatusStore {
  load(service: string): Promise<Record<number, GroupStatus>>;
  save(service: string, groups: Record<number, GroupStatus>): Promise<void>;
}

/** Something that happened to a service or one of its groups. */
export interface ServiceEvent {
  at: number;
  service: string;
  replica?: number;
  /** One word for the kind of event (a Kubernetes Event's reason), e.g. GroupRecreating. */
  reason: string;
  /** Failures and errors are warnings; the rest is normal progress. */
  warning?: boolean;
  message: string;
}

/**
 * Traffic off a group before a rollout takes it down, where a platform can move it (the embedded
 * default: its own gateway). Asking marks the group ("service/replica") to take no new request.
 */
export interface GroupDrain {
  /** Whether the group serves nothing now (or has had its time to finish). */
  drained(group: string): boolean;
}

/** Where events go: a terminal and memory locally, Kubernetes Events on a cluster. */
export interface EventSink {
  record(event: ServiceEvent): void;
}
