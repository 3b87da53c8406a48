// How each engine release sizes its KV cache: what it reserves before the cache, and its defaults.
// A profile is data; memory.ts turns it into bytes. Each term names the upstream evidence for it
// (docs/architecture.md, "The layout planner", lists them in full):
//
// vLLM < 0.8 (V0 engine): the profiling run pushes max_num_batched_tokens through the model, and
//   without chunked prefill that is max(max_model_len, 2048); chunked prefill (2048 tokens) only
//   above 32K. Then it samples max_num_seqs rows with top-k and top-p on (profile_run's
//   SamplingParams(top_p=0.99, top_k=vocab_size - 1)), on the driver worker, whose smaller cache
//   decides. --gpu-memory-utilization 0.9.
// vLLM 0.8–0.16 (V1 engine): chunked prefill always; 8192 tokens / 1024 sequences on ≥ 70 GiB GPUs
//   other than A100, else 2048 / 256. The sampler run still peaks at ≈ 38.5 bytes per row and
//   vocabulary entry, above the forward pass for every text model measured (H100, 1024 rows:
//   Llama-3.1-8B 4.76 GiB at v0.11, Qwen3-0.6B 5.56, Qwen3-32B 5.64, Qwen3-14B 5.64 at v0.16;
//   llm-d-planner).
// vLLM 0.17–0.20: the sampler run drops to ≈ 15 bytes per row and vocabulary entry (Qwen3-14B:
//   2.23 GiB at v0.17, same sweep; v0.19: Llama-3.1-8B 1.89, Gemma-2 3.6, Granite 0.75–0.85).
// vLLM ≥ 0.21: CUDA graph memory is profiled before the cache and reserved (PR 38284, on by
//   default since v0.21), and the default utilisation rose to 0.92 to compensate.
// Tensor parallelism over peer access adds memory outside PyTorch (NCCL and custom all-reduce
//   buffers): ≈ 1.85 GiB per GPU in V0 (3.58 against 1.79 GiB in vLLM PR 10511) and from 0.17
//   (2.07–2.21 at tp 2/4 against 0.25 at tp 1 on H100 at v0.19, llm-d sweep), 0.42 in 0.8–0.16
//   (0.54–0.55 against 0.13 at v0.11, llm-d-planner's empirical results).
// SGLang: the KV pool is total × mem_fraction_static minus everything in use after loading
//   (model_runner.profile_max_num_token); activations live in the remainder, so nothing else is
//   reserved. The default fraction is by tp size before 0.5, by GPU size from 0.5 on.
import type { Gpu } from './gpus.js';

export type PlanEngine = 'vllm' | 'sglang' | 'llamacpp';

export type ActivationModel =
  /** the forward pass of one batch */
  | 'forward'
  /** max(forward pass, sampling max_num_seqs rows with top-k and top-p: 38.5 bytes per row and vocabulary entry) */
  | 'topk-sampler'
  /** max(forward pass, a plain sampler run over max_num_seqs rows: 15 bytes per row and entry) */
  | 'sampler'
  /** reserved by the utilisation fraction itself (SGLang) */
  | 'none';

export interface EngineProfile {
  engine: PlanEngine;
  /** The version asked for ("latest" when none was). */
  version: string;
  /** The releases this profile models, for people. */
  label: string;
  activation: ActivationModel;
  /** GiB in use outside PyTorch's allocator at tp 1. */
  nonTorchGiB: number;
  /** GiB tensor parallelism adds per GPU where GPUs have peer access. */
  tensorParallelGiB: number;
  /** CUDA graph memory reserved before the cache. */
  cudaGraphGiB: number;
  /** --gpu-memory-utilization (vLLM), --mem-fraction-static (SGLang) when not given. */
  defaultUtilization(gpu: Gpu, tp: number, pp: number): number;
  /** Tokens and sequences of one step when not given (the profiling run's batch). */
  batch(gpu: Gpu, maxModelLen: number): { maxNumBatchedTokens: number; maxNumSeqs: number };
}

/** vLLM's V1 defaults for `vllm serve` (arg_utils: larger batches on ≥ 70 GiB GPUs, except A100). */
export function vllmBatchDefaults(gpu: Gpu): { maxNumBatchedTokens: number; maxNumSeqs: number } {
  return gpu.memoryGiB >= 70 && !gpu.name.startsWith('A100')
    ? { maxNumBatchedTokens: 8192, maxNumSeqs: 1024 }
    : { maxNumBatchedTokens: 2048, maxNumSeqs: 256 };
}

const TP_BUFFERS_GIB = 1.85;

/** "0.19.0", "v0.6.4.post1", "0.21" → [major, minor]; "latest" → Infinity. */
function parseVersion(engine: PlanEngine, version: string): number {
  if (version === 'latest') return Infinity;
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  if (!m) throw new Error(`--engine-version: "${version}" is not a ${engine} version (like 0.19.0), nor "latest"`);
  return Number(m[1]) * 1000 + Number(m[2]);
}

const v = (major: number, minor: number) => major * 1000 + minor;

function vllm(version: string): EngineProfile {
  const n = parseVersion('vllm', version);
  const base = { engine: 'vllm' as const, version, tensorParallelGiB: TP_BUFFERS_GIB };
  const v1 = { ...base, defaultUtilization: () => 0.9, batch: vllmBatchDefaults, cudaGraphGiB: 0 };
  if (n < v(0, 8))
    return {
      ...base,
      label: 'vLLM < 0.8 (V0 engine: profiles a max-model-len batch unless chunked prefill is on)',
      activation: 'topk-sampler',
      nonTorchGiB: 0.35,
      cudaGraphGiB: 0,
      defaultUtilization: () => 0.9,
      // Chunked prefill came on by itself above 32K (2048 tokens); otherwise the whole length.
      batch: (_gpu, maxModelLen) => ({
        maxNumBatchedTokens: maxModelLen > 32768 ? 2048 : Math.max(maxModelLen, 2048),
        maxNumSeqs: 256,
      }),
    };
  if (n < v(0, 17))
    return {
      ...v1,
      label: 'vLLM 0.8–0.16 (V1 engine; the profiling run samples max-num-seqs rows with top-k/top-p)',
      activation: 'topk-sampler',
      nonTorchGiB: 0.13,
      tensorParallelGiB: 0.42,
    };
  if (n < v(0, 21))
    return {
      ...v1,
      label: 'vLLM 0.17–0.20 (V1 engine; the profiling run samples max-num-seqs rows)',
      activation: 'sampler',
      nonTorchGiB: 0.25,
    };
  return {
    ...v1,
    label: 'vLLM ≥ 0.21 (CUDA graph memory reserved before the KV cache; utilisation 0.92)',
    activation: 'sampler',
    nonTorchGiB: 0.25,
    // Mean of the pools measured on H100 at v0.19 (0.51–1.85 GiB, llm-d-planner sweep).
    cudaGraphGiB: 1.0,
    defaultUtilization: () => 0.92,
  };
}

/** SGLang ≥ 0.5: reserve by GPU size (server_args _handle_mem_fraction_static), GiB. */
function sglangReservedGiB(gpu: Gpu, tp: number, pp: number): number {
  const p = tp * pp;
  if (gpu.memoryGiB < 35) return 2.8 + p / 10;
  if (gpu.memoryGiB < 90) return 9.5 + p / 2;
  if (gpu.memoryGiB < 160) return 12 + p / 2;
  return 32;
}

function sglang(version: string): EngineProfile {
  const n = parseVersion('sglang', version);
  const base = {
    engine: 'sglang' as const,
    version,
    activation: 'none' as const,
    // Free memory after loading is measured, so the CUDA context and NCCL count (unlike vLLM).
    nonTorchGiB: 0.5,
    tensorParallelGiB: TP_BUFFERS_GIB,
    cudaGraphGiB: 0,
    // chunked_prefill_size by GPU size; it sets no reserve here (activations live outside the fraction).
    batch: (gpu: Gpu) => ({
      maxNumBatchedTokens: gpu.memoryGiB < 35 ? 2048 : gpu.memoryGiB < 160 ? 8192 : 16384,
      maxNumSeqs: 256,
    }),
  };
  if (n < v(0, 5))
    return {
      ...base,
      label: 'SGLang < 0.5 (--mem-fraction-static by tp size)',
      defaultUtilization: (_gpu, tp) => (tp >= 16 ? 0.79 : tp >= 8 ? 0.81 : tp >= 4 ? 0.85 : tp >= 2 ? 0.87 : 0.88),
    };
  return {
    ...base,
    label: 'SGLang ≥ 0.5 (--mem-fraction-static from a reserve by GPU size)',
    defaultUtilization: (gpu, tp, pp) =>
      Math.round(((gpu.memoryGiB - sglangReservedGiB(gpu, tp, pp)) / gpu.memoryGiB) * 1000) / 1000,
  };
}

const LLAMACPP: EngineProfile = {
  engine: 'llamacpp',
  version: 'latest',
  label: 'llama.cpp (compute buffers sized for one micro-batch)',
  activation: 'forward',
  nonTorchGiB: 0,
  tensorParallelGiB: 0,
  cudaGraphGiB: 0,
  // Headroom for the driver and anything else on the device; llama.cpp has no such flag.
  defaultUtilization: () => 0.92,
  batch: () => ({ maxNumBatchedTokens: 512, maxNumSeqs: 1 }),
};

const profiles = new Map<string, EngineProfile>();

/** The memory model of an engine release; `latest` (the default) is the current release. */
export function engineProfile(engine: PlanEngine, version = 'latest'): EngineProfile {
  const key = `${engine} ${version}`;
  let profile = profiles.get(key);
  if (!profile && engine === 'llamacpp' && version !== 'latest')
    throw new Error(
      '--engine-version: llama.cpp is modelled as Tandem builds it; a version applies to vllm and sglang',
    );
  if (!profile) {
    profile = engine === 'vllm' ? vllm(version) : engine === 'sglang' ? sglang(version) : LLAMACPP;
    profiles.set(key, profile);
  }
  return profile;
}
