// The autoscaler's target on Kubernetes, run by `tandem gateway --keda-port`: a decision is the
// count KEDA's scaler reports (keda.ts), so KEDA applies it; it is also logged, an Event on the
// InferenceService and its status.lastScale (beside the operator's fields: a merge patch leaves
// those as they are).
import * as k8s from '@kubernetes/client-node';
import type { ClusterBackends } from './cluster-backends.js';
import { apiMessage } from './api.js';
import { GROUP, PLURAL, VERSION } from './crd.js';
import { serviceEvent } from './objects.js';
import type { ScaleTarget } from '../../autoscaler/autoscaler.js';

export function clusterScaleTarget(
  kc: k8s.KubeConfig,
  namespace: string,
  cluster: ClusterBackends,
  log: (line: string) => void,
  /** The count decided for a service changed: KEDA's scaler tells KEDA. */
  changed: (service: string) => void,
): ScaleTarget {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const record = (service: string, reason: string, message: string) => {
    log(`tandem: ${service}: ${message}`);
    const uid = cluster.uid(service);
    if (!uid) return;
    core
      .createNamespacedEvent({ namespace, body: serviceEvent(namespace, uid, 'gateway', { service, reason, message }) })
      .catch((err: unknown) => log(`tandem: event for ${service} not recorded: ${apiMessage(err)}`));
  };
  return {
    scale: (service, from, to, reason) => {
      record(service, to > from ? 'ScaledUp' : 'ScaledDown', `${from} → ${to} replicas: ${reason}`);
      changed(service);
      const lastScale = { time: new Date().toISOString(), from, to, reason };
      custom
        .patchNamespacedCustomObjectStatus(
          { group: GROUP, version: VERSION, namespace, plural: PLURAL, name: service, body: { status: { lastScale } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        )
        .catch((err: unknown) => log(`tandem: status of ${service} not written: ${apiMessage(err)}`));
    },
    note: record,
    startupMs: cluster.startupMs,
    groups: () => new Set(cluster.groups().map((g) => `${g.service}/${g.replica}`)),
  };
}
