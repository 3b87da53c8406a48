// Service planner: which groups (replicas) to create, delete or roll to a new template.
//
//  - Replicas 0..N-1 exist; missing ones are created, ones at N or above are deleted (highest first).
//  - A rollout replaces groups one at a time (at most one group unavailable): an outdated group
//    is moved to the new template only while every other group is Ready.
// Stateless, like the group planner: it sees the groups and decides the next steps.
import type { GroupPhase } from './group-plan.js';

export interface ObservedGroup {
  replica: number;
  templateHash: string;
  phase: GroupPhase;
}

export type ServiceStep =
  | { kind: 'createGroup'; replica: number }
  | { kind: 'deleteGroup'; replica: number }
  | { kind: 'updateGroup'; replica: number };

export function planService(replicas: number, templateHash: string, groups: ObservedGroup[]): ServiceStep[] {
  const steps: ServiceStep[] = [];
  const existing = new Set(groups.map((g) => g.replica));
  for (let r = 0; r < replicas; r++) if (!existing.has(r)) steps.push({ kind: 'createGroup', replica: r });
  const kept = groups.filter((g) => g.replica < replicas);
  groups
    .filter((g) => g.replica >= replicas)
    .sort((a, b) => b.replica - a.replica)
    .forEach((g) => steps.push({ kind: 'deleteGroup', replica: g.replica }));

  const outdated = kept.filter((g) => g.templateHash !== templateHash).sort((a, b) => a.replica - b.replica);
  const first = outdated[0];
  if (first) {
    // Not Ready counts as unavailable, whether it is outdated or already rolled.
    const othersReady = kept.every((g) => g.replica === first.replica || g.phase === 'Ready');
    const missing = steps.some((s) => s.kind === 'createGroup');
    if (othersReady && !missing) steps.push({ kind: 'updateGroup', replica: first.replica });
  }
  return steps;
}
