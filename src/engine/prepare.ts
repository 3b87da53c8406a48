// Turns validated InferenceServices into ServiceTemplates for the embedded default: builds the
// engine and makes the model when needed (cached), and checks what needs the model to check.
import { ensureLlamaSource } from './llamacpp/source.js';
import { ensureLlamaBinaries } from './llamacpp/build.js';
import { contextTokens, llamaCppServiceTemplate } from './llamacpp/service.js';
import { ensureTinyLlama } from '../model/tiny-llama.js';
import { archFromGguf } from '../planner/model-source.js';
import { parseQuantity } from '../spec/quantity.js';
import { autoLayout } from './llamacpp/auto.js';
import { SpecError, type LoadedService } from '../spec/load.js';
import { CLUSTER_SOURCE } from '../spec/schema.js';
import type { ServiceTemplate } from '../core/service.js';
import type { Progress } from '../util/progress.js';
import { ensureVllm } from './vllm/install.js';
import { vllmServiceTemplate } from './vllm/service.js';
import { ensureTinyHf } from '../model/tiny-hf.js';

/** vLLM on this machine's CPU: gloo over the group's loopback, a small KV cache, offline. */
const VLLM_LOCAL_ENV = {
  VLLM_TARGET_DEVICE: 'cpu', // torch from PyPI is a CUDA build: say which platform this is
  GLOO_SOCKET_IFNAME: 'lo',
  VLLM_CPU_KVCACHE_SPACE: '1', // GiB
  VLLM_CPU_OMP_THREADS_BIND: 'nobind',
  HF_HUB_OFFLINE: '1',
  VLLM_NO_USAGE_STATS: '1',
  DO_NOT_TRACK: '1',
};

export async function prepareServices(loaded: LoadedService[], progress: Progress): Promise<ServiceTemplate[]> {
  const unsupported = loaded
    .filter((l) => l.service.spec.engine.type === 'sglang')
    .map(
      (l) =>
        `${l.file}: spec.engine.type: sglang runs on Kubernetes (the operator, or tandem render): PyPI has no CPU build of it for the embedded default`,
    );
  for (const l of loaded) {
    if (l.service.spec.engine.type === 'vllm' && process.getuid?.() !== 0) {
      unsupported.push(
        `${l.file}: spec.engine.type: vllm runs each group in a network namespace of its own on the embedded default, which needs root (sudo)`,
      );
    }
    if (l.service.spec.engine.type === 'vllm' && l.service.spec.engine.distributedExecutorBackend === 'ray') {
      unsupported.push(
        `${l.file}: spec.engine.distributedExecutorBackend: ray needs GPUs (vLLM's Ray executor refuses the CPU platform); the embedded default runs vllm with mp`,
      );
    }
  }
  for (const l of loaded) {
    if (CLUSTER_SOURCE.test(l.service.spec.model.source)) {
      unsupported.push(
        `${l.file}: spec.model.source: ${l.service.spec.model.source} is for Kubernetes (the operator); the embedded default runs offline from file:// or tandem://tiny-llama`,
      );
    }
  }
  if (unsupported.length > 0) throw new SpecError(unsupported);

  const templates: ServiceTemplate[] = [];
  const problems: string[] = [];
  const vllm = loaded.filter((l) => l.service.spec.engine.type === 'vllm');
  if (vllm.length > 0) {
    const install = await ensureVllm(progress);
    for (const { service, modelPath } of vllm) {
      const model = modelPath ?? (await ensureTinyHf(progress));
      templates.push(
        vllmServiceTemplate(
          service,
          model,
          { ...install, env: VLLM_LOCAL_ENV },
          service.spec.parallelism.nodes as number,
        ),
      );
    }
  }
  const llamacpp = loaded.filter((l) => l.service.spec.engine.type === 'llamacpp');
  if (llamacpp.length === 0) return templates;
  const binaries = await ensureLlamaBinaries(progress);
  for (const { service, file, modelPath } of llamacpp) {
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
      templates.push(llamaCppServiceTemplate(service, { path, layers: gguf.arch.layers, gguf }, binaries, nodes));
    } catch (err) {
      problems.push(`${file}: spec.parallelism.nodes: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new SpecError(problems);
  return templates;
}
