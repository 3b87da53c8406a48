// Which replicas can serve which model, and which one should take the next request.
import type { Backend, ModelEntry } from '../core/serving.js';

export type { Backend, ModelEntry };

/**
 * When `model`'s first replica should be ready (ms), if anything says so. A start past its expected
 * time (or a group failed and not yet started again) is expected to take a whole start from now.
 */
export function expectedReady(entry: ModelEntry, now: number): number | undefined {
  if (entry.readyAt !== undefined && entry.readyAt > now) return entry.readyAt;
  return entry.readyReplicas === 0 && entry.startupMs !== undefined ? now + entry.startupMs : entry.readyAt;
}

/**
 * Least outstanding requests first among the ready backends not yet tried and not at their slots;
 * ties go to the one picked longest ago (`lastPicked`), which spreads an idle start evenly. A
 * preferred backend (the one holding the request's prefix) wins where it is as little busy as the
 * least busy one; on GPUs also where it is not too much busier while its engine has a slot free,
 * since the request then joins the running batch at little cost. Not where it would wait in the
 * holder's engine queue (at saturation, waiting cost more than the prefill the cache saves), nor on
 * CPUs, where a request in a free slot slows the others' decoding about as much as a queue would
 * (bench:peers' shared-prefix workload on two CPU replicas, both rules side by side: the TTFT p90
 * of preferring a holder with a slot free was higher in every round).
 */
export function pickBackend(
  candidates: Backend[],
  outstanding: ReadonlyMap<string, number>,
  lastPicked: ReadonlyMap<string, number>,
  exclude: ReadonlySet<string>,
  /** Taken when eligible and at most `balance` requests busier than the least busy choice. */
  preferred?: { id: string; balance: number },
): Backend | undefined {
  let best: Backend | undefined;
  for (const b of candidates) {
    if (!eligible(b, outstanding, exclude)) continue;
    if (!best) {
      best = b;
      continue;
    }
    const load = outstanding.get(b.id) ?? 0;
    const bestLoad = outstanding.get(best.id) ?? 0;
    if (load < bestLoad || (load === bestLoad && (lastPicked.get(b.id) ?? 0) < (lastPicked.get(best.id) ?? 0)))
      best = b;
  }
  const favourite = preferred && candidates.find((b) => b.id === preferred.id);
  if (best && favourite && favourite !== best && eligible(favourite, outstanding, exclude)) {
    const [load, least] = [outstanding.get(favourite.id) ?? 0, outstanding.get(best.id) ?? 0];
    const joinsBatch = favourite.accelerated === true && load < (favourite.engineSlots ?? Infinity);
    if (load <= least || (joinsBatch && load <= least + preferred.balance)) return favourite;
  }
  return best;
}

function eligible(b: Backend, outstanding: ReadonlyMap<string, number>, exclude: ReadonlySet<string>): boolean {
  return b.ready && !exclude.has(b.id) && (b.slots === undefined || (outstanding.get(b.id) ?? 0) < b.slots);
}
