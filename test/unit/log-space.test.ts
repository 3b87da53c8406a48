import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FULL_BELOW, logSpaceChange, ROOM_FROM } from '../../src/platforms/local/log-space.js';

test('the log directory is full below 1 MiB free and has room again from 4 MiB: said once each, no flapping at the edge', () => {
  assert.equal(logSpaceChange(false, 0), 'full');
  assert.equal(logSpaceChange(false, FULL_BELOW - 1), 'full');
  assert.equal(logSpaceChange(false, FULL_BELOW), undefined);
  assert.equal(logSpaceChange(true, 0), undefined, 'full already: said once');
  assert.equal(logSpaceChange(true, FULL_BELOW + 1), undefined, 'a little room at the edge is not room');
  assert.equal(logSpaceChange(true, ROOM_FROM - 1), undefined);
  assert.equal(logSpaceChange(true, ROOM_FROM), 'room');
  assert.equal(logSpaceChange(false, ROOM_FROM * 100), undefined);
});
