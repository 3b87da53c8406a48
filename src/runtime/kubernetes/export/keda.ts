// `tandem render --to keda`: a KEDA ScaledObject that scales an InferenceService through its scale
// subresource on the load Tandem's gateway reports (its external-push scaler, autoscaler/keda.ts),
// with spec.autoscaling's bounds and delays as KEDA and the HPA name them.
import type { KubernetesObject } from '@kubernetes/client-node';
import { API_VERSION, type InferenceService } from '../../../spec/schema.js';
import { parseDuration } from '../../../spec/duration.js';

/** The gateway's port for KEDA's external scaler (gRPC), as `tandem install` exposes it. */
export const KEDA_SCALER_PORT = 9090;

export function scaledObject(
  service: InferenceService,
  namespace: string,
): KubernetesObject & { spec: Record<string, unknown> } {
  const scaling = service.spec.autoscaling;
  if (!scaling) {
    throw new Error('spec.autoscaling: required for --to keda (the ScaledObject takes its bounds and delays from it)');
  }
  const seconds = (d: string) => Math.ceil(parseDuration(d) / 1000);
  const name = service.metadata.name;
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: { name, namespace, labels: { 'tandem.dev/service': name } },
    spec: {
      scaleTargetRef: { apiVersion: API_VERSION, kind: 'InferenceService', name },
      minReplicaCount: scaling.minReplicas,
      maxReplicaCount: scaling.maxReplicas,
      // To zero after this long inactive (the scaler reports activity as soon as a request waits).
      cooldownPeriod: seconds(scaling.scaleToZeroAfter ?? scaling.downscaleDelay),
      pollingInterval: 5,
      advanced: {
        horizontalPodAutoscalerConfig: {
          behavior: {
            scaleUp: { stabilizationWindowSeconds: seconds(scaling.upscaleDelay) },
            scaleDown: { stabilizationWindowSeconds: seconds(scaling.downscaleDelay) },
          },
        },
      },
      triggers: [
        {
          type: 'external-push',
          metadata: { scalerAddress: `tandem-gateway.${namespace}.svc:${KEDA_SCALER_PORT}`, service: name },
        },
      ],
    },
  };
}
