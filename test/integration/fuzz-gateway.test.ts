import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFuzzSession } from '../fuzz/gateway-session.js';

const SEED = 20261124;
const CASES = 150;

test(`gateway fuzz (seed ${SEED}, ${CASES} cases): no crash, nothing outstanding, no descriptor leaked`, async (t) => {
  const r = await gatewayFuzzSession(SEED, CASES);
  t.diagnostic(`gateway fuzz: ${JSON.stringify(r)}`);
  assert.equal(r.cases, CASES);
  assert.equal(r.outstanding, 0);
  assert.equal(r.internalErrors, 0);
  assert.equal(r.clientConnections, 0);
  assert.ok(r.descriptorsAfter <= r.descriptorsBefore, `${r.descriptorsBefore} → ${r.descriptorsAfter} descriptors`);
});
