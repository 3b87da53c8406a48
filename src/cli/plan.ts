// `tandem plan`: layouts for a model on a GPU type, as a table, JSON or an SVG picture.
import { writeFileSync } from 'node:fs';
import { engineProfile, type PlanEngine } from '../planner/engine-profile.js';
import { findGpu, GPUS, type Gpu } from '../planner/gpus.js';
import { resolveModel } from '../planner/model-source.js';
import { plan } from '../planner/plan.js';
import { findShape, SHAPES } from '../planner/shapes.js';
import { layoutSvg, planTable } from '../planner/render.js';
import { UsageError } from './usage-error.js';

export interface PlanFlags {
  model?: string;
  gpu?: string;
  'gpu-memory'?: string;
  'gpu-bandwidth'?: string;
  'gpus-per-node'?: string;
  nodes?: string;
  'max-model-len'?: string;
  engine?: string;
  'engine-version'?: string;
  dtype?: string;
  'kv-dtype'?: string;
  'memory-utilization'?: string;
  'max-num-batched-tokens'?: string;
  'max-num-seqs'?: string;
  json?: boolean;
  svg?: string;
}

const ENGINES: PlanEngine[] = ['vllm', 'sglang', 'llamacpp'];

function positive(name: string, value: string | undefined, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name}: must be an integer ≥ 1 (got ${value})`);
  return n;
}

/**
 * A GPU given by its memory as the driver reports it (GiB), named by --gpu for display; its
 * bandwidth from --gpu-bandwidth, else the catalog's when --gpu names one, else unknown.
 */
function anyGpu(f: PlanFlags, listed: Gpu | undefined): Gpu {
  const memoryGiB = Number(f['gpu-memory']);
  if (!(memoryGiB > 0 && memoryGiB <= 4096))
    throw new UsageError(`--gpu-memory: must be the GPU's memory in GiB, more than 0 (got ${f['gpu-memory']})`);
  const bandwidth = f['gpu-bandwidth'] === undefined ? listed?.bandwidthGBs : Number(f['gpu-bandwidth']);
  if (bandwidth !== undefined && !(bandwidth > 0))
    throw new UsageError(
      `--gpu-bandwidth: must be the memory bandwidth in GB/s, more than 0 (got ${f['gpu-bandwidth']})`,
    );
  return {
    name: listed?.name ?? f.gpu ?? `${memoryGiB} GiB GPU`,
    memoryGiB,
    ...(bandwidth === undefined ? {} : { bandwidthGBs: bandwidth }),
  };
}

/** Runs the command; returns the exit code (1 when no layout is feasible). */
export function planCommand(f: PlanFlags): number {
  if (!f.model)
    throw new UsageError('--model is required: a catalog name, a config.json (or its folder) or a .gguf file');
  const known = `${GPUS.map((g) => g.name).join(', ')} or a cloud shape (${SHAPES.length} of them: BM.GPU.H100.8, p5.48xlarge, a3-highgpu-8g, Standard_ND96isr_H100_v5, …)`;
  if (!f.gpu && f['gpu-memory'] === undefined)
    throw new UsageError(`--gpu is required: one of ${known}; or any GPU by its memory, --gpu-memory GIB`);
  const shape = f.gpu ? findShape(f.gpu) : undefined;
  const listed = f.gpu ? findGpu(shape?.gpu ?? f.gpu) : undefined;
  const gpu = f['gpu-memory'] === undefined ? listed : anyGpu(f, listed);
  if (!gpu) throw new UsageError(`--gpu: unknown GPU "${f.gpu}": use one of ${known}, or give --gpu-memory GIB`);
  const engine = (f.engine ?? 'vllm') as PlanEngine;
  if (!ENGINES.includes(engine)) throw new UsageError(`--engine: must be one of ${ENGINES.join(', ')}`);
  let profile;
  try {
    profile = engineProfile(engine, f['engine-version']);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const utilization = f['memory-utilization'] === undefined ? undefined : Number(f['memory-utilization']);
  if (utilization !== undefined && !(utilization > 0 && utilization <= 1))
    throw new UsageError('--memory-utilization: must be in (0, 1]');
  let model;
  try {
    model = resolveModel(f.model);
  } catch (err) {
    throw new UsageError(`--model: ${(err as Error).message}`);
  }
  const maxModelLen = positive('max-model-len', f['max-model-len']);
  const maxNumBatchedTokens = positive('max-num-batched-tokens', f['max-num-batched-tokens']);
  const maxNumSeqs = positive('max-num-seqs', f['max-num-seqs']);
  let result;
  try {
    result = plan({
      model,
      gpu,
      gpusPerNode: positive('gpus-per-node', f['gpus-per-node'], shape?.gpusPerNode ?? 8)!,
      maxNodes: positive('nodes', f.nodes, 4)!,
      engine,
      profile,
      dtype: f.dtype ?? 'bf16',
      kvDtype: f['kv-dtype'] ?? 'auto',
      ...(utilization === undefined ? {} : { memoryUtilization: utilization }),
      ...(maxModelLen ? { maxModelLen } : {}),
      ...(maxNumBatchedTokens ? { maxNumBatchedTokens } : {}),
      ...(maxNumSeqs ? { maxNumSeqs } : {}),
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (f.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${planTable(result)}\n`);
  if (f.svg) {
    if (result.layouts.length === 0) throw new UsageError('--svg: no feasible layout to draw');
    writeFileSync(f.svg, layoutSvg(result, result.layouts[0]!));
    if (!f.json) process.stdout.write(`picture of the best layout: ${f.svg}\n`);
  }
  return result.layouts.length > 0 ? 0 : 1;
}
