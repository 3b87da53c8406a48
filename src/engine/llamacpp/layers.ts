// How llama.cpp splits a model over a group: pipeline by layers. The leader keeps the first share
// on its own CPU; the workers (RPC devices) hold the rest, the output layer on the last one.
import { llamaCppPartition } from '../../planner/memory.js';

/** Repeating layers per node, leader first; the first nodes take the remainder. */
export function splitLayers(layers: number, nodes: number): number[] {
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`nodes must be an integer ≥ 1 (got ${nodes})`);
  if (nodes > layers)
    throw new Error(`cannot split ${layers} layers over ${nodes} nodes: every node needs at least one layer`);
  return llamaCppPartition(layers, nodes);
}

/**
 * llama-server flags that realise a split: `-ngl` offloads the last N layers (llama.cpp counts the
 * output layer as one) and `--tensor-split` shares them among the RPC devices in order, so the
 * last worker's weight includes the output layer.
 */
export function offloadArgs(split: number[]): string[] {
  const workers = split.slice(1);
  if (workers.length === 0) return ['--n-gpu-layers', '0'];
  const weights = workers.map((n, i) => (i === workers.length - 1 ? n + 1 : n));
  const offloaded = weights.reduce((a, b) => a + b, 0);
  return ['--n-gpu-layers', String(offloaded), '--tensor-split', weights.join(',')];
}
