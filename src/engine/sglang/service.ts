// SGLang groups: every member runs `python3 -m sglang.launch_server` with --nnodes/--node-rank and
// --dist-init-addr (rank 0's address); rank 0 serves the API. --tp is the group's total tensor
// size (SGLang's convention), --pp-size its stages.
import type { InferenceService } from '../../spec/schema.js';
import type { ServiceTemplate } from '../../core/service.js';
import type { Endpoint, GroupRef, MemberTemplate } from '../../core/group.js';
import { engineServiceTemplate, memberEnv, tensorPipeline } from '../template.js';

export const SGLANG_DIST_PORT = 20000;

export interface SglangTarget {
  python: string;
  bindAll?: boolean;
  version: string;
}

export function sglangServiceTemplate(
  service: InferenceService,
  model: string,
  target: SglangTarget,
  nodes: number,
): ServiceTemplate {
  const { spec } = service;
  const { tp, pp } = tensorPipeline(service, nodes);
  const members = (_group: GroupRef, endpoints: Endpoint[]): MemberTemplate[] => {
    return endpoints.map((endpoint, index) => ({
      index,
      role: index === 0 ? 'leader' : 'worker',
      endpoint,
      command: target.python,
      args: [
        '-m',
        'sglang.launch_server',
        '--model-path',
        model,
        '--served-model-name',
        spec.model.servedName,
        '--tp',
        String(tp),
        '--pp-size',
        String(pp),
        ...(nodes > 1
          ? [
              '--nnodes',
              String(nodes),
              '--node-rank',
              '$(LWS_WORKER_INDEX)',
              '--dist-init-addr',
              `$(LWS_LEADER_ADDRESS):${SGLANG_DIST_PORT}`,
            ]
          : []),
        '--host',
        target.bindAll ? '0.0.0.0' : endpoint.host,
        '--port',
        String(endpoint.port),
        ...(spec.model.task === 'embed' ? ['--is-embedding'] : []),
        ...spec.engine.args,
      ],
      env: memberEnv(service, endpoints, index),
      readiness: index === 0 ? { kind: 'http', path: '/health' } : { kind: 'running' },
    }));
  };
  return engineServiceTemplate(service, {
    size: nodes,
    identity: { nodes, model, version: target.version },
    slots: { flags: ['--max-running-requests'], fallback: 256 }, // SGLang's --max-running-requests, sized like vLLM's
    startupPolicy: 'LeaderCreated',
    members,
  });
}
