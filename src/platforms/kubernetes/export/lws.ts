// An InferenceService as a LeaderWorkerSet (sigs.k8s.io/lws v1): one group per replica, the
// leader and worker pod templates Tandem renders, LWS's own names for the members.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { InferenceService } from '../../../spec/schema.js';
import { LEADER_PORT, WORKER_PORT } from '../objects.js';
import { renderForExport } from './pod-template.js';

export function leaderWorkerSet(service: InferenceService, nodes: number): KubernetesObject {
  const { name } = service.metadata;
  const { spec } = service;
  if (spec.scheduling.queue && spec.scheduling.gangScheduler === 'volcano') {
    throw new Error(
      '--to lws: LeaderWorkerSet admits groups through Kueue, not Volcano: use gangScheduler kueue, or --to manifests',
    );
  }
  // LWS's names: the leader is <lws>-<group> (its address is LWS_LEADER_ADDRESS), worker i is
  // <lws>-<group>-<i>, all under the LWS's headless Service.
  const endpoints = Array.from({ length: nodes }, (_, i) => ({
    host: i === 0 ? '$(LWS_LEADER_ADDRESS)' : `$(POD_NAME)-${i}.${name}.$(POD_NAMESPACE)`,
    port: i === 0 ? LEADER_PORT : WORKER_PORT,
  }));
  const { group, templates } = renderForExport(service, endpoints, true);
  return {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: {
      name,
      ...(spec.scheduling.queue ? { labels: { 'kueue.x-k8s.io/queue-name': spec.scheduling.queue } } : {}),
      ...(spec.scheduling.topologyKey
        ? { annotations: { 'leaderworkerset.sigs.k8s.io/exclusive-topology': spec.scheduling.topologyKey } }
        : {}),
    },
    spec: {
      replicas: spec.replicas,
      startupPolicy: group.startupPolicy === 'LeaderReady' ? 'LeaderReady' : 'LeaderCreated',
      rolloutStrategy: {
        type: 'RollingUpdate',
        rollingUpdateConfiguration: { maxUnavailable: spec.rollout.maxUnavailable, maxSurge: spec.rollout.maxSurge },
      },
      leaderWorkerTemplate: {
        size: nodes,
        restartPolicy: spec.restartPolicy,
        leaderTemplate: templates[0],
        ...(nodes > 1 ? { workerTemplate: templates[1] } : { workerTemplate: templates[0] }),
      },
    },
  } as KubernetesObject;
}
