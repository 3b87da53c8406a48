// How llama.cpp splits a model over a group, and the llama-server flags that realise the split:
// written once, for `tandem plan` and for the engine that runs it, so the two never disagree.
import type { NodeShare } from '../core/service.js';
import type { ModelArch } from './arch.js';
import { kvBytes, weightFormat } from './dtypes.js';
import { stageMemory } from './memory.js';

/** Layers per stage (node), leader first: even shares, the first stages take the remainder. */
export function llamaCppPartition(layers: number, stages: number): number[] {
  return Array.from({ length: stages }, (_, i) => Math.floor(layers / stages) + (i < layers % stages ? 1 : 0));
}

/** The partition over a group's nodes, or a clear error when it cannot work. */
export function splitLayers(layers: number, nodes: number): number[] {
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`nodes must be an integer ≥ 1 (got ${nodes})`);
  if (nodes > layers) {
    throw new Error(`cannot split ${layers} layers over ${nodes} nodes: every node needs at least one layer`);
  }
  return llamaCppPartition(layers, nodes);
}

/**
 * llama-server flags that realise a split: the leader keeps the first share on its own CPU;
 * `-ngl` offloads the last N layers (llama.cpp counts the output layer as one) and
 * `--tensor-split` shares them among the RPC devices (the workers) in order, so the last worker's
 * weight includes the output layer.
 */
export function offloadArgs(split: number[]): string[] {
  const workers = split.slice(1);
  if (workers.length === 0) return ['--n-gpu-layers', '0'];
  const weights = workers.map((n, i) => (i === workers.length - 1 ? n + 1 : n));
  const offloaded = weights.reduce((a, b) => a + b, 0);
  return ['--n-gpu-layers', String(offloaded), '--tensor-split', weights.join(',')];
}

/**
 * What each node holds under the split, leader first: its layers, their share of the GGUF's exact
 * weight bytes (shared as the planner shares parameters), and an f16 KV cache for `contextTokens`
 * (llama-server's --ctx-size: one cache shared by its slots).
 */
export function llamaCppShares(
  arch: ModelArch,
  weightBytes: number,
  nodes: number,
  contextTokens: number,
): NodeShare[] {
  const stages = stageMemory(
    arch,
    weightFormat('bf16'),
    1,
    splitLayers(arch.layers, nodes),
    kvBytes('fp16'),
    weightBytes,
  );
  return stages.map((s) => ({
    layers: s.layers,
    weightBytes: Math.round(s.weightBytes),
    kvCacheBytes: s.kvBytesPerToken * contextTokens,
  }));
}
