// `npm test`: build what the tests need (cached), start the test control plane (or reuse a running
// one), run every tier with node's test runner, and stop the control plane if this run started it.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureLlamaBinaries } from '../src/engine/llamacpp/build.js';
import { ensureLlamaSource } from '../src/engine/llamacpp/source.js';
import { ensureTinyLlama } from '../src/model/tiny-llama.js';
import { stderrProgress } from '../src/util/progress.js';
import { startCluster, stopCluster } from './k8s/cluster.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const TIERS = ['unit', 'integration', 'k8s'];

await ensureLlamaBinaries(stderrProgress);
await ensureTinyLlama((await ensureLlamaSource(stderrProgress)).dir, stderrProgress);
const cluster = await startCluster(stderrProgress);
stderrProgress(`test control plane: KUBECONFIG=${cluster.kubeconfig}${cluster.started ? '' : ' (reused)'}`);

const files = TIERS.flatMap((tier) =>
  readdirSync(join(here, tier))
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => join(here, tier, f)),
);
const run = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
if (cluster.started) await stopCluster();
process.exitCode = run.status ?? 1;
