// `parallelism: auto` on the embedded default: the planner picks the fewest nodes whose memory
// (spec.resources.memory each) holds a share of the model's layers and a KV cache for one full
// context: the same plan() that `tandem plan` and the operator use.
import type { ModelArch } from '../../planner/arch.js';
import { GiB } from '../../planner/memory.js';
import { plan } from '../../planner/plan.js';

/** llama.cpp's batch: prefill runs in micro-batches of 512 tokens, one sequence per slot. */
const LLAMACPP_UBATCH = 512;

export interface AutoLayout {
  nodes: number;
  layers: number[];
}

export function autoLayout(
  arch: ModelArch,
  weightBytes: number,
  memoryPerNodeBytes: number,
  contextTokens: number,
  maxNodes = 16,
): AutoLayout {
  const p = plan({
    model: { arch, weightBytes },
    gpu: { name: 'node', memoryGiB: memoryPerNodeBytes / GiB, bandwidthGBs: 1 },
    gpusPerNode: 1,
    maxNodes: Math.min(maxNodes, arch.layers),
    engine: 'llamacpp',
    dtype: 'bf16', // scaled to the GGUF's exact weight bytes
    kvDtype: 'fp16',
    memoryUtilization: 1,
    maxModelLen: contextTokens,
    maxNumBatchedTokens: LLAMACPP_UBATCH,
    maxNumSeqs: 1,
  });
  const best = p.layouts[0];
  if (!best) {
    const why = p.infeasible.at(-1)?.reason ?? 'no layout';
    throw new Error(
      `auto: no group of up to ${Math.min(maxNodes, arch.layers)} nodes with ${(memoryPerNodeBytes / 2 ** 20).toFixed(0)} MiB each holds the model (${why})`,
    );
  }
  return { nodes: best.nodes, layers: best.memory.map((m) => m.layers[1] - m.layers[0]) };
}
