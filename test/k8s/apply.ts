// `kubectl apply --server-side` for the tests: YAML read as kubectl reads it, each object sent as it
// is (no client library model in between) as an apply patch, for real or as a strict dry run.
import type * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { RawApi } from '../../src/platforms/kubernetes/raw.js';

const PLURALS: Record<string, string> = {
  Pod: 'pods',
  Service: 'services',
  ServiceAccount: 'serviceaccounts',
  Secret: 'secrets',
  NetworkPolicy: 'networkpolicies',
  PersistentVolume: 'persistentvolumes',
  PersistentVolumeClaim: 'persistentvolumeclaims',
  Role: 'roles',
  RoleBinding: 'rolebindings',
  Deployment: 'deployments',
  CustomResourceDefinition: 'customresourcedefinitions',
  InferenceService: 'inferenceservices',
  LeaderWorkerSet: 'leaderworkersets',
  RayCluster: 'rayclusters',
  RayService: 'rayservices',
  RayClusterFleet: 'rayclusterfleets',
  ScaledObject: 'scaledobjects',
};

const CLUSTER_SCOPED = new Set(['CustomResourceDefinition', 'PersistentVolume']);

/** YAML as kubectl reads it: plain objects (client-node's loadAllYaml renames fields into its models' names). */
export function readYaml(text: string): k8s.KubernetesObject[] {
  return parseAllDocuments(text).map((d) => d.toJS() as k8s.KubernetesObject);
}

function applyPatch(api: RawApi, o: k8s.KubernetesObject, namespace: string, query: string): Promise<unknown> {
  const [group, version] = o.apiVersion!.includes('/') ? o.apiVersion!.split('/') : ['', o.apiVersion!];
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const scoped = CLUSTER_SCOPED.has(o.kind!) ? '' : `/namespaces/${namespace}`;
  const plural = PLURALS[o.kind!];
  if (!plural) throw new Error(`apply: no resource known for kind ${o.kind}`);
  return api.patch(`${base}${scoped}/${plural}/${o.metadata!.name}`, o, 'apply', query);
}

/**
 * `o` in a server-side dry run with strict field validation (what `kubectl apply --server-side
 * --dry-run=server --validate=strict` asks): a field the schema does not know is refused, not dropped.
 */
export function dryRun(api: RawApi, o: k8s.KubernetesObject & { spec?: unknown }, namespace: string): Promise<unknown> {
  return applyPatch(api, o, namespace, '?dryRun=All&fieldValidation=Strict&fieldManager=kubectl');
}

/** `kubectl apply --server-side --force-conflicts`, object by object, in order. */
export async function apply(api: RawApi, objects: k8s.KubernetesObject[], namespace: string): Promise<void> {
  for (const o of objects)
    await applyPatch(api, o, namespace, '?fieldValidation=Strict&fieldManager=kubectl&force=true');
}
