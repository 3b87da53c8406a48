// Connects a gateway to a reconciler: the backends it routes to are refreshed on every tick.
import type { Reconciler, ServiceSnapshot } from '../../controller/reconciler.js';
import { backendsFrom, modelsFrom, type Backend, type ModelEntry } from '../../gateway/backends.js';
import { Gateway, type GatewayOptions } from '../../gateway/server.js';
import type { GroupMetric, ServiceMetric } from '../../gateway/metrics.js';

export function gatewayFor(
  reconciler: Reconciler,
  options: Omit<GatewayOptions, 'backends' | 'models' | 'groups' | 'services'>,
): Gateway {
  let backends: Backend[] = [];
  let models: ModelEntry[] = [];
  let groups: GroupMetric[] = [];
  let services: ServiceMetric[] = [];
  const refresh = (snapshot: ServiceSnapshot[]) => {
    backends = backendsFrom(snapshot);
    models = modelsFrom(snapshot);
    services = snapshot.map((s) => ({
      service: s.name,
      model: s.servedName,
      desired: s.replicas,
      ready: s.groups.filter((g) => g.phase === 'Ready').length,
      ...(s.autoscaling?.last ? { lastScaleAt: s.autoscaling.last.at } : {}),
    }));
    groups = snapshot.flatMap((s) =>
      s.groups.map((g) => ({
        service: s.name,
        model: s.servedName,
        replica: g.replica,
        phase: g.phase,
        restarts: g.restarts,
      })),
    );
  };
  refresh(reconciler.snapshot());
  reconciler.on('tick', refresh);
  return new Gateway({
    ...options,
    backends: () => backends,
    models: () => models,
    groups: () => groups,
    services: () => services,
  });
}
