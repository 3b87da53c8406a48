// llama.cpp on the embedded default: workers are `ggml-rpc-server` (one RPC device each), the
// leader is `llama-server --rpc w1,w2,…` serving the OpenAI API, holding the first layers itself.
import type { InferenceService } from '../../spec/schema.js';
import type { ServiceTemplate } from '../../core/service.js';
import type { Endpoint, GroupRef, MemberTemplate } from '../../core/group.js';
import { engineServiceTemplate, memberEnv, threadsFor } from '../template.js';
import type { LlamaBinaries } from './build.js';
import { llamaCppShares, offloadArgs, splitLayers } from '../../planner/llamacpp.js';
import type { ModelArch } from '../../planner/arch.js';

/** Where the model is and how many layers it has (unknown on a cluster until the leader loads it). */
export interface LlamaCppModel {
  /** A GGUF file on the member's filesystem, or a Hugging Face repo ORG/NAME[:QUANT] the leader fetches. */
  path?: string;
  hfRepo?: string;
  layers?: number;
  /** The GGUF's architecture and exact weight bytes, when read here: the split picture's figures. */
  gguf?: { arch: ModelArch; weightBytes: number };
}

/** Where the engine's binaries are and where members bind: their own address locally, every address in a pod. */
export interface LlamaCppTarget extends LlamaBinaries {
  bindAll?: boolean;
}

/** `nodes` is spec.parallelism.nodes, or what the planner chose for `auto`. */
export function llamaCppServiceTemplate(
  service: InferenceService,
  model: LlamaCppModel,
  binaries: LlamaCppTarget,
  nodes: number,
): ServiceTemplate {
  const { spec } = service;
  // The planned split (throws a clear error when it cannot work); unknown layers: llama.cpp splits by free memory.
  const offload =
    model.layers === undefined
      ? ['--n-gpu-layers', '999']
      : [...offloadArgs(splitLayers(model.layers, nodes)), '--fit', 'off'];
  const source = model.hfRepo ? ['--hf-repo', model.hfRepo] : ['--model', model.path ?? ''];
  const bind = (endpoint: Endpoint) => (binaries.bindAll ? '0.0.0.0' : endpoint.host);
  const threads = threadsFor(spec.resources.cpu);
  const members = (_group: GroupRef, endpoints: Endpoint[]): MemberTemplate[] => {
    const env = (index: number) => memberEnv(service, endpoints, index);
    const threadArgs = threads === undefined ? [] : ['--threads', String(threads)];
    const workers: MemberTemplate[] = endpoints.slice(1).map((endpoint, i) => ({
      index: i + 1,
      role: 'worker',
      endpoint,
      command: binaries.rpcServer,
      // Locally bound to the member's own address only (the RPC protocol is unauthenticated); in a pod, the group's NetworkPolicy fences it.
      args: ['--host', bind(endpoint), '--port', String(endpoint.port), ...threadArgs],
      env: env(i + 1),
      ...(threads === undefined ? {} : { cpu: threads }),
      readiness: { kind: 'tcp' },
    }));
    const leaderEndpoint = endpoints[0]!;
    const rpc =
      workers.length > 0 ? ['--rpc', workers.map((w) => `${w.endpoint.host}:${w.endpoint.port}`).join(',')] : [];
    const leader: MemberTemplate = {
      index: 0,
      role: 'leader',
      endpoint: leaderEndpoint,
      command: binaries.llamaServer,
      args: [
        ...source,
        '--alias',
        spec.model.servedName,
        '--host',
        bind(leaderEndpoint),
        '--port',
        String(leaderEndpoint.port),
        ...rpc,
        ...offload, // the planned split, and --fit off: never let llama.cpp re-plan it
        '--no-webui',
        // A causal model's embedding is its last token's; an embedding model's own pooling goes in the args.
        ...(spec.model.task === 'embed' ? ['--embeddings', '--pooling', 'last'] : []),
        ...threadArgs,
        ...spec.engine.args,
      ],
      env: env(0),
      ...(threads === undefined ? {} : { cpu: threads }),
      readiness: { kind: 'http', path: '/health' },
    };
    return [leader, ...workers];
  };
  return engineServiceTemplate(service, {
    size: nodes,
    identity: {
      nodes,
      model: { path: model.path, hfRepo: model.hfRepo, layers: model.layers },
      commit: binaries.commit,
    },
    slots: { flags: ['--parallel', '-np'], fallback: 4 }, // llama-server's --parallel: auto is 4
    tokenIds: 'llama-server',
    exclusiveCache: true, // a slot takes its prompt out of the prompt cache while it runs
    startupPolicy: 'WorkersReady', // llama-server aborts unless every RPC worker accepts connections
    ...(model.gguf
      ? {
          split: llamaCppShares(
            model.gguf.arch,
            model.gguf.weightBytes,
            nodes,
            contextTokens(spec.engine.args, model.gguf.arch.maxPositions),
          ),
        }
      : {}),
    members,
  });
}

/** Context llama-server allocates: --ctx-size/-c from the engine args, else the model's. */
export function contextTokens(args: string[], modelContext: number): number {
  const i = args.findIndex((a) => a === '--ctx-size' || a === '-c');
  const n = i >= 0 ? Number(args[i + 1]) : NaN;
  return Number.isInteger(n) && n > 0 ? n : modelContext;
}
