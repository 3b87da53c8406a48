// `tandem import`: an OCI AI Blueprints multi-node recipe (the raycluster mode's fields) becomes an
// InferenceService that validates; the recipe's own rules fail with the field named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { importOciRecipe } from '../../src/spec/oci-recipe.js';
import { SpecError, validateDocument } from '../../src/spec/load.js';
import { RECIPE } from '../fixtures/oci-recipe.js';

const problems = (recipe: unknown) => {
  try {
    importOciRecipe(recipe);
    return [];
  } catch (err) {
    if (err instanceof SpecError) return err.problems;
    throw err;
  }
};

test('a raycluster recipe becomes vLLM over Ray on the same nodes, shape and model', () => {
  const { service, notes } = importOciRecipe(RECIPE);
  const { service: valid, problems: invalid } = validateDocument(service);
  assert.deepEqual(invalid, []);
  const spec = valid!.spec;
  assert.equal(valid!.metadata.name, 'llama-70b-multinode');
  assert.equal(spec.engine.type, 'vllm');
  assert.equal(spec.engine.distributedExecutorBackend, 'ray');
  assert.equal(spec.parallelism.nodes, 3);
  assert.deepEqual(spec.resources, { cpu: 16, memory: '200G', gpu: 4 });
  assert.equal(spec.model.source, 'pvc://llama-70b-multinode-models/meta-llama/Llama-3.3-70B-Instruct');
  assert.equal(spec.model.servedName, 'Llama-3.3-70B-Instruct');
  assert.deepEqual(spec.workerTemplate?.nodeSelector, { 'node.kubernetes.io/instance-type': 'BM.GPU.A10.4' });
  assert.match(notes.join('\n'), /PersistentVolumeClaim llama-70b-multinode-models/);
});

test("the recipe's own rules, each naming its field", () => {
  const p = RECIPE.recipe_raycluster_params;
  assert.deepEqual(
    problems({ ...RECIPE, recipe_raycluster_params: { ...p, worker_node_num_cpus: 8, num_worker_nodes: 3 } }),
    [
      'recipe_raycluster_params.worker_node_num_cpus: 8 must equal head_node_num_cpus (16): the head and workers are uniform',
      'recipe_raycluster_params.num_worker_nodes: 3 must be recipe_node_pool_size − 1 (2)',
    ],
  );
  assert.deepEqual(problems({ ...RECIPE, recipe_nvidia_gpu_count: 0 }), [
    'recipe_nvidia_gpu_count: must be at least 1: the shape must have GPUs',
  ]);
  assert.deepEqual(problems({ ...RECIPE, recipe_mode: 'service' }), [
    'recipe_mode: must be "raycluster" (the multi-node recipe mode)',
  ]);
  const { head_node_cpu_mem_in_gbs: _m, ...missing } = p;
  assert.deepEqual(problems({ ...RECIPE, recipe_raycluster_params: missing }), [
    'recipe_raycluster_params.head_node_cpu_mem_in_gbs: must be a number',
  ]);
  assert.deepEqual(problems({ ...RECIPE, recipe_raycluster_params: { ...p, model_path_in_container: '/data/m' } }), [
    'recipe_raycluster_params.model_path_in_container: /data/m is not under any input_object_storage mount_location (/models)',
  ]);
});

test('tandem import prints the InferenceService, and exits 2 naming the file and field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-import-'));
  const cli = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
  writeFileSync(join(dir, 'ok.json'), JSON.stringify(RECIPE));
  const out = execFileSync(process.execPath, [cli, 'import', join(dir, 'ok.json')], {
    encoding: 'utf8',
    stdio: 'pipe',
  });
  assert.deepEqual(validateDocument(parse(out)).problems, []);
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...RECIPE, recipe_node_pool_size: 1 }));
  assert.throws(
    () => execFileSync(process.execPath, [cli, 'import', join(dir, 'bad.json')], { stdio: 'pipe' }),
    (err: { status: number; stderr: Buffer }) =>
      err.status === 2 && /bad\.json: recipe_node_pool_size: must be at least 2/.test(err.stderr.toString()),
  );
});
