// The plain objects the operator would create for every group, standalone: no owner (nothing
// keeps them: a member that dies is not recreated), every member created at once.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { InferenceService } from '../../../spec/schema.js';
import {
  LEADER_PORT,
  WORKER_PORT,
  groupNetworkPolicy,
  groupPodGroup,
  groupService,
  memberHost,
  memberPod,
  type ServiceObject,
} from '../objects.js';
import { clusterServiceTemplate, inContainerStartup } from '../render.js';

/** `namespace`: where the objects go, and where the gateway the NetworkPolicies admit runs. */
export function plainManifests(service: InferenceService, nodes: number, namespace: string): KubernetesObject[] {
  const obj: ServiceObject = { service, namespace, uid: '' };
  const template = inContainerStartup(clusterServiceTemplate(obj));
  const objects: KubernetesObject[] = [];
  for (let replica = 0; replica < service.spec.replicas; replica++) {
    const ref = { service: service.metadata.name, replica };
    const endpoints = Array.from({ length: nodes }, (_, i) => ({
      host: memberHost(ref, i, namespace),
      port: i === 0 ? LEADER_PORT : WORKER_PORT,
    }));
    const group = template.render(ref, endpoints);
    const podGroup = groupPodGroup(obj, ref, group.members[0]!, group.hash);
    objects.push(
      groupService(obj, ref),
      groupNetworkPolicy(obj, ref, namespace),
      ...(podGroup ? [podGroup] : []),
      ...group.members.map((m) => memberPod(obj, ref, m, group.hash)),
    );
  }
  for (const o of objects) delete o.metadata!.ownerReferences;
  return objects;
}
