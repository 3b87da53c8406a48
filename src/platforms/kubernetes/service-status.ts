// The InferenceService's status, computed purely from the reconciler's view of a service: what
// `kubectl get`, the scale subresource and the gateway read. Display only: nothing reads it back to
// decide (the planner state is in status-store.ts).
import type { ServiceSnapshot } from '../../core/snapshot.js';
import { LABEL } from './objects.js';

export interface Condition {
  type: 'Available' | 'Progressing' | 'Degraded';
  status: 'True' | 'False';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

/** A group as the object's status shows it. */
export interface GroupStatusEntry {
  replica: number;
  phase: string;
  readyMembers: string;
  restarts: number;
  lastFailure?: { at: number; reason: string };
  lastFailureTime?: string;
  /** Why it is Failed (past spec.failurePolicy). */
  failed?: string;
}

export interface ServiceStatus {
  observedGeneration: number;
  replicas: number;
  readyReplicas: number;
  readyGroups: string;
  nodesPerGroup: number;
  selector: string;
  conditions: Condition[];
  groups: GroupStatusEntry[];
  /** Its groups' time from creation to Ready (the median of recent starts): the gateway's autoscaler scales ahead by it. */
  startupSeconds?: number;
}

export function serviceStatus(
  generation: number,
  view: ServiceSnapshot | undefined,
  maxUnavailable: number,
  previous: Condition[],
  now: Date,
  invalid?: string,
): ServiceStatus {
  const groups = view?.groups ?? [];
  const wanted = view?.replicas ?? 0;
  const ready = groups.filter((g) => g.phase === 'Ready').length;
  const failed = groups.filter((g) => g.failed);
  const settled = groups.length === wanted && ready === wanted;
  const condition = (type: Condition['type'], ok: boolean, reason: string, message: string): Condition => {
    const before = previous.find((c) => c.type === type);
    const status = ok ? 'True' : 'False';
    const lastTransitionTime = before?.status === status ? before.lastTransitionTime : now.toISOString();
    return { type, status, reason, message, lastTransitionTime };
  };
  const conditions = [
    condition(
      'Available',
      !invalid && ready >= Math.max(0, wanted - maxUnavailable) && (wanted === 0 || ready > 0),
      ready >= wanted ? 'AllGroupsReady' : 'MinimumGroupsReady',
      `${ready} of ${wanted} group(s) ready`,
    ),
    condition(
      'Progressing',
      !invalid && !settled && failed.length === 0,
      invalid ? 'InvalidSpec' : settled ? 'Complete' : failed.length > 0 ? 'GroupFailed' : 'Reconciling',
      settled
        ? 'every group runs the current template and is ready'
        : groups
            .filter((g) => g.phase !== 'Ready')
            .map((g) => `group ${g.replica} ${g.phase}`)
            .join(', ') || 'creating groups',
    ),
    condition(
      'Degraded',
      invalid !== undefined || failed.length > 0,
      invalid ? 'InvalidSpec' : failed.length > 0 ? 'GroupFailed' : 'AsExpected',
      invalid ?? (failed.map((g) => `group ${g.replica}: ${g.failed}`).join('; ') || 'no group has failed'),
    ),
  ];
  return {
    observedGeneration: generation,
    // Groups that exist to serve (the scale subresource's count, which the HPA reads): not those
    // being deleted, nor a rollout's surge groups beyond spec.replicas.
    replicas: groups.filter((g) => g.phase !== 'Deleting' && g.replica < wanted).length,
    readyReplicas: ready,
    readyGroups: `${ready}/${wanted}`,
    nodesPerGroup: groups[0]?.members.length ?? 0,
    selector: view ? `${LABEL.service}=${view.name}` : '',
    conditions,
    ...(view?.startupMs === undefined ? {} : { startupSeconds: Math.round(view.startupMs / 100) / 10 }),
    groups: groups.map((g) => ({
      replica: g.replica,
      phase: g.phase,
      readyMembers: `${g.members.filter((m) => m.state === 'Ready').length}/${g.members.length}`,
      restarts: g.restarts,
      ...(g.lastFailure
        ? { lastFailure: g.lastFailure, lastFailureTime: new Date(g.lastFailure.at).toISOString() }
        : {}),
      ...(g.failed ? { failed: g.failed } : {}),
    })),
  };
}
