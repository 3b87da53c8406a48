import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../src/spec/duration.js';

test('durations: Go-style units, combined; anything else is refused', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('30m'), 1_800_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('250ms'), 250);
  for (const bad of ['', '30', 'm', '1d', '-5s', '5 s', '1e3s'])
    assert.throws(() => parseDuration(bad), /not a duration/);
  assert.equal(formatDuration(5_400_000), '1h30m');
  assert.equal(formatDuration(1500), '1.5s');
  assert.equal(formatDuration(250), '250ms');
});
