// Per-GPU memory of one pipeline stage under tensor parallelism, as vLLM lays it out:
//  - decoder layers [start, end) of the stage (vLLM's get_pp_indices), every linear layer split
//    over the tp ranks; the embedding (vocab-parallel) on the first stage, norm and lm_head on
//    the last; norms replicated;
//  - KV heads per rank = max(1, kvHeads / tp): replicated when tp exceeds them; MLA keeps one
//    compressed latent (kv_lora_rank + rope dims) per token on every rank;
//  - what vLLM reserves before the KV cache: the activation peak of its profiling run
//    (max_num_batched_tokens through a layer, and a sampler pass over max_num_seqs × vocab
//    logits in fp32) and memory outside PyTorch (NCCL and cuBLAS workspaces).
import { paramCounts, type ModelArch } from './arch.js';
import type { WeightFormat } from './dtypes.js';

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
    let linear = 0;
    let activeLinear = 0;
    for (let l = start; l < end; l++) {
      linear += p.attention + p.mlp(l);
      activeLinear += p.attention + p.activeMlp(l);
    }
    let other = n * p.norms;
    if (stage === 0) other += p.embedding;
    if (stage === pp - 1) other += p.lmHead + m.hidden + (m.tiedEmbeddings && pp > 1 ? p.embedding : 0);
    const bytes = (x: number, per: number) => (x / tp) * per * scale;
    // The embedding is read one row per token, not whole: leave it out of the per-token reads.
    const readOther = other - (stage === 0 ? p.embedding : 0);
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
  engine: 'vllm' | 'sglang' | 'llamacpp';
  tp: number;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
}

/** Bytes vLLM's profiling run peaks at above the weights: activations, sampler logits, non-torch memory. */
export function reserveBytes(m: ModelArch, r: ReserveInput): number {
  const act = 2; // 16-bit activations
  const attn = (m.heads * m.headDim + 2 * kvHeadsPerRank(m, r.tp) * r.tp * m.headDim) / r.tp;
  const mlp =
    (m.moe ? Math.max(m.intermediate, m.moe.expertIntermediate * m.moe.activeExperts) : m.intermediate) / r.tp;
  // Live at the MLP: the residual stream and its normed copy, gate_up (2×), the activation (1×).
  const perToken = (3 * m.hidden + Math.max(attn, 3 * mlp)) * act;
  const forward = r.maxNumBatchedTokens * perToken;
  // The dummy sampler run: fp32 logits over the full vocabulary, and their softmax.
  const sampler = r.maxNumSeqs * m.vocab * 4 * 2;
  // vLLM and SGLang (PyTorch): cuBLAS/attention workspaces and NCCL buffers; llama.cpp allocates
  // its compute buffers up front, which the forward term already covers.
  const nonTorch = r.engine === 'llamacpp' ? 0 : 0.45 * GiB + (r.tp > 1 ? 0.25 * GiB : 0);
  return Math.max(forward, sampler) + nonTorch;
}
