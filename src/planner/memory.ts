// Per-GPU memory of one pipeline stage under tensor parallelism, as vLLM lays it out:
//  - decoder layers [start, end) of the stage (vLLM's get_pp_indices), every linear layer split
//    over the tp ranks; the embedding (vocab-parallel) on the first stage, norm and lm_head on
//    the last; norms replicated;
//  - KV heads per rank = max(1, kvHeads / tp): replicated when tp exceeds them; MLA keeps one
//    compressed latent (kv_lora_rank + rope dims) per token on every rank;
//  - what the engine reserves before the KV cache, by release (engine-profile.ts): the activation
//    peak of its profiling run, memory outside PyTorch (NCCL, cuBLAS, all-reduce buffers), and
//    CUDA graphs where the release reserves them;
//  - multimodal encoders (vision/audio towers and their projector) on the first stage.
import { paramCounts, type ModelArch } from './arch.js';
import type { WeightFormat } from './dtypes.js';
import type { ActivationModel, EngineProfile } from './engine-profile.js';
import type { Gpu } from './gpus.js';

export const GiB = 1024 ** 3;
/** vLLM's KV block size: capacity is a whole number of blocks. */
export const BLOCK_TOKENS = 16;

/** vLLM's get_pp_indices: even shares; the remainder goes to the stages before the last, from the end. */
export function ppPartition(layers: number, pp: number): number[] {
  const parts = Array.from({ length: pp }, () => Math.floor(layers / pp));
  const remaining = layers % pp;
  for (let i = 2; i < remaining + 2; i++) parts[pp - i]! += 1;
  return parts;
}

/** Bytes for people: MiB below 1 GiB, else GiB. */
export function formatBytes(bytes: number): string {
  return Math.abs(bytes) < GiB ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${(bytes / GiB).toFixed(1)} GiB`;
}

export interface StageMemory {
  stage: number;
  layers: [number, number];
  weightBytes: number;
  /** Bytes one decode step reads per GPU (MoE: only the active experts). */
  activeWeightBytes: number;
  kvBytesPerToken: number;
}

export function kvHeadsPerRank(m: ModelArch, tp: number): number {
  return Math.max(1, Math.floor(m.kvHeads / tp));
}

/** KV bytes one token costs in one layer on one GPU. */
export function kvBytesPerTokenLayer(m: ModelArch, tp: number, kvElementBytes: number): number {
  if (m.mla) return (m.mla.kvLoraRank + m.mla.qkRopeHeadDim) * kvElementBytes;
  return 2 * kvHeadsPerRank(m, tp) * m.headDim * kvElementBytes;
}

export function stageMemory(
  m: ModelArch,
  fmt: WeightFormat,
  tp: number,
  parts: number[],
  kvElementBytes: number,
  exactWeightBytes?: number,
): StageMemory[] {
  const p = paramCounts(m);
  const pp = parts.length;
  // Exact bytes (GGUF) scale every part alike.
  const scale = exactWeightBytes ? exactWeightBytes / (p.total * fmt.linear) : 1;
  let start = 0;
  return parts.map((n, stage) => {
    const end = start + n;
    // Layers are alike but for an MoE model's leading dense ones (p.mlp(0) is dense, the last is not).
    const dense = m.moe ? Math.max(0, Math.min(end, m.moe.denseLayers) - start) : n;
    const last = m.layers - 1;
    const linear = n * p.attention + dense * p.mlp(0) + (n - dense) * p.mlp(last);
    const activeLinear = n * p.attention + dense * p.activeMlp(0) + (n - dense) * p.activeMlp(last);
    let other = n * p.norms;
    if (stage === 0) other += p.embedding + p.encoder;
    if (stage === pp - 1) other += p.lmHead + m.hidden + (m.tiedEmbeddings && pp > 1 ? p.embedding : 0);
    const bytes = (x: number, per: number) => (x / tp) * per * scale;
    // The embedding is read one row per token, and encoders once per image: not per-token reads.
    const readOther = other - (stage === 0 ? p.embedding + p.encoder : 0);
    start = end;
    return {
      stage,
      layers: [end - n, end] as [number, number],
      weightBytes: bytes(linear, fmt.linear) + bytes(other, fmt.other),
      activeWeightBytes: bytes(activeLinear, fmt.linear) + bytes(readOther, fmt.other),
      kvBytesPerToken: n * kvBytesPerTokenLayer(m, tp, kvElementBytes),
    };
  });
}

export interface ReserveInput {
  tp: number;
  /** The last pipeline stage computes logits and samples; the others only run layers. */
  lastStage: boolean;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  gpu: Gpu;
}

/** What an engine holds on a GPU besides weights and KV cache, in bytes, term by term. */
export interface Reserve {
  activation: number;
  nonTorch: number;
  cudaGraph: number;
  total: number;
}

/** Peak of one forward pass over a batch: the residual stream and the widest layer's live tensors. */
function forwardBytes(m: ModelArch, tp: number, tokens: number): number {
  const act = 2; // 16-bit activations
  const attn = (m.heads * m.headDim + 2 * kvHeadsPerRank(m, tp) * tp * m.headDim) / tp;
  const mlp = (m.moe ? Math.max(m.intermediate, m.moe.expertIntermediate * m.moe.activeExperts) : m.intermediate) / tp;
  // Live at the MLP: the residual stream and its normed copy, gate_up (2×), the activation (1×).
  return tokens * (3 * m.hidden + Math.max(attn, 3 * mlp)) * act;
}

/** The profiling run's peak; `sampled` is rows × vocabulary entries the stage samples (0 but on the last). */
function activationBytes(model: ActivationModel, forward: number, sampled: number): number {
  switch (model) {
    case 'forward':
      return forward;
    // fp32 logits, their softmax and a full-vocabulary sort (values and int64 indices) for
    // top-k/top-p, and the copies between: measured, not derived (engine-profile.ts).
    case 'topk-sampler':
      return Math.max(forward, sampled * 38.5);
    case 'sampler':
      return Math.max(forward, sampled * 15);
    case 'none':
      return 0;
  }
}

/** What the engine of `profile` reserves before sizing the KV cache (see engine-profile.ts). */
export function reserveBytes(m: ModelArch, profile: EngineProfile, r: ReserveInput): Reserve {
  const forward = forwardBytes(m, r.tp, r.maxNumBatchedTokens);
  const activation = activationBytes(profile.activation, forward, r.lastStage ? r.maxNumSeqs * m.vocab : 0);
  const tpBuffers = r.tp > 1 && !r.gpu.noPeerAccess ? profile.tensorParallelGiB : 0;
  const nonTorch = (profile.nonTorchGiB + tpBuffers) * GiB;
  const cudaGraph = profile.cudaGraphGiB * GiB;
  return { activation, nonTorch, cudaGraph, total: activation + nonTorch + cudaGraph };
}
