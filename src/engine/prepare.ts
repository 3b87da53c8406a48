// Turns validated InferenceServices into ServiceTemplates for the embedded default: builds the
// engine and makes the model when needed (cached), and checks what needs the model to check.
import { ensureLlamaSource } from './llamacpp/source.js';
import { ensureLlamaBinaries } from './llamacpp/build.js';
import { llamaCppServiceTemplate } from './llamacpp/service.js';
import { ensureTinyLlama } from '../model/tiny-llama.js';
import { readGgufHeader } from '../model/gguf.js';
import { SpecError, type LoadedService } from '../spec/load.js';
import type { ServiceTemplate } from '../runtime/service-template.js';
import type { Progress } from '../util/progress.js';

/** Layer count from a GGUF file's metadata (`<architecture>.block_count`). */
export function ggufLayers(path: string): number {
  const { kv } = readGgufHeader(path);
  const arch = kv.get('general.architecture')?.value;
  const layers = Number(kv.get(`${String(arch)}.block_count`)?.value);
  if (!Number.isInteger(layers) || layers < 1) throw new Error(`${path}: no ${String(arch)}.block_count in GGUF metadata`);
  return layers;
}

export async function prepareServices(loaded: LoadedService[], progress: Progress): Promise<ServiceTemplate[]> {
  const unsupported = loaded
    .filter((l) => l.service.spec.engine.type !== 'llamacpp')
    .map((l) => `${l.file}: spec.engine.type: ${l.service.spec.engine.type} runs on Kubernetes (the operator); the embedded default runs llamacpp`);
  if (unsupported.length > 0) throw new SpecError(unsupported);

  const binaries = await ensureLlamaBinaries(progress);
  const templates: ServiceTemplate[] = [];
  const problems: string[] = [];
  for (const { service, file, modelPath } of loaded) {
    const path = modelPath ?? (await ensureTinyLlama((await ensureLlamaSource(progress)).dir, progress));
    let layers: number;
    try {
      layers = ggufLayers(path);
    } catch (err) {
      problems.push(`${file}: spec.model.source: ${(err as Error).message}`);
      continue;
    }
    try {
      templates.push(llamaCppServiceTemplate(service, { path, layers }, binaries));
    } catch (err) {
      problems.push(`${file}: spec.parallelism.nodes: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new SpecError(problems);
  return templates;
}
