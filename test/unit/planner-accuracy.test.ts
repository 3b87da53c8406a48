// The planner's KV capacity against real start-ups (test/fixtures/published-startups.ts): every
// published case within ±10% of what the engine logged, and every start-up the engine refused is a
// layout the plan rejects, with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compare, STARTUPS } from '../fixtures/published-startups.js';

const TOLERANCE = 0.1;

for (const s of STARTUPS) {
  const layout = `${s.model} on ${s.tp * s.pp}× ${s.gpu} (tp ${s.tp}, pp ${s.pp}), ${s.engine} ${s.version}`;
  test(`KV capacity within ±${TOLERANCE * 100}% of ${layout}: ${s.source}`, (t) => {
    const c = compare(s);
    t.diagnostic(`planned ${c.planned.toFixed(2)}, logged ${c.logged.toFixed(2)}: ${(c.error * 100).toFixed(1)}%`);
    assert.ok(
      Math.abs(c.error) <= TOLERANCE,
      `planned ${c.planned.toFixed(2)}, ${s.engine} logged ${c.logged} (${s.logged}): ${(c.error * 100).toFixed(1)}%`,
    );
    if (s.refused) {
      assert.ok(c.rejected, `${s.engine} refused to start, but the plan accepts tp ${s.tp} × pp ${s.pp}`);
      assert.match(c.rejected, s.refused);
    } else assert.equal(c.rejected, undefined, `the plan rejects a layout ${s.engine} ran: ${c.rejected}`);
  });
}

test('the published start-ups cover what the planner models', () => {
  const has = (f: (s: (typeof STARTUPS)[number]) => boolean) => STARTUPS.some(f);
  assert.ok(STARTUPS.length >= 15);
  for (const tp of [1, 2, 4])
    assert.ok(
      has((s) => s.tp === tp),
      `tp ${tp}`,
    );
  assert.ok(
    has((s) => s.pp > 1),
    'pp > 1',
  );
  assert.ok(
    has((s) => s.kvDtype === 'fp8'),
    'fp8 KV',
  );
  assert.ok(has((s) => s.dtype === 'fp8') && has((s) => s.dtype === 'gptq'), 'fp8 and int4 weights');
  assert.ok(
    has((s) => s.engine === 'sglang'),
    'SGLang',
  );
  assert.ok(
    has((s) => s.refused !== undefined),
    'a refused start-up',
  );
  assert.ok(new Set(STARTUPS.map((s) => s.version.split('.').slice(0, 2).join('.'))).size >= 3, 'releases');
});
