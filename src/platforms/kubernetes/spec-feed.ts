// The InferenceService objects as the reconciler's services: a new uid or generation is applied
// (a new uid is a new object: what the old one had is forgotten first), a deleted object is
// forgotten (the garbage collector deletes what it owned), and an invalid spec is reported. A
// gateway that found a group unresponsive says so in an annotation (UNRESPONSIVE_PREFIX + the
// replica: when): its members older than that are deleted, and the group is recreated whole.
import type { ServiceTemplate } from '../../core/service.js';
import type { ClusterCache } from './cluster-cache.js';

export interface SpecTarget {
  apply(template: ServiceTemplate): void;
  forget(name: string): void;
  unresponsive(service: string, replica: number, message: string, seenAt: number): Promise<void>;
}

/** `unresponsive.tandem.dev/REPLICA: ISO time`, written by the gateway on the InferenceService. */
export const UNRESPONSIVE_PREFIX = 'unresponsive.tandem.dev/';

export function followInferenceServices(
  cache: ClusterCache,
  target: SpecTarget,
  invalid: (name: string, problem: string) => void,
): void {
  const applied = new Map<string, { uid: string; generation: number }>();
  const changed = (name: string) => {
    const object = cache.objects.get(name);
    if (!object) return;
    const uid = object.metadata?.uid ?? '';
    const generation = object.metadata?.generation ?? 0;
    for (const [key, value] of Object.entries(object.metadata?.annotations ?? {})) {
      if (!key.startsWith(UNRESPONSIVE_PREFIX)) continue;
      const replica = Number(key.slice(UNRESPONSIVE_PREFIX.length));
      const seenAt = Date.parse(value);
      if (!Number.isInteger(replica) || Number.isNaN(seenAt)) continue;
      const message = `a gateway found it unresponsive at ${value}: recreating the group`;
      void target.unresponsive(name, replica, message, seenAt).catch(() => undefined);
    }
    const before = applied.get(name);
    if (before?.uid === uid && before.generation === generation) return; // a status write, or metadata
    if (before && before.uid !== uid) target.forget(name);
    applied.set(name, { uid, generation });
    const read = cache.spec(name)!;
    if (read.template) target.apply(read.template);
    if (read.problem) invalid(name, read.problem);
  };
  cache.objects.informer.on('add', (o) => changed(o.metadata?.name ?? ''));
  cache.objects.informer.on('update', (o) => changed(o.metadata?.name ?? ''));
  cache.objects.informer.on('delete', (o) => {
    const name = o.metadata?.name ?? '';
    applied.delete(name);
    target.forget(name);
  });
}
