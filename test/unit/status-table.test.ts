import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statusTable } from '../../src/cli/status-table.js';
import type { ServiceSnapshot } from '../../src/core/snapshot.js';

test('the status table shows each service: ready and desired replicas, the autoscaling range and its last decision', () => {
  const at = Date.parse('2026-11-25T10:00:05Z');
  const services: ServiceSnapshot[] = [
    {
      name: 'idle',
      servedName: 'idle-model',
      replicas: 0,
      slots: 2,
      templateHash: 'h',
      groups: [],
      autoscaling: {
        minReplicas: 0,
        maxReplicas: 3,
        last: { at, from: 1, to: 0, reason: 'no request for 60s: scaling to zero' },
      },
    },
    { name: 'fixed', servedName: 'fixed-model', replicas: 2, slots: 4, templateHash: 'h', groups: [] },
  ];
  const lines = statusTable(services).split('\n');
  const row = (name: string) => lines.find((l) => l.startsWith(`${name} `))!.split(/\s{2,}/);
  assert.deepEqual(row('idle'), ['idle', '0', '0', '0–3', '10:00:05 1 → 0: no request for 60s: scaling to zero']);
  assert.deepEqual(row('fixed'), ['fixed', '0', '2', '-', '-']);
});
