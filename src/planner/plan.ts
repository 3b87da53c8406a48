// The planner: every (tensor, pipeline) layout of a model over nodes of GPUs, with what it needs
// per GPU and what it can hold, checked against the engines' own rules, ranked.
//
// Ranking (best first):
//  1. fewest nodes;
//  2. the seeds' rule: tensor parallel inside a node (tp ≤ GPUs per node), pipeline parallel
//     across nodes; among those, the layout that fills each node with one tensor-parallel group
//     (tp = GPUs per node, or as many as the model allows) comes first;
//  3. the larger KV capacity (more concurrent sequences);
//  4. fewer GPUs.
import type { ModelArch } from './arch.js';
import { kvBytes, weightFormat, type WeightFormat } from './dtypes.js';
import { engineProfile, type EngineProfile, type PlanEngine } from './engine-profile.js';
import type { Gpu } from './gpus.js';
import { llamaCppPartition, offloadArgs } from './llamacpp.js';
import { BLOCK_TOKENS, formatBytes, GiB, ppPartition, reserveBytes, stageMemory, type StageMemory } from './memory.js';
import type { ResolvedModel } from './model-source.js';

export type { PlanEngine } from './engine-profile.js';

export interface PlanInput {
  model: ResolvedModel;
  gpu: Gpu;
  gpusPerNode: number;
  /** The most nodes a layout may use. */
  maxNodes: number;
  engine: PlanEngine;
  /** The engine release whose memory model and defaults apply; default: its current release. */
  profile?: EngineProfile;
  dtype: string;
  kvDtype: string;
  /** Default: the model's maximum positions. */
  maxModelLen?: number;
  /** vLLM's --gpu-memory-utilization, SGLang's --mem-fraction-static; default: the release's. */
  memoryUtilization?: number;
  /** Default: the release's for the GPU (vLLM V1: 8192 on ≥ 70 GiB GPUs other than A100, else 2048). */
  maxNumBatchedTokens?: number;
  maxNumSeqs?: number;
}

/** One pipeline stage's GPU: what each part takes, and the KV cache that is left. */
export interface GpuMemory {
  stage: number;
  layers: [number, number];
  weightsGiB: number;
  /** Activations + memory outside PyTorch + CUDA graphs. */
  reserveGiB: number;
  activationGiB: number;
  nonTorchGiB: number;
  cudaGraphGiB: number;
  kvCacheGiB: number;
  kvTokens: number;
}

export interface Layout {
  tp: number;
  pp: number;
  /** Copies of the whole layout on the GPUs left over. */
  dp: number;
  nodes: number;
  gpus: number;
  /** Per GPU, one entry per pipeline stage (every GPU of a stage holds the same). */
  memory: GpuMemory[];
  /** The utilisation this layout was planned with (SGLang's default depends on tp × pp). */
  memoryUtilization: number;
  /** Tokens the KV cache holds: every stage must hold each token, so the smallest decides. */
  kvTokens: number;
  /** The stage with the smallest KV cache: the one that decides kvTokens. */
  decidingStage: number;
  maxConcurrentSequences: number;
  /** Upper bound of single-sequence decode speed: every stage reads its weights once per token (absent: bandwidth unknown). */
  decodeTokensPerSecondMax?: number;
  communication: { tensorParallelAllReduceBytesPerToken: number; pipelineBytesPerToken: number };
  flags: { args: string[]; env: Record<string, string> };
  warnings: string[];
}

export interface Infeasible {
  tp: number;
  pp: number;
  nodes: number;
  reason: string;
}

export interface Plan {
  model: string;
  /** The engine release modelled. */
  engine: { name: PlanEngine; version: string; label: string };
  gpu: string;
  gpusPerNode: number;
  maxModelLen: number;
  layouts: Layout[];
  infeasible: Infeasible[];
}

/** Why a tensor-parallel size cannot shard this model, or undefined. */
export function tensorParallelProblem(m: ModelArch, tp: number, fmt: WeightFormat): string | undefined {
  if (m.heads % tp !== 0) return `attention heads (${m.heads}) are not divisible by tp ${tp}`;
  if (!m.mla) {
    if (tp >= m.kvHeads ? tp % m.kvHeads !== 0 : m.kvHeads % tp !== 0) {
      return `KV heads (${m.kvHeads}) and tp ${tp} do not divide one another`;
    }
  }
  const mlps = m.moe
    ? [m.moe.expertIntermediate, ...(m.moe.denseLayers > 0 ? [m.intermediate] : [])]
    : [m.intermediate];
  for (const size of mlps) {
    if (size % tp !== 0) return `MLP intermediate size (${size}) is not divisible by tp ${tp}`;
    if (fmt.groupSize && (size / tp) % fmt.groupSize !== 0) {
      return `${fmt.name}: each shard of the MLP (${size} / ${tp}) must hold whole quantization groups of ${fmt.groupSize}`;
    }
  }
  return undefined;
}

function candidateTps(totalGpus: number): number[] {
  const out: number[] = [];
  for (let tp = 1; tp <= totalGpus; tp *= 2) out.push(tp);
  return out;
}

/** Per-GPU memory and KV capacity of each pipeline stage of one layout, feasible or not. */
export function capacity(
  input: PlanInput,
  tp: number,
  pp: number,
): { memory: GpuMemory[]; stages: StageMemory[]; budget: number; utilization: number } {
  const m = input.model.arch;
  const profile = input.profile ?? engineProfile(input.engine);
  const maxModelLen = input.maxModelLen ?? m.maxPositions;
  const defaults = profile.batch(input.gpu, maxModelLen);
  const batch = {
    maxNumBatchedTokens: input.maxNumBatchedTokens ?? defaults.maxNumBatchedTokens,
    maxNumSeqs: input.maxNumSeqs ?? defaults.maxNumSeqs,
  };
  const utilization = input.memoryUtilization ?? profile.defaultUtilization(input.gpu, tp, pp);
  const budget = input.gpu.memoryGiB * GiB * utilization;
  const parts = input.engine === 'llamacpp' ? llamaCppPartition(m.layers, pp) : ppPartition(m.layers, pp);
  const stages = stageMemory(m, weightFormat(input.dtype), tp, parts, kvBytes(input.kvDtype), input.model.weightBytes);
  // Only the last stage samples: every other stage reserves the same.
  const inner = reserveBytes(m, profile, { tp, lastStage: false, gpu: input.gpu, ...batch });
  const last = reserveBytes(m, profile, { tp, lastStage: true, gpu: input.gpu, ...batch });
  const memory: GpuMemory[] = stages.map((s) => {
    const reserve = s.stage === pp - 1 ? last : inner;
    const kvBytesAvailable = budget - s.weightBytes - reserve.total;
    const tokens =
      kvBytesAvailable > 0 ? Math.floor(kvBytesAvailable / s.kvBytesPerToken / BLOCK_TOKENS) * BLOCK_TOKENS : 0;
    return {
      stage: s.stage,
      layers: s.layers,
      weightsGiB: s.weightBytes / GiB,
      reserveGiB: reserve.total / GiB,
      activationGiB: reserve.activation / GiB,
      nonTorchGiB: reserve.nonTorch / GiB,
      cudaGraphGiB: reserve.cudaGraph / GiB,
      kvCacheGiB: Math.max(0, kvBytesAvailable) / GiB,
      kvTokens: tokens,
    };
  });
  return { memory, stages, budget, utilization };
}

export function plan(planInput: PlanInput): Plan {
  const input = { ...planInput, profile: planInput.profile ?? engineProfile(planInput.engine) };
  const m = input.model.arch;
  const fmt = weightFormat(input.dtype);
  const maxModelLen = input.maxModelLen ?? m.maxPositions;
  const G = input.gpusPerNode;
  const layouts: Layout[] = [];
  const infeasible: Infeasible[] = [];

  // llama.cpp splits by layers only (across local GPUs and RPC nodes alike): tp is always 1.
  for (const tp of input.engine === 'llamacpp' ? [1] : candidateTps(G * input.maxNodes)) {
    for (let pp = 1; tp * pp <= G * input.maxNodes; pp++) {
      const gpus = tp * pp;
      const nodes = Math.ceil(gpus / G);
      // tp across nodes only as whole nodes; a stage never straddles two nodes otherwise.
      if (tp > G ? tp % G !== 0 : G % tp !== 0) continue;
      const reject = (reason: string) => infeasible.push({ tp, pp, nodes, reason });
      const tpProblem = tensorParallelProblem(m, tp, fmt);
      if (tpProblem) {
        if (pp === 1) reject(tpProblem); // once per tp is enough
        continue;
      }
      if (pp > m.layers) {
        reject(`pipeline size ${pp} exceeds the ${m.layers} layers`);
        break;
      }
      const { memory, stages, budget, utilization } = capacity(input, tp, pp);
      const overfull = memory.find((s) => (s.weightsGiB + s.reserveGiB) * GiB >= budget);
      if (overfull) {
        const where = pp > 1 ? ` on stage ${overfull.stage}` : '';
        reject(
          `weights do not fit${where}: ${formatBytes(overfull.weightsGiB * GiB)} per GPU + ${formatBytes(overfull.reserveGiB * GiB)} reserve > ${formatBytes(budget)} usable (${utilization} × ${formatBytes(input.gpu.memoryGiB * GiB)})`,
        );
        continue;
      }
      const worst = memory.reduce((a, b) => (b.kvTokens < a.kvTokens ? b : a));
      if (worst.kvTokens < maxModelLen) {
        const where = pp > 1 ? ` (stage ${worst.stage} decides)` : '';
        reject(
          `one sequence of ${maxModelLen} tokens does not fit: the KV cache holds ${worst.kvTokens} tokens${where}`,
        );
        continue;
      }
      const bandwidth = input.gpu.bandwidthGBs === undefined ? undefined : input.gpu.bandwidthGBs * 1e9;
      const secondsPerToken = bandwidth && stages.reduce((sum, s) => sum + s.activeWeightBytes / bandwidth, 0);
      const warnings: string[] = [];
      if (tp > G)
        warnings.push(
          `tensor parallelism (${tp}) crosses nodes (${G} GPUs each): an all-reduce over the network in every layer`,
        );
      if (!m.mla && tp > m.kvHeads)
        warnings.push(`tp ${tp} exceeds the ${m.kvHeads} KV heads: each is replicated ${tp / m.kvHeads}×`);
      if (input.engine === 'llamacpp' && pp > nodes)
        warnings.push(`${pp} stages on ${nodes} node(s): Tandem's llama.cpp groups run one stage per node`);
      const dp = Math.floor((nodes * G) / gpus);
      layouts.push({
        tp,
        pp,
        dp,
        nodes,
        gpus,
        memory,
        memoryUtilization: utilization,
        kvTokens: worst.kvTokens,
        decidingStage: worst.stage,
        maxConcurrentSequences: Math.floor(worst.kvTokens / maxModelLen),
        ...(secondsPerToken ? { decodeTokensPerSecondMax: 1 / secondsPerToken } : {}),
        communication: {
          // Two all-reduces of the hidden state per layer (attention out, MLP out), 16-bit.
          tensorParallelAllReduceBytesPerToken: tp > 1 ? 2 * m.layers * m.hidden * 2 : 0,
          // vLLM passes hidden states and the residual between stages.
          pipelineBytesPerToken: (pp - 1) * 2 * m.hidden * 2,
        },
        flags: engineFlags(input, m, tp, pp, nodes, maxModelLen, utilization),
        warnings,
      });
    }
  }
  layouts.sort((a, b) => rankKey(a, G) - rankKey(b, G) || b.kvTokens - a.kvTokens || a.gpus - b.gpus);
  const engine = { name: input.engine, version: input.profile.version, label: input.profile.label };
  return { model: m.name, engine, gpu: input.gpu.name, gpusPerNode: G, maxModelLen, layouts, infeasible };
}

/** Smaller is better: nodes first, then how far the layout is from "tp inside, pp across". */
function rankKey(l: Layout, gpusPerNode: number): number {
  const crossesNodes = l.tp > gpusPerNode ? 1 : 0;
  const fillsNodes = l.gpus === l.nodes * gpusPerNode && l.pp % l.nodes === 0 ? 0 : 1;
  return l.nodes * 100 + crossesNodes * 10 + fillsNodes * 5 + Math.log2(l.pp / l.nodes);
}

function engineFlags(
  input: PlanInput,
  m: ModelArch,
  tp: number,
  pp: number,
  nodes: number,
  maxModelLen: number,
  utilization: number,
): { args: string[]; env: Record<string, string> } {
  switch (input.engine) {
    case 'vllm': {
      const env: Record<string, string> = {};
      if (pp > 1 && m.layers % pp !== 0) env.VLLM_PP_LAYER_PARTITION = ppPartition(m.layers, pp).join(',');
      const args = [
        '--tensor-parallel-size',
        String(tp),
        '--pipeline-parallel-size',
        String(pp),
        '--max-model-len',
        String(maxModelLen),
        '--gpu-memory-utilization',
        String(utilization),
      ];
      if (input.kvDtype === 'fp8') args.push('--kv-cache-dtype', 'fp8');
      if (nodes > 1) args.push('--distributed-executor-backend', 'ray');
      return { args, env };
    }
    case 'sglang': {
      const args = [
        '--tp',
        String(tp),
        '--pp-size',
        String(pp),
        '--context-length',
        String(maxModelLen),
        '--mem-fraction-static',
        String(utilization),
      ];
      if (nodes > 1) args.push('--nnodes', String(nodes));
      if (input.kvDtype === 'fp8') args.push('--kv-cache-dtype', 'fp8_e5m2');
      return { args, env: {} };
    }
    case 'llamacpp': {
      // What the embedded engine runs (engine/llamacpp/service.ts): one stage per node.
      const args = [...offloadArgs(llamaCppPartition(m.layers, pp)), '--ctx-size', String(maxModelLen)];
      return { args, env: {} };
    }
  }
}
