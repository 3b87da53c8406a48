// How accurate and how fast planning is. Accuracy: the planner's KV capacity against every published
// start-up in test/fixtures/published-startups.ts, each case's error and the median and mean
// |error|. Speed: every catalog model × every catalog GPU × every engine, several rounds, against a
// 1 s target for the whole catalog. Run: npm run bench:plan
import { MODELS } from '../src/planner/catalog.js';
import { GPUS } from '../src/planner/gpus.js';
import { plan, type PlanEngine } from '../src/planner/plan.js';
import { compare, STARTUPS } from '../test/fixtures/published-startups.js';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const errors = STARTUPS.map((s) => {
  const c = compare(s);
  const what = s.loggedKvGiB !== undefined ? 'GiB' : 'tokens';
  const layout = `tp ${s.tp} × pp ${s.pp}`.padEnd(13);
  console.log(
    `${pct(c.error).padStart(6)}  ${s.engine} ${s.version.padEnd(6)} ${s.gpu.padEnd(8)} ${layout} ${s.model} (planned ${c.planned.toFixed(what === 'GiB' ? 2 : 0)}, logged ${c.logged.toFixed(what === 'GiB' ? 2 : 0)} ${what}${c.rejected ? '; refused, as the engine did' : ''})`,
  );
  return Math.abs(c.error);
}).sort((a, b) => a - b);
const mid = errors.length / 2;
const medianError = errors.length % 2 ? errors[Math.floor(mid)]! : (errors[mid - 1]! + errors[mid]!) / 2;
const meanError = errors.reduce((a, b) => a + b, 0) / errors.length;
console.log(
  `KV capacity against ${errors.length} published start-ups: median |error| ${pct(medianError)}, mean |error| ${pct(meanError)}, max ${pct(errors.at(-1)!)}\n`,
);

const ROUNDS = 5;
const engines: PlanEngine[] = ['vllm', 'sglang', 'llamacpp'];
const times: number[] = [];
let plans = 0;
let layouts = 0;
for (let r = 0; r < ROUNDS; r++) {
  const t0 = performance.now();
  for (const m of MODELS)
    for (const gpu of GPUS)
      for (const engine of engines) {
        const p = plan({
          model: { arch: m },
          gpu,
          gpusPerNode: 8,
          maxNodes: 4,
          engine,
          dtype: 'bf16',
          kvDtype: 'auto',
          maxModelLen: 8192,
        });
        plans++;
        layouts += p.layouts.length + p.infeasible.length;
      }
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)]!;
console.log(
  `planning the catalog: ${MODELS.length} models × ${GPUS.length} GPUs × ${engines.length} engines = ${plans / ROUNDS} plans (${layouts / ROUNDS} layouts) per round`,
);
console.log(
  `median ${median.toFixed(1)} ms per round (min ${times[0]!.toFixed(1)}, max ${times.at(-1)!.toFixed(1)}); ${(median / (plans / ROUNDS)).toFixed(3)} ms per plan`,
);
console.log(`ratio to the 1 s target: ${(median / 1000).toFixed(4)}`);
