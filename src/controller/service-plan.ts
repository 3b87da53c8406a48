// Service planner: which groups (replicas) should exist, which go, and which may roll to a new
// template now. Stateless, like the group planner: it sees the groups and decides.
//
//  - Replicas 0..N-1 are wanted; any other group is removed.
//  - A rollout replaces outdated groups whole, as a Deployment does with pods: up to maxSurge extra
//    groups (replicas N, N+1, …, created on the new template) are wanted while it lasts, and an
//    outdated Ready group may roll only while at least N − maxUnavailable wanted groups stay Ready.
//    An outdated group that is not Ready rolls at once: it is unavailable already.
import type { RolloutPolicy } from '../core/service.js';
import type { GroupPhase } from './group-plan.js';

export interface ObservedGroup {
  replica: number;
  /** The template its members run; undefined while it has none (it will get the current one). */
  templateHash?: string;
  phase: GroupPhase;
}

export interface ServicePlan {
  wanted: number[];
  remove: number[];
  roll: number[];
}

export function planService(
  replicas: number,
  templateHash: string,
  rollout: RolloutPolicy,
  groups: ObservedGroup[],
): ServicePlan {
  const current = (g: ObservedGroup) => g.templateHash === undefined || g.templateHash === templateHash;
  const inRange = groups.filter((g) => g.replica < replicas);
  const outdated = inRange.filter((g) => !current(g));
  const surging = groups.filter((g) => g.replica >= replicas && current(g)).length;
  // Surge groups stay until every group in range is current and Ready, so the rollout never dips.
  const rolling = outdated.length > 0 || (surging > 0 && inRange.some((g) => g.phase !== 'Ready'));
  const surge = rolling ? Math.min(rollout.maxSurge, Math.max(outdated.length, surging)) : 0;
  const wanted = Array.from({ length: replicas + surge }, (_, i) => i);
  const remove = groups
    .filter((g) => g.replica >= replicas + surge)
    .map((g) => g.replica)
    .sort((a, b) => b - a);

  let available = groups.filter((g) => g.replica < replicas + surge && g.phase === 'Ready').length;
  const roll: number[] = [];
  const order = [...outdated].sort(
    (a, b) => Number(a.phase === 'Ready') - Number(b.phase === 'Ready') || a.replica - b.replica,
  );
  for (const g of order) {
    if (g.phase !== 'Ready') roll.push(g.replica);
    else if (available - 1 >= replicas - rollout.maxUnavailable) {
      roll.push(g.replica);
      available--;
    }
  }
  return { wanted, remove, roll };
}
