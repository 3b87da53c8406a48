// Group planner: given what a group should run, what the platform observes and the group's
// persisted status, the next steps and the status they lead to.
//
// The algorithm, evaluated afresh on every observation (it keeps no state of its own):
//  1. A member fails when it exited, when it is not placed on a node placementTimeout after its
//     creation, when it never became ready within startupTimeout (a hung load), or when it was lost:
//     a member of the current incarnation (status.members, recorded once every member is present)
//     is gone or being deleted by someone else (an evicted pod). RecreateGroupOnPodRestart deletes every member (an llama.cpp RPC worker
//     serves one leader for its whole life; a Ray or NCCL group cannot re-admit a lost rank), None
//     only the failed ones. A failure is counted once per member uid and starts a back-off; more than
//     failurePolicy.maxRestarts within its window and the group is Failed until the template changes.
//  2. While members are terminating, nothing is created: a recreated member reuses their names.
//  3. A group running an outdated template is deleted whole when the service planner lets it roll,
//     or at once when it is incomplete (it serves nothing): a group is only ever all-old or all-new.
//  4. While backing off, nothing is created.
//  5. Missing members are created in the order of the startup policy:
//       LeaderCreated  leader first, workers once the leader exists (LWS default; Ray head first):
//                      both in one step, the executor creating the leader before the workers;
//       LeaderReady    workers once the leader is ready;
//       WorkersReady   workers first, the leader once every worker is ready (llama.cpp RPC).
//  6. The group is Ready when every member is present and ready.
import { formatDuration } from '../spec/duration.js';
import type { GroupStatus, GroupTemplate, ObservedMember } from '../core/group.js';
import type { GroupPhase } from '../core/snapshot.js';

export type { GroupPhase };

export type GroupStep = { kind: 'create'; index: number } | { kind: 'delete'; indices: number[] };

export interface GroupDecision {
  phase: GroupPhase;
  steps: GroupStep[];
  /** The status to persist before the steps are carried out. */
  status: GroupStatus;
  /** A failure counted by this decision (not one counted before), for events. */
  failure?: string;
}

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_MAX_MS = 60_000;
/** Uids remembered as counted: enough for a few incarnations of the largest group. */
const COUNTED_KEPT = 1024;

export function planGroup(
  template: GroupTemplate,
  observed: ObservedMember[],
  current: GroupStatus,
  now: number,
  mayRoll = false,
): GroupDecision {
  let status = current;
  if (status.failed && status.failed.templateHash !== template.hash) {
    // The spec changed: a Failed group gets a fresh budget.
    status = { restarts: status.restarts, ...(status.lastFailure ? { lastFailure: status.lastFailure } : {}) };
  }
  const live = observed.filter((m) => !m.terminating);
  const terminating = observed.filter((m) => m.terminating);
  const all = (members: ObservedMember[]): GroupStep[] =>
    members.length > 0 ? [{ kind: 'delete', indices: members.map((m) => m.index) }] : [];

  const failed = failures(template, live, terminating, status, now);
  if (failed.length > 0) {
    const reason = failed.map((f) => `${describe(template, f.index)} ${f.why}`).join('; ');
    const whole = template.restartPolicy === 'RecreateGroupOnPodRestart';
    const counted = recordFailure(
      status,
      template,
      reason,
      failed.map((f) => f.uid),
      now,
    );
    const isNew = counted !== status;
    const members = whole
      ? {}
      : withoutIndices(
          status.members,
          failed.map((f) => f.index),
        );
    const doomed = whole ? live : live.filter((m) => failed.some((f) => f.uid === m.uid));
    status = { ...counted, members, counted: deleted(counted, doomed) };
    return {
      phase: status.failed ? 'Failed' : 'Recreating',
      steps: all(doomed),
      status,
      ...(isNew ? { failure: reason } : {}),
    };
  }
  if (status.failed) return { phase: 'Failed', steps: all(live), status };
  if (terminating.length > 0) return { phase: 'Recreating', steps: [], status };

  const complete = template.members.every((t) => live.some((m) => m.index === t.index));
  if (live.some((m) => m.templateHash !== template.hash)) {
    if (mayRoll || !complete) {
      return {
        phase: 'Updating',
        steps: all(live),
        status: { ...status, members: {}, counted: deleted(status, live) },
      };
    }
    return { phase: live.every((m) => m.ready) ? 'Ready' : 'Starting', steps: [], status };
  }

  const present = new Map(live.map((m) => [m.index, m]));
  const missing = template.members.map((m) => m.index).filter((i) => !present.has(i));
  if (missing.length === 0) {
    // The incarnation's members are recorded once it is complete: one write per group, and a member
    // lost before then is simply created again (no group has formed around it yet). Members this
    // group deleted may still look alive in a stale cache: never take them for the new incarnation.
    const gone = new Set(status.counted ?? []);
    const members = Object.fromEntries(live.filter((m) => !gone.has(m.uid)).map((m) => [String(m.index), m.uid]));
    if (JSON.stringify(members) !== JSON.stringify(status.members)) status = { ...status, members };
    const ready = live.every((m) => m.ready);
    return { phase: ready ? 'Ready' : 'Starting', steps: [], status: ready ? recordReady(status) : status };
  }
  if (status.backoffUntil !== undefined && now < status.backoffUntil) return { phase: 'BackingOff', steps: [], status };

  const leader = present.get(0);
  const workersReady = template.members.filter((m) => m.index !== 0).every((m) => present.get(m.index)?.ready);
  const missingWorkers = missing.filter((i) => i !== 0);
  let create: number[];
  switch (template.startupPolicy) {
    case 'LeaderCreated':
      // The executor creates the leader first, the workers once that succeeded: in one pass.
      create = leader ? missingWorkers : [0, ...missingWorkers];
      break;
    case 'LeaderReady':
      create = !leader ? [0] : leader.ready ? missingWorkers : [];
      break;
    case 'WorkersReady':
      create = missingWorkers.length > 0 ? missingWorkers : !leader && workersReady ? [0] : [];
      break;
  }
  return {
    phase: live.length === 0 ? 'Pending' : 'Starting',
    steps: create.map((index) => ({ kind: 'create', index })),
    status,
  };
}

interface Failure {
  index: number;
  uid: string;
  why: string;
}

function failures(
  template: GroupTemplate,
  live: ObservedMember[],
  terminating: ObservedMember[],
  status: GroupStatus,
  now: number,
): Failure[] {
  const out: Failure[] = [];
  for (const m of live) {
    const age = now - m.createdAt;
    if (m.phase === 'Exited') {
      out.push({ index: m.index, uid: m.uid, why: `exited (${m.exitReason ?? 'unknown reason'})` });
    } else if (!m.scheduled && age > template.placementTimeoutMs) {
      const why = `not placed on a node ${formatDuration(template.placementTimeoutMs)} after its creation (spec.scheduling.placementTimeout)`;
      out.push({ index: m.index, uid: m.uid, why: m.pendingReason ? `${why}: ${m.pendingReason}` : why });
    } else if (!m.started && !m.ready && age > template.startupTimeoutMs) {
      const why = `not ready ${formatDuration(template.startupTimeoutMs)} after it started (spec.startupTimeout)`;
      out.push({ index: m.index, uid: m.uid, why });
    }
  }
  for (const [index, uid] of Object.entries(status.members ?? {})) {
    if (live.some((m) => m.uid === uid)) continue;
    const why = terminating.some((m) => m.uid === uid) ? 'was deleted by someone else' : 'disappeared';
    out.push({ index: Number(index), uid, why });
  }
  return out;
}

/**
 * Status after a failure: one more restart, an exponential back-off (1 s, 2 s, 4 s … 60 s), and
 * Failed past the restart budget. A failure of members already counted changes nothing.
 */
export function recordFailure(
  status: GroupStatus,
  template: Pick<GroupTemplate, 'hash' | 'failurePolicy'>,
  reason: string,
  uids: string[],
  now: number,
): GroupStatus {
  const counted = status.counted ?? [];
  if (uids.length > 0 && uids.every((u) => counted.includes(u))) return status;
  const restarts = status.restarts + 1;
  const consecutive = (status.consecutiveFailures ?? 0) + 1;
  const delay = Math.min(BACKOFF_BASE_MS * 2 ** (consecutive - 1), BACKOFF_MAX_MS);
  const { maxRestarts, windowMs } = template.failurePolicy;
  const recentFailures = [...(status.recentFailures ?? []).filter((t) => now - t < windowMs), now];
  const next: GroupStatus = {
    ...status,
    restarts,
    consecutiveFailures: consecutive,
    lastFailure: { at: now, reason },
    backoffUntil: now + delay,
    counted: [...counted, ...uids].slice(-COUNTED_KEPT),
    recentFailures,
  };
  if (recentFailures.length > maxRestarts) {
    next.failed = {
      templateHash: template.hash,
      reason: `${recentFailures.length} failures within ${formatDuration(windowMs)}, more than spec.failurePolicy.maxRestarts (${maxRestarts}); recreated no more until the spec changes; last: ${reason}`,
    };
  }
  return next;
}

/** Status once the group is Ready again: the next failure backs off from the start. */
export function recordReady(status: GroupStatus): GroupStatus {
  return status.consecutiveFailures ? { ...status, consecutiveFailures: 0 } : status;
}

/** Uids this group deleted (or saw fail): their later sightings are neither failures nor members. */
function deleted(status: GroupStatus, members: ObservedMember[]): string[] {
  return [...new Set([...(status.counted ?? []), ...members.map((m) => m.uid)])].slice(-COUNTED_KEPT);
}

function withoutIndices(members: Record<string, string> | undefined, indices: number[]): Record<string, string> {
  return Object.fromEntries(Object.entries(members ?? {}).filter(([i]) => !indices.includes(Number(i))));
}

function describe(template: GroupTemplate, index: number): string {
  const role = template.members.find((m) => m.index === index)?.role ?? 'member';
  return `${role} ${index}`;
}
