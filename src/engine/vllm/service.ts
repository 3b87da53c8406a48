// vLLM groups, in the two ways vLLM spans nodes:
// - mp (the default, as vLLM runs under LeaderWorkerSet): every member runs `vllm serve` with
//   --nnodes/--node-rank/--master-addr/--master-port; the leader (rank 0) serves the API, the
//   workers run --headless. They start together (the leader waits for its workers at start-up).
// - ray: the leader starts a Ray head, waits until every worker's Ray node has joined, then runs
//   `vllm serve --distributed-executor-backend ray`; workers run `ray start --address --block`.
// Either way a worker has no API of its own: it is ready while it runs, and the group is ready
// when the leader serves.
import type { InferenceService } from '../../spec/schema.js';
import type { ServiceTemplate } from '../../core/service.js';
import type { Endpoint, GroupRef, MemberTemplate } from '../../core/group.js';
import { engineServiceTemplate, memberEnv, tensorPipeline } from '../template.js';

/** The port rank 0 coordinates the group on (torch.distributed's TCPStore), and Ray's head port. */
export const VLLM_MASTER_PORT = 29500;
export const RAY_HEAD_PORT = 6379;

/** Where vLLM runs: its commands, how members bind, and the platform's own environment. */
export interface VllmTarget {
  /** The `vllm` executable; `ray` and `python3` for the Ray executor. */
  vllm: string;
  ray: string;
  python: string;
  /** Bind every address (a pod) rather than the member's own (the embedded default). */
  bindAll?: boolean;
  /** Environment every member gets on this platform (e.g. the loopback interface for gloo locally). */
  env?: Record<string, string>;
  /** What the binaries are (a venv's pinned version, an image): part of the template's identity. */
  version: string;
}

export function vllmServiceTemplate(
  service: InferenceService,
  model: string,
  target: VllmTarget,
  nodes: number,
): ServiceTemplate {
  const { spec } = service;
  const { tp, pp } = tensorPipeline(service, nodes);
  const ray = spec.engine.distributedExecutorBackend === 'ray';
  const parallel = [
    '--tensor-parallel-size',
    String(tp),
    '--pipeline-parallel-size',
    String(pp),
    ...(spec.model.task === 'embed' ? ['--runner', 'pooling'] : []),
  ];

  const members = (_group: GroupRef, endpoints: Endpoint[]): MemberTemplate[] => {
    const leader = endpoints[0]!;
    const env = (index: number): Record<string, string> => ({
      ...memberEnv(service, endpoints, index),
      ...target.env,
      // The address vLLM advertises to the others; in a pod it finds its own.
      ...(target.bindAll ? {} : { VLLM_HOST_IP: endpoints[index]!.host }),
    });
    const host = (e: Endpoint) => (target.bindAll ? '0.0.0.0' : e.host);
    const serve = serveArgs(service, model, { host: host(leader), port: leader.port }, tp, pp);
    // Ranks and the leader's address as $(VAR) references: one worker template fits every worker.
    const multiNode = (rank: string) =>
      nodes === 1
        ? []
        : [
            '--distributed-executor-backend',
            'mp',
            '--nnodes',
            String(nodes),
            '--node-rank',
            rank,
            '--master-addr',
            '$(LWS_LEADER_ADDRESS)',
            '--master-port',
            String(VLLM_MASTER_PORT),
          ];
    const worker = (endpoint: Endpoint, index: number): MemberTemplate => ({
      index,
      role: 'worker',
      endpoint,
      ...(ray
        ? {
            command: target.ray,
            args: [
              'start',
              '--address',
              `$(LWS_LEADER_ADDRESS):${RAY_HEAD_PORT}`,
              ...(target.bindAll ? [] : ['--node-ip-address', endpoint.host]),
              '--block',
              '--disable-usage-stats',
            ],
          }
        : {
            command: target.vllm,
            args: ['serve', model, ...parallel, ...multiNode('$(LWS_WORKER_INDEX)'), '--headless', ...spec.engine.args],
          }),
      env: env(index),
      readiness: { kind: 'running' },
    });
    const leaderMember: MemberTemplate = {
      index: 0,
      role: 'leader',
      endpoint: leader,
      ...(ray && nodes > 1
        ? {
            command: '/bin/sh',
            args: [
              '-c',
              rayLeaderScript(target, leader, nodes),
              'ray-leader',
              target.vllm,
              ...serve,
              '--distributed-executor-backend',
              'ray',
              ...spec.engine.args,
            ],
          }
        : { command: target.vllm, args: [...serve, ...multiNode('0'), ...spec.engine.args] }),
      env: env(0),
      readiness: { kind: 'http', path: '/health' },
    };
    return [leaderMember, ...endpoints.slice(1).map((e, i) => worker(e, i + 1))];
  };
  return engineServiceTemplate(service, {
    size: nodes,
    identity: { nodes, model, version: target.version },
    // torch's TCPStore binds *:MASTER_PORT whatever address it is given.
    isolated: !target.bindAll,
    slots: { flags: ['--max-num-seqs'], fallback: 256 }, // vLLM's --max-num-seqs default
    tokenIds: 'vllm',
    startupPolicy: 'LeaderCreated',
    members,
  });
}

/** `vllm serve` for the leader, before the executor's flags and the spec's own arguments. */
export function serveArgs(service: InferenceService, model: string, bind: Endpoint, tp: number, pp: number): string[] {
  return [
    'serve',
    model,
    '--served-model-name',
    service.spec.model.servedName,
    '--host',
    bind.host,
    '--port',
    String(bind.port),
    '--tensor-parallel-size',
    String(tp),
    '--pipeline-parallel-size',
    String(pp),
    ...(service.spec.model.task === 'embed' ? ['--runner', 'pooling'] : []),
  ];
}

/**
 * The Ray leader: a head node, then `vllm serve` (the script's arguments) once the cluster has
 * every node of the group, as vLLM's multi-node-serving.sh does. A head whose workers never come
 * exits, and its group is recreated.
 */
function rayLeaderScript(target: VllmTarget, leader: Endpoint, nodes: number): string {
  const ip = target.bindAll ? '' : ` --node-ip-address ${leader.host}`;
  return [
    // --block in the background: Ray's processes stay the member's own, and go when it goes.
    `${target.ray} start --head --port ${RAY_HEAD_PORT}${ip} --disable-usage-stats --block &`,
    ...waitForRayNodes(target.python, nodes, `${leader.host}:${RAY_HEAD_PORT}`),
    'exec "$@"',
  ].join('\n');
}

/** Shell lines that wait (600 s at most) until the Ray cluster at `address` has `nodes` live nodes. */
export function waitForRayNodes(python: string, nodes: number, address = 'auto'): string[] {
  const count = `import ray; ray.init(address='${address}', logging_level='ERROR'); print(sum(1 for n in ray.nodes() if n['Alive']))`;
  return [
    'i=0',
    `until [ "$(${python} -c "${count}" 2>/dev/null)" = "${nodes}" ]; do`,
    '  i=$((i+1)); if [ "$i" -gt 600 ]; then echo "Ray: not every node joined in 600 s" >&2; exit 1; fi; sleep 1',
    'done',
  ];
}
