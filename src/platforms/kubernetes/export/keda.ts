// `tandem render --to keda`: a KEDA ScaledObject that applies Tandem's autoscaling decision (the
// gateway's external-push scaler, autoscaler/keda.ts) to an InferenceService's scale subresource:
// spec.autoscaling's bounds; no delay, window or tolerance of KEDA's or the HPA's own, since the
// decision has them already (its HPA then asks for exactly the count the gateway reports).
import type { KubernetesObject } from '@kubernetes/client-node';
import { API_VERSION, type InferenceService } from '../../../spec/schema.js';

/** The gateway's port for KEDA's external scaler (gRPC), as `tandem install` exposes it. */
export const KEDA_SCALER_PORT = 9090;

export function scaledObject(
  service: InferenceService,
  namespace: string,
): KubernetesObject & { spec: Record<string, unknown> } {
  const scaling = service.spec.autoscaling;
  if (!scaling) {
    throw new Error(
      'spec.autoscaling: required for --to keda (the ScaledObject applies the decision the gateway makes from it)',
    );
  }
  const name = service.metadata.name;
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: { name, namespace, labels: { 'tandem.dev/service': name } },
    spec: {
      scaleTargetRef: { apiVersion: API_VERSION, kind: 'InferenceService', name },
      minReplicaCount: scaling.minReplicas,
      maxReplicaCount: scaling.maxReplicas,
      // The decision waited scaleToZeroAfter already: to zero as soon as it says so.
      cooldownPeriod: 0,
      pollingInterval: 5,
      advanced: {
        horizontalPodAutoscalerConfig: {
          behavior: {
            scaleUp: { stabilizationWindowSeconds: 0, tolerance: 0 },
            scaleDown: { stabilizationWindowSeconds: 0, tolerance: 0 },
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
