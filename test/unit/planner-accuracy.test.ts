// The planner's KV capacity against what real vLLM start-ups logged, published in public issues
// and pull requests. Each row gives the run's own inputs (model, GPU, tp, utilisation, and the
// tokens its profiling run pushed through the model: V0 profiled max_num_batched_tokens =
// max_model_len unless chunked prefill was on) and the capacity vLLM logged (V0 logged
// "# GPU blocks: N", i.e. N × 16 tokens; V1 logs "GPU KV cache size: N tokens").
// The plan must be within ±10% of each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelArch } from '../../src/planner/arch.js';
import { findGpu, findModel } from '../../src/planner/catalog.js';
import { resolveModel } from '../../src/planner/model-source.js';
import { capacity } from '../../src/planner/plan.js';

const fixtures = join(fileURLToPath(import.meta.url), '../../../../test/fixtures');
const llama3_8b = findModel('Llama-3.1-8B')!; // Meta-Llama-3-8B has the same shapes
const llama2_7b = resolveModel(join(fixtures, 'llama-2-7b-config.json')).arch;

interface Report {
  source: string;
  model: ModelArch;
  gpu: string;
  tp: number;
  maxModelLen: number;
  utilization: number;
  profiledTokens: number;
  maxNumSeqs: number;
  loggedTokens: number;
  logged: string;
}

const REPORTS: Report[] = [
  {
    source: 'https://github.com/vllm-project/vllm/issues/10517 (RTX 3090, max len 20k)',
    model: llama3_8b,
    gpu: 'RTX-3090',
    tp: 1,
    maxModelLen: 20000,
    utilization: 0.9,
    profiledTokens: 20000,
    maxNumSeqs: 256,
    loggedTokens: 1952 * 16,
    logged: '# GPU blocks: 1952',
  },
  {
    source: 'https://github.com/vllm-project/vllm/issues/10517 (RTX 3090, max len 29k)',
    model: llama3_8b,
    gpu: 'RTX-3090',
    tp: 1,
    maxModelLen: 29000,
    utilization: 0.9,
    profiledTokens: 29000,
    maxNumSeqs: 256,
    loggedTokens: 23648,
    logged: '# GPU blocks: 1478 … maximum number of tokens that can be stored in KV cache (23648)',
  },
  {
    source: 'https://github.com/vllm-project/vllm/pull/2031 (Llama-2-7B, TP=1, 1×A100-80GB)',
    model: llama2_7b,
    gpu: 'A100-80',
    tp: 1,
    maxModelLen: 4096,
    utilization: 0.9,
    profiledTokens: 4096,
    maxNumSeqs: 256,
    loggedTokens: 7351 * 16,
    logged: '# GPU blocks: 7351',
  },
  {
    source: 'https://github.com/vllm-project/vllm/pull/10511 (vllm serve meta-llama/Meta-Llama-3-8B on H100)',
    model: llama3_8b,
    gpu: 'H100-80',
    tp: 1,
    maxModelLen: 8192,
    utilization: 0.9,
    profiledTokens: 8192,
    maxNumSeqs: 256,
    // Logged: available_kv_cache_memory 53.29GiB; 128 KiB per token, in whole blocks of 16.
    loggedTokens: Math.floor((53.29 * 1024 ** 3) / (128 * 1024) / 16) * 16,
    logged: 'available_kv_cache_memory 53.29GiB',
  },
  {
    source: 'https://github.com/casys-kaist/LLMServingSim/pull/59 (RTX 4090, Llama-3.1-8B, bf16, tp1; vLLM meta.json)',
    model: llama3_8b,
    gpu: 'RTX-4090',
    tp: 1,
    maxModelLen: 2048,
    utilization: 0.9,
    profiledTokens: 2048,
    maxNumSeqs: 256,
    loggedTokens: 41408,
    logged: '"num_gpu_blocks": 2588, "block_size": 16, "num_kv_tokens": 41408',
  },
];

for (const r of REPORTS) {
  test(`KV capacity within ±10% of ${r.source}`, () => {
    const { memory } = capacity(
      {
        model: { arch: r.model },
        gpu: findGpu(r.gpu)!,
        gpusPerNode: r.tp,
        maxNodes: 1,
        engine: 'vllm',
        dtype: 'bf16',
        kvDtype: 'auto',
        memoryUtilization: r.utilization,
        maxModelLen: r.maxModelLen,
        maxNumBatchedTokens: r.profiledTokens,
        maxNumSeqs: r.maxNumSeqs,
      },
      r.tp,
      1,
    );
    const planned = memory[0]!.kvTokens;
    const error = planned / r.loggedTokens - 1;
    assert.ok(
      Math.abs(error) <= 0.1,
      `planned ${planned} tokens, vLLM logged ${r.loggedTokens} (${r.logged}): ${(error * 100).toFixed(1)}%`,
    );
  });
}
