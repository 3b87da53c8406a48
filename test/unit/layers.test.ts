import { test } from 'node:test';
import assert from 'node:assert/strict';
import { offloadArgs, splitLayers } from '../../src/engine/llamacpp/layers.js';
import { threadsFor } from '../../src/engine/llamacpp/service.js';

test('layers are shared out evenly, the first nodes taking the remainder', () => {
  assert.deepEqual(splitLayers(12, 1), [12]);
  assert.deepEqual(splitLayers(12, 3), [4, 4, 4]);
  assert.deepEqual(splitLayers(13, 3), [5, 4, 4]);
  assert.deepEqual(splitLayers(12, 12), Array(12).fill(1));
});

test('a split that cannot work says why', () => {
  assert.throws(() => splitLayers(12, 13), /cannot split 12 layers over 13 nodes/);
  assert.throws(() => splitLayers(12, 0), /nodes must be an integer ≥ 1/);
});

test('offload flags: the leader keeps its share, the last worker also takes the output layer', () => {
  assert.deepEqual(offloadArgs([12]), ['--n-gpu-layers', '0']);
  assert.deepEqual(offloadArgs([6, 6]), ['--n-gpu-layers', '7', '--tensor-split', '7']);
  assert.deepEqual(offloadArgs([5, 4, 4]), ['--n-gpu-layers', '9', '--tensor-split', '4,5']);
});

test('cpu quantities become whole threads', () => {
  assert.equal(threadsFor(undefined), undefined);
  assert.equal(threadsFor(2), 2);
  assert.equal(threadsFor('500m'), 1);
  assert.equal(threadsFor('1.5'), 2);
});
