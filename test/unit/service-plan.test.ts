import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planService, type ObservedGroup } from '../../src/controller/service-plan.js';

const group = (replica: number, templateHash = 'new', phase: ObservedGroup['phase'] = 'Ready'): ObservedGroup => ({
  replica,
  templateHash,
  phase,
});
const once = { maxUnavailable: 1, maxSurge: 0 };

test('replicas 0..N-1 are wanted; any other group is removed, highest first; zero removes all', () => {
  assert.deepEqual(planService(3, 'new', once, [group(1)]), { wanted: [0, 1, 2], remove: [], roll: [] });
  assert.deepEqual(planService(1, 'new', once, [group(0), group(1), group(2)]), {
    wanted: [0],
    remove: [2, 1],
    roll: [],
  });
  assert.deepEqual(planService(0, 'new', once, [group(0)]), { wanted: [], remove: [0], roll: [] });
});

test('maxUnavailable 1: one Ready group rolls at a time, only while the others are Ready', () => {
  assert.deepEqual(planService(3, 'new', once, [group(0, 'old'), group(1, 'old'), group(2, 'old')]).roll, [0]);
  assert.deepEqual(
    planService(3, 'new', once, [group(0, undefined, 'Pending'), group(1, 'old'), group(2, 'old')]).roll,
    [],
  );
  assert.deepEqual(planService(3, 'new', once, [group(0), group(1, 'old'), group(2, 'old')]).roll, [1]);
  assert.deepEqual(planService(3, 'new', once, [group(0), group(1), group(2)]).roll, []);
});

test('maxUnavailable 2 rolls two at once; an outdated group that is down rolls at once', () => {
  const two = { maxUnavailable: 2, maxSurge: 0 };
  assert.deepEqual(planService(3, 'new', two, [group(0, 'old'), group(1, 'old'), group(2, 'old')]).roll, [0, 1]);
  assert.deepEqual(planService(2, 'new', once, [group(0, 'old', 'BackingOff'), group(1, 'old')]).roll, [0]);
});

test('maxSurge 1, maxUnavailable 0: an extra group first, an old one goes only once it is Ready', () => {
  const surge = { maxUnavailable: 0, maxSurge: 1 };
  const old = [group(0, 'old'), group(1, 'old')];
  assert.deepEqual(planService(2, 'new', surge, old), { wanted: [0, 1, 2], remove: [], roll: [] });
  assert.deepEqual(planService(2, 'new', surge, [...old, group(2, 'new', 'Starting')]).roll, []);
  assert.deepEqual(planService(2, 'new', surge, [...old, group(2)]).roll, [0]);
  // The last old group rolling: the surge group stays until it is Ready, then goes.
  const last = [group(0), group(1, undefined, 'Pending'), group(2)];
  assert.deepEqual(planService(2, 'new', surge, last), { wanted: [0, 1, 2], remove: [], roll: [] });
  assert.deepEqual(planService(2, 'new', surge, [group(0), group(1), group(2)]), {
    wanted: [0, 1],
    remove: [2],
    roll: [],
  });
});

test('a group whose members disagree on the template is outdated', () => {
  assert.deepEqual(planService(1, 'new', once, [group(0, 'mixed', 'Starting')]).roll, [0]);
});
