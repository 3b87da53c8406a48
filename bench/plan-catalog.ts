// How long planning takes: every catalog model × every catalog GPU × every engine, several rounds.
// The target is under 1 s for the whole catalog. Run: npm run bench:plan
import { MODELS } from '../src/planner/catalog.js';
import { GPUS } from '../src/planner/gpus.js';
import { plan, type PlanEngine } from '../src/planner/plan.js';

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
          memoryUtilization: 0.92,
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
