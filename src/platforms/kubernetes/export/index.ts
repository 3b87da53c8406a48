// `tandem render --to TARGET`: an InferenceService as the objects another controller runs.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { InferenceService } from '../../../spec/schema.js';
import { leaderWorkerSet } from './lws.js';
import { plainManifests } from './manifests.js';
import { rayClusterFleet, rayClusters, rayService } from './ray.js';
import { scaledObject } from './keda.js';

export const EXPORT_TARGETS = ['lws', 'kuberay', 'rayservice', 'aibrix', 'manifests', 'keda'] as const;
export type ExportTarget = (typeof EXPORT_TARGETS)[number];

export function exportService(service: InferenceService, to: ExportTarget, namespace: string): KubernetesObject[] {
  const nodes = service.spec.parallelism.nodes;
  if (nodes === 'auto') {
    throw new Error('spec.parallelism.nodes: auto reads the model file, which rendering cannot: set a number');
  }
  switch (to) {
    case 'lws':
      return [leaderWorkerSet(service, nodes)];
    case 'kuberay':
      return rayClusters(service, nodes);
    case 'rayservice':
      return [rayService(service, nodes)];
    case 'aibrix':
      return [rayClusterFleet(service, nodes)];
    case 'manifests':
      return plainManifests(service, nodes, namespace);
    case 'keda':
      return [scaledObject(service, namespace)];
  }
}
