// Golden plans over the whole catalog: any change to the planner's numbers shows up here, and is
// accepted on purpose by regenerating (UPDATE_GOLDEN=1 npm run test:unit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODELS } from '../../src/planner/catalog.js';
import { GPUS } from '../../src/planner/gpus.js';
import { plan } from '../../src/planner/plan.js';

const golden = join(fileURLToPath(import.meta.url), '../../../../test/golden/plan-catalog.json');

function catalogPlans(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of MODELS) {
    for (const gpu of GPUS) {
      const p = plan({
        model: { arch: m },
        gpu,
        gpusPerNode: 8,
        maxNodes: 4,
        engine: 'vllm',
        dtype: m.moe && m.mla ? 'fp8' : 'bf16',
        kvDtype: 'auto',
        memoryUtilization: 0.92,
        maxModelLen: 8192,
      });
      const best = p.layouts[0];
      out[`${m.name} on ${gpu.name}`] = best
        ? `tp ${best.tp} × pp ${best.pp} on ${best.nodes} node(s): ${best.kvTokens} KV tokens, ${best.memory[0]!.weightsGiB.toFixed(2)} GiB weights/GPU`
        : `infeasible (${p.infeasible.length} layouts rejected)`;
    }
  }
  return out;
}

test('the best layout of every catalog model on every catalog GPU is unchanged', () => {
  const actual = catalogPlans();
  if (process.env.UPDATE_GOLDEN) writeFileSync(golden, `${JSON.stringify(actual, null, 2)}\n`);
  assert.ok(existsSync(golden), `${golden} is missing: it is checked in; UPDATE_GOLDEN=1 writes it on purpose`);
  assert.deepEqual(actual, JSON.parse(readFileSync(golden, 'utf8')));
});
