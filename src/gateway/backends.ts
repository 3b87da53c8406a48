// Which replicas can serve which model, and which one should take the next request.
import type { Backend, ModelEntry } from '../core/serving.js';
import { PREFIX_AFFINITY } from './prefix.js';

export type { Backend, ModelEntry };

/**
 * When `model`'s first replica should be ready (ms), if anything says so. A start past its expected
 * time (or a group failed and not yet started again) is expected to take a whole start from now.
 */
export function expectedReady(entry: ModelEntry, now: number): number | undefined {
  if (entry.readyAt !== undefined && entry.readyAt > now) return entry.readyAt;
  return entry.readyReplicas === 0 && entry.startupMs !== undefined ? now + entry.startupMs : entry.readyAt;
}

/** What the gateway knows of a request's prompt prefix, for `pickBackend`. */
export interface PrefixRoute {
  /** The candidate that keeps the request's longest known prefix, if any. */
  holder: Backend | undefined;
  /** Per replica, how many prefix keys it keeps. */
  held: ReadonlyMap<string, number>;
  /** How many more requests in flight than the least busy replica a prefix's replica may have. */
  balance: number;
}

/**
 * Least outstanding requests first among the ready backends not yet tried and not at their slots;
 * ties go to the one picked longest ago (`lastPicked`), which spreads an idle start evenly.
 *
 * With a prefix: its holder wins where it has at most `PREFIX_AFFINITY` requests more in flight
 * than the least busy one; on GPUs also where it is not too much busier (`balance`) while its
 * engine has a slot free, since the request then joins the running batch at little cost. Not where
 * it would wait in the holder's engine queue (at saturation, waiting cost more than the prefill the
 * cache saves), nor further on CPUs, where a request in a free slot slows the others' decoding
 * about as much as a queue would (bench:peers' shared-prefix workload on two CPU replicas, side by
 * side: the TTFT p90 of preferring a holder up to 4 busier with a slot free was higher in every
 * round than preferring one as little busy). A prefix no replica holds goes to the one keeping the
 * fewest prefixes, within `balance` of the least busy: where it goes, its group comes back, so
 * placement decides each replica's share of the caches (placed by load alone, a warm-up of four at
 * a time could leave one replica more groups than its cache holds).
 */
export function pickBackend(
  candidates: Backend[],
  outstanding: ReadonlyMap<string, number>,
  lastPicked: ReadonlyMap<string, number>,
  exclude: ReadonlySet<string>,
  prefix?: PrefixRoute,
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
  if (!best || !prefix) return best;
  const least = outstanding.get(best.id) ?? 0;
  const { holder } = prefix;
  if (holder) {
    if (holder === best || !eligible(holder, outstanding, exclude)) return best;
    const load = outstanding.get(holder.id) ?? 0;
    const joinsBatch = holder.accelerated === true && load < (holder.engineSlots ?? Infinity);
    return load <= least + PREFIX_AFFINITY || (joinsBatch && load <= least + prefix.balance) ? holder : best;
  }
  let place = best;
  for (const b of candidates) {
    if (!eligible(b, outstanding, exclude) || (outstanding.get(b.id) ?? 0) > least + prefix.balance) continue;
    if ((prefix.held.get(b.id) ?? 0) < (prefix.held.get(place.id) ?? 0)) place = b;
  }
  return place;
}

function eligible(b: Backend, outstanding: ReadonlyMap<string, number>, exclude: ReadonlySet<string>): boolean {
  return b.ready && !exclude.has(b.id) && (b.slots === undefined || (outstanding.get(b.id) ?? 0) < b.slots);
}
