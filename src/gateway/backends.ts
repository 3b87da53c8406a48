// Which replicas can serve which model, and which one should take the next request.
import type { StreamTokenIds } from '../engine/template.js';
import type { ServiceSnapshot } from '../controller/reconciler.js';

export interface Backend {
  /** "service/replica" */
  id: string;
  model: string;
  /** The group leader's base URL. */
  url: string;
  ready: boolean;
  /** Requests it is sent at once (admitted()); more wait in the gateway's queue. None: no limit. */
  slots?: number;
  /** How its streams report token ids; none: they are continued from their text. */
  tokenIds?: StreamTokenIds;
}

export interface ModelEntry {
  id: string;
  replicas: number;
  readyReplicas: number;
  /** While none is ready: when the first should be (ms), from the service's measured startup time. */
  readyAt?: number;
  /** How long its groups take from creation to Ready (measured): when none is starting, readyAt is now + this. */
  startupMs?: number;
  /** An autoscaler owns its replicas: with none ready, requests wait for one (scale from zero). */
  autoscaled?: boolean;
}

/** When `model`'s first replica should be ready (ms), if anything says so. */
export function expectedReady(entry: ModelEntry, now: number): number | undefined {
  return (
    entry.readyAt ?? (entry.readyReplicas === 0 && entry.startupMs !== undefined ? now + entry.startupMs : undefined)
  );
}

/**
 * Requests a replica is sent at once: its engine's slots, and half as many again waiting at the
 * engine, so that a slot that frees is refilled there at once, not after a round trip through the
 * gateway (with short requests that round trip left a quarter of the engine's time unused).
 */
export function admitted(slots: number): number {
  return slots + Math.ceil(slots / 2);
}

/** Every group of every service as a backend of its served model. */
export function backendsFrom(services: ServiceSnapshot[]): Backend[] {
  return services.flatMap((s) =>
    s.groups.map((g) => ({
      id: `${s.name}/${g.replica}`,
      model: s.servedName,
      url: `http://${g.leader.host}:${g.leader.port}`,
      ready: g.phase === 'Ready',
      slots: admitted(s.slots),
      ...(s.tokenIds ? { tokenIds: s.tokenIds } : {}),
    })),
  );
}

export function modelsFrom(services: ServiceSnapshot[]): ModelEntry[] {
  return services.map((s) => {
    const readyReplicas = s.groups.filter((g) => g.phase === 'Ready').length;
    const starts = s.groups.flatMap((g) => (g.createdAt === undefined || g.failed ? [] : [g.createdAt]));
    const readyAt =
      readyReplicas === 0 && s.startupMs !== undefined && starts.length > 0
        ? Math.min(...starts) + s.startupMs
        : undefined;
    return {
      id: s.servedName,
      replicas: s.replicas,
      readyReplicas,
      ...(readyAt ? { readyAt } : {}),
      ...(s.startupMs === undefined ? {} : { startupMs: s.startupMs }),
      ...(s.autoscaling ? { autoscaled: true } : {}),
    };
  });
}

/**
 * Least outstanding requests first among the ready backends not yet tried and not at their slots;
 * ties go to the one picked longest ago (`lastPicked`), which spreads an idle start evenly. A
 * preferred backend (the one holding the request's prefix) wins while it is not too much busier.
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
    const load = (b: Backend) => outstanding.get(b.id) ?? 0;
    if (load(favourite) <= load(best) + preferred.balance) return favourite;
  }
  return best;
}

function eligible(b: Backend, outstanding: ReadonlyMap<string, number>, exclude: ReadonlySet<string>): boolean {
  return b.ready && !exclude.has(b.id) && (b.slots === undefined || (outstanding.get(b.id) ?? 0) < b.slots);
}
