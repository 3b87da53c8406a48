// GPUs the planner knows by name. Memory is what the driver reports (torch.cuda.mem_get_info's
// total, the same figure as nvidia-smi's / rocm-smi's total MiB ÷ 1024): it is what vLLM and SGLang
// multiply by their utilisation. Where a published start-up log shows it, that figure is used and
// cited; otherwise it is the nominal capacity less the family's usual driver/ECC reservation, and
// `measured` is absent. Bandwidth is the datasheet's peak.

export interface Gpu {
  name: string;
  /** Memory as the driver reports it (torch.cuda.mem_get_info total), GiB. */
  memoryGiB: number;
  /** Peak memory bandwidth, GB/s; unknown for a GPU given only by its memory (--gpu-memory). */
  bandwidthGBs?: number;
  /**
   * GeForce cards have no peer-to-peer access between GPUs: NCCL goes through host memory and
   * vLLM's custom all-reduce stays off, so tensor parallelism adds no device buffers (vllm#13061:
   * 0.25 GiB outside PyTorch at tp 2 on two RTX 4090s, as at tp 1).
   */
  noPeerAccess?: boolean;
  /** Where the figures come from: the datasheet (absent for a GPU given by --gpu-memory), and the log that shows the driver's total. */
  source?: string;
  measured?: string;
}

const NV = 'https://www.nvidia.com/en-us/data-center';
const AMD = 'https://www.amd.com/en/products/accelerators/instinct';

export const GPUS: Gpu[] = [
  // NVIDIA data centre
  { name: 'V100-16', memoryGiB: 15.78, bandwidthGBs: 900, source: `${NV}/v100/` },
  { name: 'V100-32', memoryGiB: 31.75, bandwidthGBs: 900, source: `${NV}/v100/` },
  { name: 'T4', memoryGiB: 14.75, bandwidthGBs: 320, source: `${NV}/tesla-t4/` },
  {
    name: 'A10',
    memoryGiB: 22.07,
    bandwidthGBs: 600,
    source: `${NV}/products/a10-gpu/`,
  },
  { name: 'A10G', memoryGiB: 22.07, bandwidthGBs: 600, source: 'https://aws.amazon.com/ec2/instance-types/g5/' },
  { name: 'A30', memoryGiB: 23.69, bandwidthGBs: 933, source: `${NV}/products/a30-gpu/` },
  { name: 'A40', memoryGiB: 44.52, bandwidthGBs: 696, source: `${NV}/a40/` },
  { name: 'L4', memoryGiB: 22.03, bandwidthGBs: 300, source: `${NV}/l4/` },
  { name: 'L40', memoryGiB: 44.52, bandwidthGBs: 864, source: `${NV}/l40/` },
  {
    name: 'L40S',
    memoryGiB: 44.52,
    bandwidthGBs: 864,
    source: `${NV}/l40s/`,
  },
  { name: 'A100-40', memoryGiB: 39.39, bandwidthGBs: 1555, source: `${NV}/a100/` },
  {
    name: 'A100-80',
    memoryGiB: 79.15,
    bandwidthGBs: 2039,
    source: `${NV}/a100/`,
  },
  {
    name: 'H100-80',
    memoryGiB: 79.19,
    bandwidthGBs: 3350,
    source: `${NV}/h100/`,
    measured:
      'https://github.com/llm-d-incubation/llm-d-planner/blob/d3121e059da88662db39a926a3ead964be97359b/accuracy/results/v0.19.0/results_raw.csv',
  },
  { name: 'H100-NVL', memoryGiB: 93.58, bandwidthGBs: 3900, source: `${NV}/h100/` },
  { name: 'H800', memoryGiB: 79.19, bandwidthGBs: 3350, source: `${NV}/h100/` },
  {
    name: 'H20',
    memoryGiB: 95.0,
    bandwidthGBs: 4000,
    source: 'https://github.com/vllm-project/vllm/issues/51041',
    measured: 'https://github.com/vllm-project/vllm/issues/51041',
  },
  { name: 'GH200', memoryGiB: 94.5, bandwidthGBs: 4000, source: `${NV}/grace-hopper-superchip/` },
  {
    name: 'H200',
    memoryGiB: 140.4,
    bandwidthGBs: 4800,
    source: `${NV}/h200/`,
    measured: 'https://github.com/vllm-project/recipes/issues/381',
  },
  {
    name: 'B200',
    memoryGiB: 178.36,
    bandwidthGBs: 8000,
    source: `${NV}/dgx-b200/`,
    measured: 'https://github.com/vllm-project/vllm/pull/21489',
  },
  { name: 'GB200', memoryGiB: 184.0, bandwidthGBs: 8000, source: `${NV}/gb200-nvl72/` },
  // NVIDIA workstation and GeForce
  {
    name: 'RTX-A4000',
    memoryGiB: 15.73,
    bandwidthGBs: 448,
    source: 'https://www.nvidia.com/en-us/design-visualization/rtx-a4000/',
  },
  {
    name: 'RTX-A5000',
    memoryGiB: 23.58,
    bandwidthGBs: 768,
    source: 'https://www.nvidia.com/en-us/design-visualization/rtx-a5000/',
  },
  {
    name: 'RTX-A6000',
    memoryGiB: 47.54,
    bandwidthGBs: 768,
    source: 'https://www.nvidia.com/en-us/design-visualization/rtx-a6000/',
  },
  {
    name: 'RTX-6000-Ada',
    memoryGiB: 47.5,
    bandwidthGBs: 960,
    source: 'https://www.nvidia.com/en-us/design-visualization/rtx-6000/',
  },
  {
    name: 'RTX-PRO-6000',
    memoryGiB: 94.97,
    bandwidthGBs: 1792,
    source: 'https://www.nvidia.com/en-us/data-center/rtx-pro-6000-blackwell-server-edition/',
  },
  {
    name: 'RTX-3090',
    memoryGiB: 23.58,
    bandwidthGBs: 936,
    noPeerAccess: true,
    source: 'https://www.nvidia.com/en-us/geforce/graphics-cards/30-series/rtx-3090-3090ti/',
    measured: 'https://github.com/vllm-project/vllm/issues/10517',
  },
  {
    name: 'RTX-4090',
    memoryGiB: 23.52,
    bandwidthGBs: 1008,
    noPeerAccess: true,
    source: 'https://www.nvidia.com/en-us/geforce/graphics-cards/40-series/rtx-4090/',
    measured: 'https://github.com/casys-kaist/LLMServingSim/pull/59',
  },
  {
    name: 'RTX-5090',
    memoryGiB: 31.4,
    bandwidthGBs: 1792,
    noPeerAccess: true,
    source: 'https://www.nvidia.com/en-us/geforce/graphics-cards/50-series/rtx-5090/',
    measured: 'https://github.com/noonghunna/club-3090/issues/1087',
  },
  // AMD Instinct (ROCm reports the whole HBM); an MI250 is two devices of 64 GB each
  { name: 'MI250', memoryGiB: 63.98, bandwidthGBs: 1638, source: `${AMD}/mi200/mi250.html` },
  { name: 'MI300X', memoryGiB: 191.98, bandwidthGBs: 5300, source: `${AMD}/mi300/mi300x.html` },
  { name: 'MI325X', memoryGiB: 255.98, bandwidthGBs: 6000, source: `${AMD}/mi300/mi325x.html` },
  // Intel Gaudi (vLLM's HPU backend)
  { name: 'Gaudi2', memoryGiB: 94.62, bandwidthGBs: 2460, source: 'https://habana.ai/products/gaudi2/' },
  { name: 'Gaudi3', memoryGiB: 126.5, bandwidthGBs: 3700, source: 'https://habana.ai/products/gaudi3/' },
];

const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9.]/g, '');

const ALIASES: Record<string, string> = {
  v100: 'V100-32',
  a100: 'A100-80',
  a10040gb: 'A100-40',
  a10080gb: 'A100-80',
  h100: 'H100-80',
  h10080gb: 'H100-80',
  h100sxm: 'H100-80',
  h100pcie: 'H100-80',
  h200141gb: 'H200',
  '3090': 'RTX-3090',
  '4090': 'RTX-4090',
  '5090': 'RTX-5090',
  a6000: 'RTX-A6000',
  a5000: 'RTX-A5000',
  a4000: 'RTX-A4000',
};

export function findGpu(name: string): Gpu | undefined {
  const n = norm(name);
  const target = norm(ALIASES[n] ?? name);
  return GPUS.find((g) => norm(g.name) === target);
}
