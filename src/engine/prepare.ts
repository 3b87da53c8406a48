// Turns validated InferenceServices into ServiceTemplates for the embedded default: builds the
// engine and makes the model when needed (cached), and checks what needs the model to check.
import { ensureLlamaSource } from './llamacpp/source.js';
import { ensureLlamaBinaries } from './llamacpp/build.js';
import { llamaCppServiceTemplate } from './llamacpp/service.js';
import { ensureTinyLlama } from '../model/tiny-llama.js';
import { archFromGguf } from '../planner/model-source.js';
import { parseQuantity } from '../spec/quantity.js';
import { autoLayout } from './llamacpp/auto.js';
import { SpecError, type LoadedService } from '../spec/load.js';
import { CLUSTER_SOURCE } from '../spec/schema.js';
import type { ServiceTemplate } from '../runtime/service-template.js';
import type { Progress } from '../util/progress.js';

/** Context llama-server will allocate: --ctx-size/-c from the engine args, else the model's. */
function contextTokens(args: string[], modelContext: number): number {
  const i = args.findIndex((a) => a === '--ctx-size' || a === '-c');
  const n = i >= 0 ? Number(args[i + 1]) : NaN;
  return Number.isInteger(n) && n > 0 ? n : modelContext;
}

export async function prepareServices(loaded: LoadedService[], progress: Progress): Promise<ServiceTemplate[]> {
  const unsupported = loaded
    .filter((l) => l.service.spec.engine.type !== 'llamacpp')
    .map(
      (l) =>
        `${l.file}: spec.engine.type: ${l.service.spec.engine.type} runs on Kubernetes (the operator); the embedded default runs llamacpp`,
    );
  for (const l of loaded) {
    if (CLUSTER_SOURCE.test(l.service.spec.model.source)) {
      unsupported.push(
        `${l.file}: spec.model.source: ${l.service.spec.model.source} is for Kubernetes (the operator); the embedded default runs offline from file:// or tandem://tiny-llama`,
      );
    }
  }
  if (unsupported.length > 0) throw new SpecError(unsupported);

  const binaries = await ensureLlamaBinaries(progress);
  const templates: ServiceTemplate[] = [];
  const problems: string[] = [];
  for (const { service, file, modelPath } of loaded) {
    const path = modelPath ?? (await ensureTinyLlama((await ensureLlamaSource(progress)).dir, progress));
    let gguf: ReturnType<typeof archFromGguf>;
    try {
      gguf = archFromGguf(path);
    } catch (err) {
      problems.push(`${file}: spec.model.source: ${(err as Error).message}`);
      continue;
    }
    const { parallelism, resources, engine } = service.spec;
    let nodes: number;
    if (parallelism.nodes === 'auto') {
      try {
        const layout = autoLayout(
          gguf.arch,
          gguf.weightBytes,
          parseQuantity(resources.memory!),
          contextTokens(engine.args, gguf.arch.maxPositions),
        );
        nodes = layout.nodes;
        progress(
          `${service.metadata.name}: parallelism auto → ${nodes} node(s), layers ${layout.layers.join('/')}, for ${resources.memory} per node`,
        );
      } catch (err) {
        problems.push(`${file}: spec.parallelism: ${(err as Error).message}`);
        continue;
      }
    } else {
      nodes = parallelism.nodes;
    }
    try {
      templates.push(llamaCppServiceTemplate(service, { path, layers: gguf.arch.layers }, binaries, nodes));
    } catch (err) {
      problems.push(`${file}: spec.parallelism.nodes: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new SpecError(problems);
  return templates;
}
