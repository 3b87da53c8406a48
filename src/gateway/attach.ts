// Connects a gateway to a reconciler: the backends it routes to are refreshed on every tick.
import type { Reconciler, ServiceSnapshot } from '../runtime/reconciler.js';
import { backendsFrom, modelsFrom, type Backend, type ModelEntry } from './backends.js';
import { Gateway, type GatewayOptions } from './server.js';

export function gatewayFor(reconciler: Reconciler, options: Omit<GatewayOptions, 'backends' | 'models'>): Gateway {
  let backends: Backend[] = [];
  let models: ModelEntry[] = [];
  const refresh = (snapshot: ServiceSnapshot[]) => {
    backends = backendsFrom(snapshot);
    models = modelsFrom(snapshot);
  };
  refresh(reconciler.snapshot());
  reconciler.on('tick', refresh);
  return new Gateway({ ...options, backends: () => backends, models: () => models });
}
