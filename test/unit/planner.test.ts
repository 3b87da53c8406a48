import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { paramCounts } from '../../src/planner/arch.js';
import { findModel, MODELS } from '../../src/planner/catalog.js';
import { vllmBatchDefaults } from '../../src/planner/engine-profile.js';
import { findGpu } from '../../src/planner/gpus.js';
import { weightFormat } from '../../src/planner/dtypes.js';
import { kvBytesPerTokenLayer, kvHeadsPerRank, ppPartition } from '../../src/planner/memory.js';
import { resolveModel } from '../../src/planner/model-source.js';
import { plan, tensorParallelProblem, type PlanInput } from '../../src/planner/plan.js';
import { layoutSvg } from '../../src/planner/render.js';

const fixtures = join(fileURLToPath(import.meta.url), '../../../../test/fixtures');
const model = (name: string) => findModel(name)!;
const input = (over: Partial<PlanInput> & { model: PlanInput['model'] }): PlanInput => ({
  gpu: findGpu('H100-80')!,
  gpusPerNode: 8,
  maxNodes: 2,
  engine: 'vllm',
  dtype: 'bf16',
  kvDtype: 'auto',
  memoryUtilization: 0.92,
  ...over,
});

test("pipeline layers follow vLLM's get_pp_indices (remainder to the stages before the last)", () => {
  assert.deepEqual(ppPartition(20, 4), [5, 5, 5, 5]);
  assert.deepEqual(ppPartition(61, 2), [31, 30]);
  assert.deepEqual(ppPartition(61, 4), [15, 15, 16, 15]);
  assert.deepEqual(ppPartition(32, 3), [11, 11, 10]);
  assert.deepEqual(
    ppPartition(126, 16).reduce((a, b) => a + b),
    126,
  );
});

test('parameter counts match the published sizes', () => {
  const billions = (name: string) => paramCounts(model(name)).total / 1e9;
  assert.ok(Math.abs(billions('Llama-3.1-8B') - 8.03) < 0.01);
  assert.ok(Math.abs(billions('Llama-3.1-70B') - 70.55) < 0.05);
  assert.ok(Math.abs(billions('Llama-3.1-405B') - 405.85) < 0.2);
  assert.ok(Math.abs(billions('Llama-3.2-1B') - 1.24) < 0.01);
  assert.ok(Math.abs(billions('Qwen2.5-7B') - 7.62) < 0.01);
  assert.ok(Math.abs(billions('Mixtral-8x7B') - 46.7) < 0.1);
  assert.ok(Math.abs(billions('DeepSeek-V3') - 671) < 1);
});

test('heads must divide by tp; KV heads and tp must divide one another', () => {
  const fmt = weightFormat('bf16');
  assert.match(
    tensorParallelProblem(model('Qwen2.5-32B'), 16, fmt)!,
    /attention heads \(40\) are not divisible by tp 16/,
  );
  assert.equal(tensorParallelProblem(model('Qwen2.5-7B'), 4, fmt), undefined);
  const odd = resolveModel(join(fixtures, 'odd-heads-34b.json')).arch;
  assert.match(tensorParallelProblem(odd, 2, fmt)!, /KV heads \(5\) and tp 2 do not divide one another/);
  assert.match(tensorParallelProblem(odd, 4, fmt)!, /attention heads \(30\) are not divisible by tp 4/);
});

// Why Qwen's AWQ release of Qwen2.5-72B pads intermediate_size to 29696: 29568 does not shard.
test('AWQ/GPTQ shards must hold whole quantization groups (Qwen2.5-72B unpadded cannot shard at all)', () => {
  assert.match(
    tensorParallelProblem(model('Qwen2.5-72B'), 8, weightFormat('awq'))!,
    /29568 \/ 8\) must hold whole quantization groups of 128/,
  );
  assert.match(tensorParallelProblem(model('Qwen2.5-72B'), 2, weightFormat('awq'))!, /29568 \/ 2\)/);
  assert.equal(tensorParallelProblem(model('Qwen2.5-72B'), 1, weightFormat('awq')), undefined);
  assert.equal(
    tensorParallelProblem({ ...model('Qwen2.5-72B'), intermediate: 29696 }, 8, weightFormat('awq')),
    undefined,
  );
  assert.equal(tensorParallelProblem(model('Qwen2.5-72B'), 8, weightFormat('bf16')), undefined);
});

test('KV heads are replicated when tp exceeds them; MLA keeps one latent per token on every rank', () => {
  const llama = model('Llama-3.1-8B');
  assert.equal(kvHeadsPerRank(llama, 4), 2);
  assert.equal(kvHeadsPerRank(llama, 16), 1);
  assert.equal(kvBytesPerTokenLayer(llama, 1, 2), 2 * 8 * 128 * 2);
  assert.equal(kvBytesPerTokenLayer(llama, 16, 2), kvBytesPerTokenLayer(llama, 8, 2));
  const ds = model('DeepSeek-V3');
  assert.equal(kvBytesPerTokenLayer(ds, 1, 2), (512 + 64) * 2);
  assert.equal(kvBytesPerTokenLayer(ds, 8, 2), (512 + 64) * 2);
  const p = plan(input({ model: { arch: llama }, maxNodes: 2, maxModelLen: 8192 }));
  const tp16 = p.layouts.find((l) => l.tp === 16)!;
  assert.ok(tp16.warnings.some((w) => /replicated 2×/.test(w)));
  assert.ok(tp16.warnings.some((w) => /crosses nodes/.test(w)));
});

test('MoE: every expert is stored, only the active ones are read per token', () => {
  const ds = plan(
    input({ model: { arch: model('DeepSeek-V3') }, gpu: findGpu('H200')!, dtype: 'fp8', maxModelLen: 32768 }),
  );
  const best = ds.layouts[0]!;
  assert.equal(best.tp, 8);
  assert.equal(best.pp, 1, 'DeepSeek-V3 in fp8 fits one 8×H200 node');
  const stored = best.memory[0]!.weightsGiB;
  assert.ok(stored > 75 && stored < 90, `${stored} GiB per GPU`);
  // 37B active of 671B: a decode step reads far less than is stored.
  assert.ok(best.decodeTokensPerSecondMax! > (4800e9 / (stored * 1024 ** 3)) * 10);
});

test("the seeds' cases: Llama-3.1-405B on two 8×H100 nodes → tp 8 × pp 2", () => {
  const p = plan(input({ model: resolveModel('Llama-3.1-405B'), maxModelLen: 32768 }));
  const best = p.layouts[0]!;
  assert.deepEqual([best.tp, best.pp, best.nodes], [8, 2, 2]);
  assert.deepEqual(best.flags.args.slice(0, 4), ['--tensor-parallel-size', '8', '--pipeline-parallel-size', '2']);
  assert.ok(p.infeasible.some((i) => i.tp === 8 && i.pp === 1 && /weights do not fit/.test(i.reason)));
});

test("the seeds' cases: a model that does not split evenly over 4 GPUs → pp 4", () => {
  const p = plan(
    input({
      model: resolveModel(join(fixtures, 'odd-heads-34b.json')),
      gpu: findGpu('A10')!,
      gpusPerNode: 4,
      maxNodes: 1,
      maxModelLen: 4096,
    }),
  );
  assert.deepEqual(
    p.layouts.map((l) => [l.tp, l.pp]),
    [[1, 4]],
  );
  assert.deepEqual(p.layouts[0]!.flags.env, {}, '56 layers split evenly over 4 stages');
  const reasons = p.infeasible.map((i) => i.reason).join('\n');
  assert.match(reasons, /attention heads \(30\) are not divisible by tp 4/);
  assert.match(reasons, /weights do not fit/);
});

test('uneven pipeline splits get VLLM_PP_LAYER_PARTITION; SGLang and llama.cpp get their own flags', () => {
  const ds = plan(input({ model: { arch: model('DeepSeek-V3') }, dtype: 'fp8', maxModelLen: 16384 }));
  const tp8pp2 = ds.layouts.find((l) => l.tp === 8 && l.pp === 2)!;
  assert.deepEqual(tp8pp2.flags.env, { VLLM_PP_LAYER_PARTITION: '31,30' });
  const sg = plan(input({ model: { arch: model('Llama-3.1-405B') }, engine: 'sglang', maxModelLen: 8192 }));
  assert.deepEqual(sg.layouts[0]!.flags.args.slice(0, 4), ['--tp', '8', '--pp-size', '2']);
  assert.ok(sg.layouts[0]!.flags.args.includes('--nnodes'));
  const lc = plan(
    input({
      model: { arch: model('Llama-3.1-70B') },
      engine: 'llamacpp',
      dtype: 'gguf-q4_k_m',
      gpu: findGpu('L4')!,
      gpusPerNode: 1,
      maxNodes: 4,
      maxModelLen: 4096,
    }),
  );
  assert.ok(lc.layouts.every((l) => l.tp === 1));
  assert.ok(lc.layouts[0]!.flags.args.includes('--tensor-split'));
});

test('a sequence at the maximum length must fit', () => {
  const p = plan(
    input({ model: { arch: model('Llama-3.1-70B') }, gpu: findGpu('A100-80')!, maxNodes: 1, maxModelLen: 131072 }),
  );
  assert.ok(
    p.infeasible.some((i) => /one sequence of 131072 tokens does not fit/.test(i.reason)),
    JSON.stringify(p.infeasible),
  );
});

test('model sources: config.json files and folders, GGUF metadata', () => {
  const fromFile = resolveModel(join(fixtures, 'llama-3.1-8b-config.json')).arch;
  assert.deepEqual({ ...fromFile, name: 'x' }, { ...model('Llama-3.1-8B'), name: 'x' });
  const ds = resolveModel(join(fixtures, 'deepseek-v3-config.json')).arch;
  assert.equal(paramCounts(ds).total, paramCounts(model('DeepSeek-V3')).total);
  assert.throws(() => resolveModel('GPT-9'), /unknown model "GPT-9"/);
});

test('vLLM batch defaults depend on the GPU', () => {
  assert.deepEqual(vllmBatchDefaults(findGpu('H100-80')!), { maxNumBatchedTokens: 8192, maxNumSeqs: 1024 });
  assert.deepEqual(vllmBatchDefaults(findGpu('A100-80')!), { maxNumBatchedTokens: 2048, maxNumSeqs: 256 });
  assert.deepEqual(vllmBatchDefaults(findGpu('L4')!), { maxNumBatchedTokens: 2048, maxNumSeqs: 256 });
});

test('the SVG draws every GPU of every node, labelled with its stage and shard', () => {
  const p = plan(input({ model: { arch: model('Llama-3.1-405B') }, maxModelLen: 8192 }));
  const svg = layoutSvg(p, p.layouts[0]!);
  assert.equal((svg.match(/<text[^>]*>GPU \d<\/text>/g) ?? []).length, 16);
  assert.match(svg, /stage 1: L63–125/);
  assert.match(svg, /shard 8\/8/);
  assert.ok(svg.startsWith('<svg') && svg.trim().endsWith('</svg>'));
});

test('every catalog model plans on every GPU without error', () => {
  for (const m of MODELS)
    for (const g of ['A10', 'L4', 'L40S', 'A100-40', 'A100-80', 'H100-80', 'H200', 'B200', 'MI300X']) {
      const p = plan(input({ model: { arch: m }, gpu: findGpu(g)!, maxNodes: 4, maxModelLen: 8192 }));
      assert.ok(p.layouts.length + p.infeasible.length > 0);
    }
});

test('auto layout on the embedded default: more memory per node, fewer nodes; too little says why', async () => {
  const { autoLayout } = await import('../../src/engine/llamacpp/auto.js');
  const arch = model('Llama-3.2-1B');
  const bytes = paramCounts(arch).total * 2;
  const big = autoLayout(arch, bytes, 4 * 1024 ** 3, 4096);
  const small = autoLayout(arch, bytes, 1 * 1024 ** 3, 4096);
  assert.equal(big.nodes, 1);
  assert.ok(small.nodes > 2 && small.layers.reduce((a, b) => a + b) === 16, JSON.stringify(small));
  assert.throws(
    () => autoLayout(arch, bytes, 64 * 1024 ** 2, 4096),
    /auto: no group of up to 16 nodes with 64 MiB each holds the model \(weights do not fit/,
  );
});
