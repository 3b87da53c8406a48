// Built-in models (shapes from each model's published config.json) and GPUs (memory as CUDA
// reports it, in GiB; peak memory bandwidth in GB/s), plus the OCI shapes the seeds use.
import type { ModelArch } from './arch.js';

const llama = (
  name: string,
  layers: number,
  hidden: number,
  heads: number,
  kvHeads: number,
  intermediate: number,
  extra: Partial<ModelArch> = {},
): ModelArch => ({
  name,
  layers,
  hidden,
  heads,
  kvHeads,
  headDim: hidden / heads,
  intermediate,
  vocab: 128256,
  tiedEmbeddings: false,
  maxPositions: 131072,
  ...extra,
});
const qwen = (
  name: string,
  layers: number,
  hidden: number,
  heads: number,
  kvHeads: number,
  intermediate: number,
): ModelArch => ({
  name,
  layers,
  hidden,
  heads,
  kvHeads,
  headDim: hidden / heads,
  intermediate,
  vocab: 152064,
  tiedEmbeddings: false,
  maxPositions: 32768,
  qkvBias: true,
});

export const MODELS: ModelArch[] = [
  llama('Llama-3.2-1B', 16, 2048, 32, 8, 8192, { tiedEmbeddings: true }),
  llama('Llama-3.1-8B', 32, 4096, 32, 8, 14336),
  llama('Llama-3.1-70B', 80, 8192, 64, 8, 28672),
  llama('Llama-3.1-405B', 126, 16384, 128, 8, 53248),
  qwen('Qwen2.5-7B', 28, 3584, 28, 4, 18944),
  qwen('Qwen2.5-32B', 64, 5120, 40, 8, 27648),
  qwen('Qwen2.5-72B', 80, 8192, 64, 8, 29568),
  {
    name: 'Mistral-7B',
    layers: 32,
    hidden: 4096,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    intermediate: 14336,
    vocab: 32768,
    tiedEmbeddings: false,
    maxPositions: 32768,
  },
  {
    name: 'Mixtral-8x7B',
    layers: 32,
    hidden: 4096,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    intermediate: 14336,
    vocab: 32000,
    tiedEmbeddings: false,
    maxPositions: 32768,
    moe: { experts: 8, activeExperts: 2, sharedExperts: 0, expertIntermediate: 14336, denseLayers: 0 },
  },
  {
    name: 'DeepSeek-V3',
    layers: 61,
    hidden: 7168,
    heads: 128,
    kvHeads: 128,
    headDim: 192,
    intermediate: 18432,
    vocab: 129280,
    tiedEmbeddings: false,
    maxPositions: 163840,
    moe: { experts: 256, activeExperts: 8, sharedExperts: 1, expertIntermediate: 2048, denseLayers: 3 },
    mla: { qLoraRank: 1536, kvLoraRank: 512, qkNopeHeadDim: 128, qkRopeHeadDim: 64, vHeadDim: 128 },
  },
];

export interface Gpu {
  name: string;
  /** Memory as the driver reports it (torch.cuda.mem_get_info total), GiB. */
  memoryGiB: number;
  /** Peak memory bandwidth, GB/s; unknown for a GPU given only by its memory (--gpu-memory). */
  bandwidthGBs?: number;
}

export const GPUS: Gpu[] = [
  { name: 'A10', memoryGiB: 22.07, bandwidthGBs: 600 },
  { name: 'L4', memoryGiB: 22.03, bandwidthGBs: 300 },
  { name: 'L40S', memoryGiB: 44.52, bandwidthGBs: 864 },
  { name: 'RTX-3090', memoryGiB: 23.58, bandwidthGBs: 936 },
  { name: 'RTX-4090', memoryGiB: 23.52, bandwidthGBs: 1008 },
  { name: 'A100-40', memoryGiB: 39.39, bandwidthGBs: 1555 },
  { name: 'A100-80', memoryGiB: 79.15, bandwidthGBs: 2039 },
  { name: 'H100-80', memoryGiB: 79.19, bandwidthGBs: 3350 },
  { name: 'H200', memoryGiB: 139.8, bandwidthGBs: 4800 },
  { name: 'B200', memoryGiB: 178.36, bandwidthGBs: 8000 },
  { name: 'MI300X', memoryGiB: 191.98, bandwidthGBs: 5300 },
];

/** OCI compute shapes: a GPU type and how many a node has. */
export const OCI_SHAPES: Record<string, { gpu: string; gpusPerNode: number }> = {
  'VM.GPU.A10.1': { gpu: 'A10', gpusPerNode: 1 },
  'VM.GPU.A10.2': { gpu: 'A10', gpusPerNode: 2 },
  'BM.GPU.A10.4': { gpu: 'A10', gpusPerNode: 4 },
  'BM.GPU4.8': { gpu: 'A100-40', gpusPerNode: 8 },
  'BM.GPU.A100-v2.8': { gpu: 'A100-80', gpusPerNode: 8 },
  'BM.GPU.L40S.4': { gpu: 'L40S', gpusPerNode: 4 },
  'BM.GPU.H100.8': { gpu: 'H100-80', gpusPerNode: 8 },
  'BM.GPU.H200.8': { gpu: 'H200', gpusPerNode: 8 },
  'BM.GPU.B200.8': { gpu: 'B200', gpusPerNode: 8 },
  'BM.GPU.MI300X.8': { gpu: 'MI300X', gpusPerNode: 8 },
};

const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9.]/g, '');

export function findModel(name: string): ModelArch | undefined {
  const n = norm(name.split('/').pop()!);
  return MODELS.find((m) => norm(m.name) === n || n.startsWith(norm(m.name)));
}

export function findGpu(name: string): Gpu | undefined {
  const n = norm(name);
  const alias: Record<string, string> = {
    h100: 'H100-80',
    a100: 'A100-80',
    a10040gb: 'A100-40',
    a10080gb: 'A100-80',
    h10080gb: 'H100-80',
    rtx3090: 'RTX-3090',
    rtx4090: 'RTX-4090',
    '3090': 'RTX-3090',
    '4090': 'RTX-4090',
  };
  return GPUS.find((g) => norm(g.name) === n || norm(g.name) === norm(alias[n] ?? ''));
}
