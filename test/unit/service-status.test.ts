// The InferenceService's status counts what can serve: the scale subresource (and the HPA) read
// status.replicas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serviceStatus } from '../../src/platforms/kubernetes/service-status.js';
import type { GroupSnapshot, ServiceSnapshot } from '../../src/core/snapshot.js';

const group = (replica: number, phase: GroupSnapshot['phase']): GroupSnapshot => ({
  replica,
  phase,
  leader: { host: `10.0.0.${replica}`, port: 8080 },
  restarts: 0,
  members: [
    { index: 0, role: 'leader', address: `10.0.0.${replica}`, state: phase === 'Ready' ? 'Ready' : 'Starting' },
  ],
});

test("status.replicas leaves out groups being deleted and a rollout's surge groups", () => {
  const view: ServiceSnapshot = {
    name: 's',
    servedName: 's',
    replicas: 2,
    slots: 1,
    templateHash: 'h',
    // Rolling: replica 1 is replaced (being deleted), replica 2 is the surge group on the new template.
    groups: [group(0, 'Ready'), group(1, 'Deleting'), group(2, 'Starting')],
  };
  const status = serviceStatus(1, view, 1, [], new Date(0));
  assert.equal(status.replicas, 1);
  assert.equal(status.readyReplicas, 1);
  assert.equal(status.readyGroups, '1/2');
});
