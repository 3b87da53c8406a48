// Cloud GPU shapes: a GPU type and how many a node has, as each provider documents them.

export interface Shape {
  gpu: string;
  gpusPerNode: number;
}

const shapes = (source: string, entries: Record<string, [string, number]>) =>
  Object.entries(entries).map(([name, [gpu, gpusPerNode]]) => ({ name, gpu, gpusPerNode, source }));

/** Every shape with the page that documents it. */
export const SHAPES: Array<Shape & { name: string; source: string }> = [
  ...shapes('https://docs.oracle.com/en-us/iaas/Content/Compute/References/computeshapes.htm#bm-gpu', {
    'VM.GPU.A10.1': ['A10', 1],
    'VM.GPU.A10.2': ['A10', 2],
    'BM.GPU.A10.4': ['A10', 4],
    'BM.GPU4.8': ['A100-40', 8],
    'BM.GPU.A100-v2.8': ['A100-80', 8],
    'BM.GPU.L40S.4': ['L40S', 4],
    'BM.GPU.H100.8': ['H100-80', 8],
    'BM.GPU.H200.8': ['H200', 8],
    'BM.GPU.B200.8': ['B200', 8],
    'BM.GPU.GB200.4': ['GB200', 4],
    'BM.GPU.MI300X.8': ['MI300X', 8],
  }),
  ...shapes('https://aws.amazon.com/ec2/instance-types/#Accelerated_Computing', {
    'p3.2xlarge': ['V100-16', 1],
    'p3.8xlarge': ['V100-16', 4],
    'p3.16xlarge': ['V100-16', 8],
    'p3dn.24xlarge': ['V100-32', 8],
    'g4dn.xlarge': ['T4', 1],
    'g4dn.12xlarge': ['T4', 4],
    'g5.xlarge': ['A10G', 1],
    'g5.12xlarge': ['A10G', 4],
    'g5.48xlarge': ['A10G', 8],
    'g6.xlarge': ['L4', 1],
    'g6.12xlarge': ['L4', 4],
    'g6.48xlarge': ['L4', 8],
    'g6e.xlarge': ['L40S', 1],
    'g6e.12xlarge': ['L40S', 4],
    'g6e.48xlarge': ['L40S', 8],
    'p4d.24xlarge': ['A100-40', 8],
    'p4de.24xlarge': ['A100-80', 8],
    'p5.48xlarge': ['H100-80', 8],
    'p5e.48xlarge': ['H200', 8],
    'p5en.48xlarge': ['H200', 8],
    'p6-b200.48xlarge': ['B200', 8],
    'dl1.24xlarge': ['Gaudi2', 8],
  }),
  ...shapes('https://cloud.google.com/compute/docs/gpus', {
    'g2-standard-4': ['L4', 1],
    'g2-standard-24': ['L4', 2],
    'g2-standard-48': ['L4', 4],
    'g2-standard-96': ['L4', 8],
    'a2-highgpu-1g': ['A100-40', 1],
    'a2-highgpu-2g': ['A100-40', 2],
    'a2-highgpu-4g': ['A100-40', 4],
    'a2-highgpu-8g': ['A100-40', 8],
    'a2-megagpu-16g': ['A100-40', 16],
    'a2-ultragpu-1g': ['A100-80', 1],
    'a2-ultragpu-8g': ['A100-80', 8],
    'a3-highgpu-8g': ['H100-80', 8],
    'a3-megagpu-8g': ['H100-80', 8],
    'a3-ultragpu-8g': ['H200', 8],
    'a4-highgpu-8g': ['B200', 8],
  }),
  ...shapes('https://learn.microsoft.com/en-us/azure/virtual-machines/sizes/overview#gpu-accelerated', {
    Standard_NC4as_T4_v3: ['T4', 1],
    Standard_NC64as_T4_v3: ['T4', 4],
    Standard_ND40rs_v2: ['V100-32', 8],
    Standard_NC24ads_A100_v4: ['A100-80', 1],
    Standard_NC96ads_A100_v4: ['A100-80', 4],
    Standard_ND96asr_v4: ['A100-40', 8],
    Standard_ND96amsr_A100_v4: ['A100-80', 8],
    Standard_NC40ads_H100_v5: ['H100-NVL', 1],
    Standard_NC80adis_H100_v5: ['H100-NVL', 2],
    Standard_ND96isr_H100_v5: ['H100-80', 8],
    Standard_ND96isr_H200_v5: ['H200', 8],
    Standard_ND96isr_MI300X_v5: ['MI300X', 8],
  }),
];

const norm = (s: string) => s.toLowerCase();

export function findShape(name: string): (Shape & { name: string; source: string }) | undefined {
  return SHAPES.find((s) => norm(s.name) === norm(name));
}
