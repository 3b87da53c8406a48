// InferenceService objects as the operator and the cluster gateway read them: one namespace's,
// watched through an informer, each validated and made into its service template.
import * as k8s from '@kubernetes/client-node';
import { validateDocument } from '../../spec/load.js';
import { API_VERSION } from '../../spec/schema.js';
import type { ServiceTemplate } from '../../core/service.js';
import { GROUP, PLURAL, VERSION } from './crd.js';
import type { ServiceObject } from './objects.js';
import { clusterServiceTemplate } from './render.js';
import type { Condition, GroupStatusEntry } from './service-status.js';

export interface InferenceServiceObject extends k8s.KubernetesObject {
  spec?: unknown;
  status?: { groups?: GroupStatusEntry[]; conditions?: Condition[]; startupSeconds?: number };
}

export function inferenceServiceInformer(
  kc: k8s.KubeConfig,
  namespace: string,
): k8s.Informer<InferenceServiceObject> & k8s.ObjectCache<InferenceServiceObject> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  return k8s.makeInformer(
    kc,
    `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
    () =>
      custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
      }) as Promise<k8s.KubernetesListObject<InferenceServiceObject>>,
  );
}

/**
 * An object's spec, validated (`valid`), and its service template; `problem` says what is wrong
 * with either. A valid spec whose template cannot be made (a model source pods cannot reach) is
 * still `valid`: its objects are still its own.
 */
export function readInferenceService(
  object: InferenceServiceObject,
  namespace: string,
): { valid?: ServiceObject; template?: ServiceTemplate; problem?: string } {
  const { service, problems } = validateDocument({
    apiVersion: API_VERSION,
    kind: 'InferenceService',
    metadata: { name: object.metadata?.name ?? '' },
    spec: object.spec,
  });
  if (!service) return { problem: problems.join('; ') };
  const valid: ServiceObject = { service, namespace, uid: object.metadata?.uid ?? '' };
  try {
    return { valid, template: clusterServiceTemplate(valid) };
  } catch (err) {
    return { valid, problem: (err as Error).message };
  }
}
