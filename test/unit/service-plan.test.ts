import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planService, type ObservedGroup } from '../../src/runtime/service-plan.js';

const group = (replica: number, templateHash = 'new', phase: ObservedGroup['phase'] = 'Ready'): ObservedGroup => ({
  replica,
  templateHash,
  phase,
});

test('missing replicas are created', () => {
  assert.deepEqual(planService(3, 'new', [group(1)]), [
    { kind: 'createGroup', replica: 0 },
    { kind: 'createGroup', replica: 2 },
  ]);
});

test('scaling down deletes the highest replicas first; zero deletes all', () => {
  assert.deepEqual(planService(1, 'new', [group(0), group(1), group(2)]), [
    { kind: 'deleteGroup', replica: 2 },
    { kind: 'deleteGroup', replica: 1 },
  ]);
  assert.deepEqual(planService(0, 'new', [group(0)]), [{ kind: 'deleteGroup', replica: 0 }]);
});

test('a rollout moves one group at a time, only while every other group is Ready', () => {
  assert.deepEqual(planService(3, 'new', [group(0, 'old'), group(1, 'old'), group(2, 'old')]), [
    { kind: 'updateGroup', replica: 0 },
  ]);
  assert.deepEqual(planService(3, 'new', [group(0, 'new', 'Starting'), group(1, 'old'), group(2, 'old')]), []);
  assert.deepEqual(planService(3, 'new', [group(0), group(1, 'old'), group(2, 'old')]), [
    { kind: 'updateGroup', replica: 1 },
  ]);
  assert.deepEqual(planService(3, 'new', [group(0), group(1), group(2)]), []);
});

test('an outdated group that is down is rolled at once (it is the one unavailable)', () => {
  assert.deepEqual(planService(2, 'new', [group(0, 'old', 'BackingOff'), group(1, 'old')]), [
    { kind: 'updateGroup', replica: 0 },
  ]);
});
