// Which replicas can serve which model, and which one should take the next request.
import type { ServiceSnapshot } from '../runtime/reconciler.js';

export interface Backend {
  /** "service/replica" */
  id: string;
  model: string;
  /** The group leader's base URL. */
  url: string;
  ready: boolean;
  /** Requests it serves at once; more wait in the gateway's queue. None: no limit. */
  slots?: number;
}

export interface ModelEntry {
  id: string;
  replicas: number;
  readyReplicas: number;
}

/** Every group of every service as a backend of its served model. */
export function backendsFrom(services: ServiceSnapshot[]): Backend[] {
  return services.flatMap((s) =>
    s.groups.map((g) => ({
      id: `${s.name}/${g.replica}`,
      model: s.servedName,
      url: `http://${g.leader.host}:${g.leader.port}`,
      ready: g.phase === 'Ready',
      slots: s.slots,
    })),
  );
}

export function modelsFrom(services: ServiceSnapshot[]): ModelEntry[] {
  return services.map((s) => ({
    id: s.servedName,
    replicas: s.replicas,
    readyReplicas: s.groups.filter((g) => g.phase === 'Ready').length,
  }));
}

/**
 * Least outstanding requests first among the ready backends not yet tried and not at their slots;
 * ties go to the one picked longest ago (`lastPicked`), which spreads an idle start evenly.
 */
export function pickBackend(
  candidates: Backend[],
  outstanding: ReadonlyMap<string, number>,
  lastPicked: ReadonlyMap<string, number>,
  exclude: ReadonlySet<string>,
): Backend | undefined {
  let best: Backend | undefined;
  for (const b of candidates) {
    if (!b.ready || exclude.has(b.id)) continue;
    if (b.slots !== undefined && (outstanding.get(b.id) ?? 0) >= b.slots) continue;
    if (!best) {
      best = b;
      continue;
    }
    const load = outstanding.get(b.id) ?? 0;
    const bestLoad = outstanding.get(best.id) ?? 0;
    if (load < bestLoad || (load === bestLoad && (lastPicked.get(b.id) ?? 0) < (lastPicked.get(best.id) ?? 0)))
      best = b;
  }
  return best;
}
