// An InferenceService as a ServiceTemplate for pods: the engine's own renderer with the commands
// of its image, members bound to every address of their pod, and the model from a cluster source.
import { createHash } from 'node:crypto';
import { llamaCppServiceTemplate } from '../../engine/llamacpp/service.js';
import { sglangServiceTemplate } from '../../engine/sglang/service.js';
import { vllmServiceTemplate } from '../../engine/vllm/service.js';
import type { ServiceTemplate } from '../../core/service.js';
import { DEFAULT_IMAGES, MODEL_MOUNT, type ServiceObject } from './objects.js';

/** Where a llama.cpp image keeps its binaries (ghcr.io/ggml-org/llama.cpp:full). */
export const LLAMACPP_IN_IMAGE = { llamaServer: '/app/llama-server', rpcServer: '/app/rpc-server' };

/** Where a pod finds the model: a hub repo (the engine fetches it) or a path on the mounted claim. */
export function clusterModel(source: string, gguf: boolean): { hf: string } | { path: string } {
  const hf = /^hf:\/\/(.+)$/.exec(source);
  if (hf) return { hf: hf[1]! };
  const pvc = /^pvc:\/\/[^/]+\/(.+)$/.exec(source);
  if (pvc) return { path: `${MODEL_MOUNT}/${pvc[1]!}` };
  throw new Error(
    `spec.model.source: ${source} is not reachable from pods: use hf://ORG/NAME or pvc://CLAIM/PATH${gguf ? '.gguf' : ''}`,
  );
}

export function clusterServiceTemplate(obj: ServiceObject): ServiceTemplate {
  const template = engineTemplate(obj);
  return obj.service.spec.scheduling.queue ? inContainerStartup(template) : template;
}

/**
 * Every member created at once; a leader that must wait for its workers (WorkersReady) waits in
 * its container instead, until each worker's port accepts a connection. For gang schedulers (Kueue
 * and Volcano admit a group once all its pods exist) and for controllers that create a group's
 * pods together (LeaderWorkerSet, KubeRay).
 */
export function inContainerStartup(template: ServiceTemplate): ServiceTemplate {
  // Whether the leader waits is part of what it runs: its hash covers the startup policy here.
  const placeholder = Array.from({ length: template.size }, () => ({ host: '', port: 0 }));
  const waits = template.render({ service: template.name, replica: 0 }, placeholder).startupPolicy === 'WorkersReady';
  const hash = waits
    ? createHash('sha256').update(`${template.hash}/leader waits`).digest('hex').slice(0, 12)
    : template.hash;
  return {
    ...template,
    hash,
    render: (group, endpoints) => {
      const rendered = { ...template.render(group, endpoints), hash };
      const [leader, ...workers] = rendered.members;
      if (rendered.startupPolicy !== 'WorkersReady' || workers.length === 0) {
        return { ...rendered, startupPolicy: 'LeaderCreated' };
      }
      const reachable = workers
        .map((w) => `(exec 3<>/dev/tcp/${w.endpoint.host}/${w.endpoint.port}) 2>/dev/null`)
        .join(' && ');
      const wait = `until ${reachable}; do sleep 1; done; exec "$@"`;
      return {
        ...rendered,
        startupPolicy: 'LeaderCreated',
        members: [
          {
            ...leader!,
            command: '/bin/bash',
            args: ['-c', wait, 'wait-for-workers', leader!.command, ...leader!.args],
          },
          ...workers,
        ],
      };
    },
  };
}

function engineTemplate(obj: ServiceObject): ServiceTemplate {
  const { spec } = obj.service;
  const nodes = spec.parallelism.nodes;
  if (nodes === 'auto') {
    throw new Error('spec.parallelism.nodes: auto reads the model file, which the operator cannot: set a number');
  }
  const model = clusterModel(spec.model.source, spec.engine.type === 'llamacpp');
  const image = spec.engine.image ?? DEFAULT_IMAGES[spec.engine.type];
  switch (spec.engine.type) {
    case 'llamacpp':
      return llamaCppServiceTemplate(
        obj.service,
        'hf' in model ? { hfRepo: model.hf } : { path: model.path },
        { ...LLAMACPP_IN_IMAGE, commit: image, bindAll: true },
        nodes,
      );
    case 'vllm':
      // vllm/vllm-openai has vllm, ray and python3 on its PATH.
      return vllmServiceTemplate(
        obj.service,
        'hf' in model ? model.hf : model.path,
        { vllm: 'vllm', ray: 'ray', python: 'python3', bindAll: true, version: image },
        nodes,
      );
    case 'sglang':
      return sglangServiceTemplate(
        obj.service,
        'hf' in model ? model.hf : model.path,
        { python: 'python3', bindAll: true, version: image },
        nodes,
      );
  }
}
