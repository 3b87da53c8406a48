// Group planner: given what a group should run and what the platform observes, the next step.
//
// The algorithm, evaluated afresh on every observation (it keeps no state of its own):
//  1. A member that exited is a failure, and so is one not ready startupTimeout after its creation
//     that never was (a hung load). RecreateGroupOnPodRestart deletes every member (an llama.cpp
//     RPC worker serves one leader for its whole life; a Ray or NCCL group cannot re-admit a lost
//     rank), None deletes only the failed ones. The failure starts a back-off.
//  2. A member running an outdated template is deleted with the rest of its group: a group is
//     only ever all-old or all-new (the service planner chooses when a group may roll).
//  3. While backing off, nothing is created.
//  4. Missing members are created in the order of the startup policy:
//       LeaderCreated  leader first, workers once the leader exists (LWS default; Ray head first);
//       LeaderReady    workers once the leader is ready;
//       WorkersReady   workers first, the leader once every worker is ready (llama.cpp RPC).
//  5. The group is Ready when every member is present and ready.
import { formatDuration } from '../spec/duration.js';
import type { GroupStatus, GroupTemplate, ObservedMember } from './types.js';

export type GroupPhase = 'Pending' | 'Starting' | 'Ready' | 'Recreating' | 'BackingOff';

export type GroupStep =
  | { kind: 'create'; index: number }
  /** Delete these members; `failure` (when set) is recorded and starts a back-off. */
  | { kind: 'delete'; indices: number[]; failure?: string };

export interface GroupDecision {
  phase: GroupPhase;
  steps: GroupStep[];
}

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_MAX_MS = 60_000;

export function planGroup(
  template: GroupTemplate,
  observed: ObservedMember[],
  status: GroupStatus,
  now: number,
): GroupDecision {
  const failed = observed.flatMap((m) => {
    if (m.phase === 'Exited') return [{ index: m.index, why: `exited (${m.exitReason ?? 'unknown reason'})` }];
    if (!m.started && !m.ready && now - m.createdAt > template.startupTimeoutMs) {
      return [
        {
          index: m.index,
          why: `not ready ${formatDuration(template.startupTimeoutMs)} after it started (spec.startupTimeout)`,
        },
      ];
    }
    return [];
  });
  if (failed.length > 0) {
    const failure = failed.map((f) => `${describe(template, f.index)} ${f.why}`).join('; ');
    const indices =
      template.restartPolicy === 'RecreateGroupOnPodRestart'
        ? observed.map((m) => m.index)
        : failed.map((f) => f.index);
    return { phase: 'Recreating', steps: [{ kind: 'delete', indices, failure }] };
  }

  if (observed.some((m) => m.templateHash !== template.hash)) {
    return { phase: 'Recreating', steps: [{ kind: 'delete', indices: observed.map((m) => m.index) }] };
  }

  const present = new Map(observed.map((m) => [m.index, m]));
  const missing = template.members.map((m) => m.index).filter((i) => !present.has(i));
  if (missing.length === 0) {
    return { phase: observed.every((m) => m.ready) ? 'Ready' : 'Starting', steps: [] };
  }
  if (status.backoffUntil !== undefined && now < status.backoffUntil) return { phase: 'BackingOff', steps: [] };

  const leader = present.get(0);
  const workers = template.members.filter((m) => m.index !== 0).map((m) => present.get(m.index));
  const workersReady = workers.every((w) => w?.ready === true);
  const create = (indices: number[]): GroupDecision => ({
    phase: observed.length === 0 ? 'Pending' : 'Starting',
    steps: indices.map((index) => ({ kind: 'create', index })),
  });
  const missingWorkers = missing.filter((i) => i !== 0);
  switch (template.startupPolicy) {
    case 'LeaderCreated':
      return create(leader ? missingWorkers : [0]);
    case 'LeaderReady':
      return create(leader ? (leader.ready ? missingWorkers : []) : [0]);
    case 'WorkersReady':
      return create(missingWorkers.length > 0 ? missingWorkers : leader || !workersReady ? [] : [0]);
  }
}

/** Status after a failure: one more restart and an exponential back-off (1 s, 2 s, 4 s … 60 s). */
export function recordFailure(status: GroupStatus, reason: string, now: number): GroupStatus {
  const restarts = status.restarts + 1;
  const consecutive = (status.consecutiveFailures ?? 0) + 1;
  const delay = Math.min(BACKOFF_BASE_MS * 2 ** (consecutive - 1), BACKOFF_MAX_MS);
  return { restarts, consecutiveFailures: consecutive, lastFailure: { at: now, reason }, backoffUntil: now + delay };
}

/** Status once the group is Ready again: the next failure backs off from the start. */
export function recordReady(status: GroupStatus): GroupStatus {
  return status.consecutiveFailures ? { ...status, consecutiveFailures: 0 } : status;
}

function describe(template: GroupTemplate, index: number): string {
  const role = template.members.find((m) => m.index === index)?.role ?? 'member';
  return `${role} ${index}`;
}
