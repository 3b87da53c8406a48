// The embedded default's scale target: the reconciler itself.
import type { Reconciler } from '../../controller/reconciler.js';
import type { ScaleTarget } from '../../core/serving.js';

export function reconcilerTarget(reconciler: Reconciler): ScaleTarget {
  return {
    scale: (service, _from, to, reason) => reconciler.scale(service, to, reason),
    note: (service, reason, message) => reconciler.note(service, reason, message),
    startupMs: (service) => reconciler.service(service)?.startupMs,
    groups: () => new Set(reconciler.snapshot().flatMap((s) => s.groups.map((g) => `${s.name}/${g.replica}`))),
  };
}
