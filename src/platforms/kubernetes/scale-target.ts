// The autoscaler's target on Kubernetes, run by `tandem gateway --keda-port`: a decision is the
// count KEDA's scaler reports (keda.ts), so KEDA applies it; it is also logged and an Event on the
// InferenceService (the gateway writes nothing else: the object's status is the operator's).
import type * as k8s from '@kubernetes/client-node';
import type { ScaleTarget } from '../../core/serving.js';
import type { ClusterBackends } from './cluster-backends.js';
import { apiMessage } from './api.js';
import { serviceEvent } from './objects.js';
import { RawApi } from './raw.js';

export function clusterScaleTarget(
  kc: k8s.KubeConfig,
  namespace: string,
  cluster: ClusterBackends,
  log: (line: string) => void,
): ScaleTarget & { onScaled(listener: (service: string) => void): void } {
  const api = new RawApi(kc);
  const listeners: ((service: string) => void)[] = [];
  const record = (service: string, reason: string, message: string) => {
    log(`tandem: ${service}: ${message}`);
    const uid = cluster.uid(service);
    if (!uid) return;
    api
      .create(
        `/api/v1/namespaces/${namespace}/events`,
        serviceEvent(namespace, uid, 'gateway', { service, reason, message }),
      )
      .catch((err: unknown) => log(`tandem: event for ${service} not recorded: ${apiMessage(err)}`));
  };
  return {
    scale: (service, from, to, reason) => {
      record(service, to > from ? 'ScaledUp' : 'ScaledDown', `${from} → ${to} replicas: ${reason}`);
      for (const l of listeners) l(service);
    },
    note: record,
    startupMs: cluster.startupMs,
    groups: () => new Set(cluster.groups().map((g) => `${g.service}/${g.replica}`)),
    onScaled: (listener) => listeners.push(listener),
  };
}
