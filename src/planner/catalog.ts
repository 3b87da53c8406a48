// Built-in models: shapes from each model's published config.json (GPUs: gpus.ts; cloud shapes:
// shapes.ts).
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

const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9.]/g, '');

export function findModel(name: string): ModelArch | undefined {
  const n = norm(name.split('/').pop()!);
  return MODELS.find((m) => norm(m.name) === n || n.startsWith(norm(m.name)));
}
