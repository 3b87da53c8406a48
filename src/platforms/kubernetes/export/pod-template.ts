// One group rendered for another controller: the pods Tandem would create, turned into per-role
// pod templates that the other controller stamps out (it names, numbers and owns the pods, and
// injects the group's LWS_* environment itself).
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { InferenceService } from '../../../spec/schema.js';
import type { Endpoint, GroupTemplate } from '../../../core/group.js';
import { GROUP_ENV } from '../../../spec/schema.js';
import { LABEL, memberPod, type PodJson, type ServiceObject } from '../objects.js';
import { clusterServiceTemplate, inContainerStartup } from '../render.js';

/** A pod template as sent: the pod's spec, no identity of its own. */
export interface PodTemplateJson {
  metadata: V1ObjectMeta;
  spec: PodJson['spec'];
}

export interface RenderedGroup {
  group: GroupTemplate;
  /** One pod template per member, leader first. */
  templates: PodTemplateJson[];
}

/**
 * Renders one group with the given endpoints (names the other controller gives members), without
 * Tandem's own placement and admission (the exporter maps them onto the controller's own).
 */
export function renderForExport(service: InferenceService, endpoints: Endpoint[], fieldEnv = false): RenderedGroup {
  const { topologyKey: _t, queue: _q, ...scheduling } = service.spec.scheduling;
  const plain: InferenceService = { ...service, spec: { ...service.spec, scheduling } };
  const obj: ServiceObject = { service: plain, namespace: '', uid: '' };
  const ref = { service: service.metadata.name, replica: 0 };
  const group = inContainerStartup(clusterServiceTemplate(obj)).render(ref, endpoints);
  return {
    group,
    templates: group.members.map((m) => podTemplate(memberPod(obj, ref, m, group.hash), fieldEnv)),
  };
}

/** A pod as a template: no identity of its own, no group environment (the controller sets both). */
export function podTemplate(pod: PodJson, fieldEnv = false): PodTemplateJson {
  const { hostname: _h, subdomain: _s, restartPolicy: _r, ...spec } = pod.spec;
  const labels = pod.metadata.labels!;
  return {
    metadata: {
      labels: { [LABEL.service]: labels[LABEL.service]!, [LABEL.role]: labels[LABEL.role]! },
      ...(Object.keys(pod.metadata.annotations ?? {}).length > 0 ? { annotations: pod.metadata.annotations } : {}),
    },
    spec: {
      ...spec,
      containers: spec.containers.map((c) => ({
        ...c,
        env: [
          // The pod's own name and namespace, for the workers' DNS names in the leader's command line.
          ...(fieldEnv
            ? [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              ]
            : []),
          ...c.env.filter((e) => !(GROUP_ENV as readonly string[]).includes(e.name as string)),
        ],
      })),
    },
  };
}
