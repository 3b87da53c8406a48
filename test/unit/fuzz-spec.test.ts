import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzSpecs } from '../fuzz/spec-fuzz.js';

const SEED = 20261124;
const CASES = 1000;

test(`spec loader fuzz (seed ${SEED}, ${CASES} cases): every input is services or listed problems`, (t) => {
  const r = fuzzSpecs(SEED, CASES);
  t.diagnostic(`spec fuzz: ${r.cases} cases, ${r.accepted} accepted, ${r.crashes.length} crashes`);
  assert.equal(r.cases, CASES);
  assert.deepEqual(r.crashes, []);
});
