// An InferenceService as a ServiceTemplate for pods: the engine's own renderer with the binaries
// of its image, members bound to every address of their pod, and the model from a cluster source.
import { llamaCppServiceTemplate } from '../../engine/llamacpp/service.js';
import type { ServiceTemplate } from '../service-template.js';
import { DEFAULT_IMAGES, MODEL_MOUNT, type ServiceObject } from './objects.js';

/** Where a llama.cpp image keeps its binaries (ghcr.io/ggml-org/llama.cpp:full). */
const LLAMACPP_IN_IMAGE = { llamaServer: '/app/llama-server', rpcServer: '/app/rpc-server' };

export function clusterServiceTemplate(obj: ServiceObject): ServiceTemplate {
  const { spec } = obj.service;
  if (spec.engine.type !== 'llamacpp') {
    throw new Error(`spec.engine.type: ${spec.engine.type} is not rendered for pods by this version of Tandem yet`);
  }
  const nodes = spec.parallelism.nodes;
  if (nodes === 'auto') {
    throw new Error('spec.parallelism.nodes: auto reads the model file, which the operator cannot: set a number');
  }
  const source = spec.model.source;
  const hf = /^hf:\/\/(.+)$/.exec(source);
  const pvc = /^pvc:\/\/[^/]+\/(.+)$/.exec(source);
  if (!hf && !pvc) {
    throw new Error(
      `spec.model.source: ${source} is not reachable from pods: use hf://ORG/NAME or pvc://CLAIM/PATH.gguf`,
    );
  }
  const image = spec.engine.image ?? DEFAULT_IMAGES.llamacpp;
  return llamaCppServiceTemplate(
    obj.service,
    hf ? { hfRepo: hf[1]! } : { path: `${MODEL_MOUNT}/${pvc![1]!}` },
    { ...LLAMACPP_IN_IMAGE, commit: image, bindAll: true },
    nodes,
  );
}
