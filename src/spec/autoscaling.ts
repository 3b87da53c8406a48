// spec.autoscaling, as the decision reads it: durations in milliseconds, defaults filled in.
import { parseDuration } from './duration.js';
import type { AutoscalingSpec } from './schema.js';
import type { Autoscaling } from '../core/service.js';

/** `slots`: requests one group serves at once, the target when the spec names none. */
export function autoscalingOf(spec: AutoscalingSpec, slots: number): Autoscaling {
  const downscaleDelayMs = parseDuration(spec.downscaleDelay);
  return {
    minReplicas: spec.minReplicas,
    maxReplicas: spec.maxReplicas,
    initialReplicas: spec.initialReplicas ?? spec.minReplicas,
    target: spec.targetOngoingRequests ?? slots,
    upscaleDelayMs: parseDuration(spec.upscaleDelay),
    downscaleDelayMs,
    scaleToZeroAfterMs: spec.scaleToZeroAfter === undefined ? downscaleDelayMs : parseDuration(spec.scaleToZeroAfter),
    upscaleSmoothing: spec.upscaleSmoothingFactor,
    downscaleSmoothing: spec.downscaleSmoothingFactor,
    lookBackMs: parseDuration(spec.lookBackPeriod),
    policy: spec.policy,
  };
}
