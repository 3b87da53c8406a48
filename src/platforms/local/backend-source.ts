// The embedded default's backend source: the gateway serves the groups the reconciler shows,
// refreshed after each of its passes.
import type { Reconciler } from '../../controller/reconciler.js';
import {
  admitted,
  type Backend,
  type BackendSource,
  type GroupMetric,
  type ModelEntry,
  type ServiceMetric,
} from '../../core/serving.js';
import type { ServiceSnapshot } from '../../core/snapshot.js';

export class LocalBackends implements BackendSource {
  private view: { backends: Backend[]; models: ModelEntry[]; groups: GroupMetric[]; services: ServiceMetric[] } = {
    backends: [],
    models: [],
    groups: [],
    services: [],
  };

  constructor(reconciler: Reconciler) {
    const refresh = () => (this.view = viewOf(reconciler.snapshot()));
    refresh();
    reconciler.on('tick', refresh);
  }

  backends = (): Backend[] => this.view.backends;
  models = (): ModelEntry[] => this.view.models;
  groups = (): GroupMetric[] => this.view.groups;
  services = (): ServiceMetric[] => this.view.services;
}

function viewOf(snapshot: ServiceSnapshot[]) {
  return {
    backends: backendsFrom(snapshot),
    models: modelsFrom(snapshot),
    services: snapshot.map((s) => ({
      service: s.name,
      model: s.servedName,
      desired: s.replicas,
      ready: s.groups.filter((g) => g.phase === 'Ready').length,
      ...(s.autoscaling?.last ? { lastScaleAt: s.autoscaling.last.at } : {}),
    })),
    groups: snapshot.flatMap((s) =>
      s.groups.map((g) => ({
        service: s.name,
        model: s.servedName,
        replica: g.replica,
        phase: g.phase,
        restarts: g.restarts,
      })),
    ),
  };
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
      engineSlots: s.slots,
      ...(s.accelerated ? { accelerated: true } : {}),
      ...(s.exclusiveCache ? { exclusiveCache: true } : {}),
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
