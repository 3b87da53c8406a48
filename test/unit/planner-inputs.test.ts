// The planner's inputs: engine releases and their reserves, GPUs and cloud shapes, config.json in its many dialects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelArch } from '../../src/planner/arch.js';
import { findModel } from '../../src/planner/catalog.js';
import { engineProfile } from '../../src/planner/engine-profile.js';
import { findGpu, GPUS } from '../../src/planner/gpus.js';
import { GiB, reserveBytes } from '../../src/planner/memory.js';
import { archFromHfConfig, resolveModel } from '../../src/planner/model-source.js';
import { capacity, plan, type PlanInput } from '../../src/planner/plan.js';
import { findShape, SHAPES } from '../../src/planner/shapes.js';

const fixtures = join(fileURLToPath(import.meta.url), '../../../../test/fixtures');
const h100 = findGpu('H100-80')!;
const llama8b = findModel('Llama-3.1-8B')!;
/** vLLM on one node of two H100s, 8K tokens. */
const twoH100s = (arch: ModelArch): PlanInput => ({
  model: { arch },
  gpu: h100,
  gpusPerNode: 2,
  maxNodes: 1,
  engine: 'vllm',
  dtype: 'bf16',
  kvDtype: 'auto',
  maxModelLen: 8192,
});
const resolveModelFromConfig = (c: Record<string, unknown>) => archFromHfConfig(c, String(c.model_type));

test('a vLLM version picks the memory model of its release', () => {
  assert.equal(engineProfile('vllm', '0.6.4').activation, 'topk-sampler');
  assert.equal(engineProfile('vllm', 'v0.7.3').activation, 'topk-sampler');
  assert.equal(engineProfile('vllm', '0.9.2').activation, 'topk-sampler');
  assert.equal(engineProfile('vllm', '0.16.0').activation, 'topk-sampler');
  assert.equal(engineProfile('vllm', '0.17.1').activation, 'sampler');
  assert.equal(engineProfile('vllm', '0.19.0').cudaGraphGiB, 0);
  assert.equal(engineProfile('vllm', '0.21.0').cudaGraphGiB, 1);
  assert.equal(engineProfile('vllm').version, 'latest');
  assert.equal(engineProfile('vllm').defaultUtilization(h100, 1, 1), 0.92);
  assert.equal(engineProfile('vllm', '0.20.2').defaultUtilization(h100, 1, 1), 0.9);
  assert.throws(() => engineProfile('vllm', 'banana'), /--engine-version: "banana" is not a vllm version/);
});

test('V0 profiles the whole max-model-len batch unless chunked prefill came on by itself (above 32K)', () => {
  const v0 = engineProfile('vllm', '0.6.4');
  assert.equal(v0.batch(h100, 20000).maxNumBatchedTokens, 20000);
  assert.equal(v0.batch(h100, 1024).maxNumBatchedTokens, 2048);
  assert.equal(v0.batch(h100, 40000).maxNumBatchedTokens, 2048);
  const v1 = engineProfile('vllm', '0.19.0');
  assert.deepEqual(v1.batch(h100, 20000), { maxNumBatchedTokens: 8192, maxNumSeqs: 1024 });
  assert.deepEqual(v1.batch(findGpu('A100-80')!, 20000), { maxNumBatchedTokens: 2048, maxNumSeqs: 256 });
});

test("SGLang's default fraction: by tp size before 0.5, from a reserve by GPU size from 0.5", () => {
  const old = engineProfile('sglang', '0.4.9');
  assert.deepEqual(
    [1, 2, 4, 8, 16].map((tp) => old.defaultUtilization(h100, tp, 1)),
    [0.88, 0.87, 0.85, 0.81, 0.79],
  );
  const now = engineProfile('sglang');
  assert.equal(now.defaultUtilization(h100, 1, 1), Math.round(((79.19 - 10) / 79.19) * 1000) / 1000);
  assert.equal(now.defaultUtilization(findGpu('L4')!, 2, 1), Math.round(((22.03 - 3) / 22.03) * 1000) / 1000);
  // SGLang's activations come out of the remainder: nothing else is reserved for them.
  assert.equal(
    reserveBytes(llama8b, now, { tp: 1, lastStage: true, gpu: h100, maxNumBatchedTokens: 8192, maxNumSeqs: 256 })
      .activation,
    0,
  );
});

test('tensor parallelism adds NCCL and all-reduce buffers only where GPUs have peer access', () => {
  const vllm = engineProfile('vllm', '0.19.0');
  const r = (gpu: string, tp: number) =>
    reserveBytes(llama8b, vllm, { tp, lastStage: true, gpu: findGpu(gpu)!, maxNumBatchedTokens: 2048, maxNumSeqs: 256 })
      .nonTorch / GiB;
  assert.equal(r('H100-80', 1), 0.25);
  assert.equal(r('H100-80', 2), 0.25 + 1.85);
  assert.equal(r('RTX-4090', 2), 0.25);
});

test('only the last pipeline stage samples; the stage with the smallest cache decides, and is named', () => {
  const input = twoH100s(llama8b);
  const { memory } = capacity(input, 1, 2);
  assert.ok(memory[1]!.activationGiB > memory[0]!.activationGiB);
  const layout = plan(input).layouts.find((l) => l.tp === 1 && l.pp === 2)!;
  assert.equal(layout.decidingStage, 1);
  assert.equal(layout.kvTokens, memory[1]!.kvTokens);
});

test('multimodal configs count their towers and projector, on the first stage', () => {
  const mistral = resolveModel(join(fixtures, 'mistral-small-3.1-config.json')).arch;
  // Pixtral: 24 layers of 1024 with a gated MLP of 4096, and its projector: ≈ 0.45 B parameters.
  assert.ok(mistral.encoderParams! > 0.4e9 && mistral.encoderParams! < 0.5e9, String(mistral.encoderParams));
  assert.equal(mistral.layers, 40);
  assert.equal(resolveModel(join(fixtures, 'llama-3.1-8b-config.json')).arch.encoderParams, undefined);
  const input = twoH100s(mistral);
  const textOnly = capacity({ ...input, model: { arch: { ...mistral, encoderParams: 0 } } }, 1, 2).memory;
  const withTowers = capacity(input, 1, 2).memory;
  assert.ok(Math.abs(withTowers[0]!.weightsGiB - textOnly[0]!.weightsGiB - (mistral.encoderParams! * 2) / GiB) < 1e-9);
  assert.equal(withTowers[1]!.weightsGiB, textOnly[1]!.weightsGiB);
});

test('every cloud shape names a catalog GPU, and every GPU names its source', () => {
  for (const s of SHAPES) assert.ok(findGpu(s.gpu), `${s.name}: ${s.gpu}`);
  for (const g of GPUS) assert.match(g.source ?? '', /^https:\/\//, g.name);
  assert.deepEqual(findShape('p5.48xlarge'), { ...findShape('P5.48XLARGE')!, gpu: 'H100-80', gpusPerNode: 8 });
  assert.equal(findShape('a3-ultragpu-8g')!.gpu, 'H200');
  assert.equal(findShape('Standard_ND96isr_MI300X_v5')!.gpu, 'MI300X');
});

test('any config.json plans: Llama-style, and GPT-2, Falcon and ChatGLM names for the same shapes', () => {
  const configs: Record<string, unknown>[] = [
    { model_type: 'gpt2', n_embd: 1600, n_head: 25, n_layer: 48, n_positions: 1024, vocab_size: 50257 },
    {
      model_type: 'falcon',
      hidden_size: 4544,
      num_attention_heads: 71,
      num_hidden_layers: 32,
      multi_query: true,
      vocab_size: 65024,
    },
    {
      model_type: 'chatglm',
      hidden_size: 4096,
      num_attention_heads: 32,
      multi_query_group_num: 2,
      kv_channels: 128,
      num_layers: 28,
      ffn_hidden_size: 13696,
      padded_vocab_size: 65024,
      seq_length: 32768,
    },
  ];
  const gpt2 = resolveModelFromConfig(configs[0]!);
  assert.equal(gpt2.intermediate, 4 * 1600);
  assert.equal(gpt2.tiedEmbeddings, true);
  assert.equal(resolveModelFromConfig(configs[1]!).kvHeads, 1);
  assert.equal(resolveModelFromConfig(configs[2]!).kvHeads, 2);
  for (const c of configs) {
    const p = plan({
      model: { arch: resolveModelFromConfig(c) },
      gpu: { name: '48 GiB GPU', memoryGiB: 48 },
      gpusPerNode: 2,
      maxNodes: 1,
      engine: 'vllm',
      dtype: 'bf16',
      kvDtype: 'auto',
    });
    assert.ok(p.layouts.length > 0, `${String(c.model_type)}: ${p.infeasible.map((i) => i.reason).join('; ')}`);
  }
});
