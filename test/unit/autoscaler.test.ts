// The autoscaler's executor: what it scales, and when, from what the gateway has in hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Autoscaler } from '../../src/autoscaler/autoscaler.js';
import type { Autoscaling, ServiceTemplate } from '../../src/core/service.js';
import type { LoadSource, ScaleTarget } from '../../src/core/serving.js';

const config: Autoscaling = {
  minReplicas: 0,
  maxReplicas: 2,
  initialReplicas: 0,
  target: 2,
  upscaleDelayMs: 1000,
  downscaleDelayMs: 2000,
  scaleToZeroAfterMs: 3000,
  upscaleSmoothing: 1,
  downscaleSmoothing: 1,
  lookBackMs: 1000,
  policy: 'ahead',
};

test('a burst at zero is seen whole: requests still waiting while the first group starts scale on at once', () => {
  let load = { requests: 1, queued: 1 };
  const gateway: LoadSource = { load: () => load, serving: () => 0, retire: () => undefined };
  const scaled: string[] = [];
  const target: ScaleTarget = {
    scale: (_service, from, to) => scaled.push(`${from} → ${to}`),
    note: () => undefined,
    startupMs: () => undefined,
    groups: () => new Set(),
  };
  const autoscaler = new Autoscaler(target, gateway);
  autoscaler.manage({ name: 'auto', servedName: 'auto-model', replicas: 0, autoscaling: config } as ServiceTemplate);

  autoscaler.demand('auto-model'); // the burst's first request
  assert.deepEqual(scaled, ['0 → 1']);
  // The rest arrive before the first group is Ready; no tick comes before it serves them all.
  load = { requests: 32, queued: 32 };
  autoscaler.demand('auto-model');
  assert.deepEqual(scaled, ['0 → 1', '1 → 2']);
  assert.equal(autoscaler.desired('auto'), 2);
  autoscaler.demand('auto-model');
  assert.deepEqual(scaled, ['0 → 1', '1 → 2'], 'never past maxReplicas');
  autoscaler.demand('another-model');
  assert.equal(scaled.length, 2);
});
