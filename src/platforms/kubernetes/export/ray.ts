// vLLM over Ray, as KubeRay and AIBrix run it: a RayCluster per group (head + workers, KubeRay
// starting Ray in each), the head serving `vllm serve --distributed-executor-backend ray` once
// every node has joined; a RayService running Ray Serve LLM's OpenAI app; an AIBrix
// RayClusterFleet of such clusters.
import type { KubernetesObject } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { InferenceService } from '../../../spec/schema.js';
import { serveArgs, waitForRayNodes } from '../../../engine/vllm/service.js';
import { tensorPipeline } from '../../../engine/template.js';
import { clusterModel } from '../render.js';
import { LABEL, LEADER_PORT, memberPod } from '../objects.js';
import type { MemberTemplate } from '../../../core/group.js';
import { podTemplate, type PodTemplateJson } from './pod-template.js';

type Mode = 'vllm-serve' | 'ray-serve';

function checkRay(service: InferenceService, to: string): void {
  const { engine, scheduling } = service.spec;
  if (engine.type !== 'vllm') {
    throw new Error(
      `--to ${to}: Ray runs vLLM's Ray executor; spec.engine.type ${engine.type} renders --to lws or --to manifests`,
    );
  }
  if (scheduling.topologyKey) {
    throw new Error(
      `--to ${to}: spec.scheduling.topologyKey has no KubeRay equivalent; render --to lws or --to manifests`,
    );
  }
}

function modelOf(service: InferenceService): string {
  const m = clusterModel(service.spec.model.source, false);
  return 'hf' in m ? m.hf : m.path;
}

/**
 * A Ray node's pod template, rendered as the operator renders a member (resources, /dev/shm, the
 * model volume, the hub token, the role's overrides); its command runs KubeRay's generated
 * `ray start` (`$KUBERAY_GEN_RAY_START_CMD`), then what `after` adds.
 */
function rayNode(
  service: InferenceService,
  role: 'leader' | 'worker',
  after: string[],
  port?: { name: string; port: number },
): PodTemplateJson {
  const { spec } = service;
  const ref = { service: service.metadata.name, replica: 0 };
  const member: MemberTemplate = {
    index: role === 'leader' ? 0 : 1,
    role,
    endpoint: { host: '', port: port?.port ?? LEADER_PORT },
    command: '/bin/bash',
    args: ['-c', ['ulimit -n 65536', ...after].join('\n')],
    env: { ...spec.env, ...spec.engine.env },
    readiness: port?.name === 'http' ? { kind: 'http', path: '/health' } : { kind: 'running' },
  };
  // Admission is the RayCluster's (its labels), not each pod's.
  const { queue: _q, ...scheduling } = spec.scheduling;
  const plain = { ...service, spec: { ...spec, scheduling } };
  const pod = memberPod({ service: plain, namespace: '', uid: '' }, ref, member, '');
  const template = podTemplate(pod);
  const c = template.spec!.containers[0]!;
  c.ports = [
    ...(role === 'leader'
      ? [
          { name: 'gcs-server', containerPort: 6379 },
          { name: 'dashboard', containerPort: 8265 },
          { name: 'client', containerPort: 10001 },
        ]
      : []),
    ...(port ? [{ name: port.name, containerPort: port.port }] : []),
  ];
  // The command above replaces KubeRay's own (which it would otherwise generate).
  template.metadata = {
    ...template.metadata,
    annotations: { ...template.metadata?.annotations, 'ray.io/overwrite-container-cmd': 'true' },
  };
  return template;
}

/** The RayCluster spec of one group (vllm-serve), or of a Ray Serve cluster for every replica. */
function rayClusterSpec(service: InferenceService, nodes: number, mode: Mode): Record<string, unknown> {
  const { tp, pp } = tensorPipeline(service, nodes);
  let headTemplate: PodTemplateJson;
  if (mode === 'vllm-serve') {
    // `ray start --head --block` in the background (as AIBrix's samples do), then vLLM once every node joined.
    const serve = [
      'vllm',
      ...serveArgs(service, modelOf(service), { host: '0.0.0.0', port: LEADER_PORT }, tp, pp),
      '--distributed-executor-backend',
      'ray',
      ...service.spec.engine.args,
    ];
    headTemplate = rayNode(
      service,
      'leader',
      [
        'eval "$KUBERAY_GEN_RAY_START_CMD" &',
        ...waitForRayNodes('python3', nodes),
        `exec ${serve.map(shellQuote).join(' ')}`,
      ],
      { name: 'http', port: LEADER_PORT },
    );
  } else {
    // Ray Serve's head schedules no model replica: it holds no GPU.
    const cpuOnly = { ...service, spec: { ...service.spec, resources: { ...service.spec.resources, gpu: 0 } } };
    headTemplate = rayNode(cpuOnly, 'leader', ['exec $KUBERAY_GEN_RAY_START_CMD'], { name: 'serve', port: 8000 });
  }
  const workers = mode === 'vllm-serve' ? nodes - 1 : service.spec.replicas * nodes;
  return {
    headGroupSpec: {
      rayStartParams: { 'dashboard-host': '0.0.0.0', ...(mode === 'ray-serve' ? { 'num-gpus': '0' } : {}) },
      template: headTemplate,
    },
    workerGroupSpecs:
      workers > 0
        ? [
            {
              groupName: 'workers',
              replicas: workers,
              minReplicas: workers,
              maxReplicas: workers,
              rayStartParams: {},
              template: rayNode(service, 'worker', ['exec $KUBERAY_GEN_RAY_START_CMD']),
            },
          ]
        : [],
  };
}

function admission(service: InferenceService): Record<string, string> {
  const { queue, gangScheduler } = service.spec.scheduling;
  if (!queue) return {};
  return gangScheduler === 'volcano'
    ? { 'ray.io/scheduler-name': 'volcano', 'volcano.sh/queue-name': queue }
    : { 'kueue.x-k8s.io/queue-name': queue };
}

/** KubeRay RayClusters, one per replica (the OCI Blueprints' raycluster mode). */
export function rayClusters(service: InferenceService, nodes: number): KubernetesObject[] {
  checkRay(service, 'kuberay');
  return Array.from({ length: service.spec.replicas }, (_, r) => ({
    apiVersion: 'ray.io/v1',
    kind: 'RayCluster',
    metadata: {
      name: `${service.metadata.name}-${r}`,
      labels: { [LABEL.service]: service.metadata.name, ...admission(service) },
    },
    spec: rayClusterSpec(service, nodes, 'vllm-serve'),
  })) as KubernetesObject[];
}

/** A RayService running Ray Serve LLM's OpenAI app with `replicas` copies of the model. */
export function rayService(service: InferenceService, nodes: number): KubernetesObject {
  checkRay(service, 'rayservice');
  const { tp, pp } = tensorPipeline(service, nodes);
  const { spec } = service;
  const app = {
    applications: [
      {
        name: 'llm',
        route_prefix: '/',
        import_path: 'ray.serve.llm:build_openai_app',
        args: {
          llm_configs: [
            {
              model_loading_config: { model_id: spec.model.servedName, model_source: modelOf(service) },
              engine_kwargs: {
                tensor_parallel_size: tp,
                pipeline_parallel_size: pp,
                ...engineKwargs(spec.engine.args),
              },
              deployment_config: { autoscaling_config: { min_replicas: spec.replicas, max_replicas: spec.replicas } },
              runtime_env: { env_vars: { ...spec.env, ...spec.engine.env } },
            },
          ],
        },
      },
    ],
  };
  return {
    apiVersion: 'ray.io/v1',
    kind: 'RayService',
    metadata: {
      name: service.metadata.name,
      labels: { [LABEL.service]: service.metadata.name, ...admission(service) },
    },
    spec: { serveConfigV2: stringify(app), rayClusterConfig: rayClusterSpec(service, nodes, 'ray-serve') },
  } as KubernetesObject;
}

/** An AIBrix RayClusterFleet: `replicas` RayClusters as one Deployment-like object. */
export function rayClusterFleet(service: InferenceService, nodes: number): KubernetesObject {
  checkRay(service, 'aibrix');
  const { name } = service.metadata;
  const { rollout } = service.spec;
  return {
    apiVersion: 'orchestration.aibrix.ai/v1alpha1',
    kind: 'RayClusterFleet',
    metadata: { name, labels: { [LABEL.service]: name, ...admission(service) } },
    spec: {
      replicas: service.spec.replicas,
      selector: { matchLabels: { [LABEL.service]: name } },
      strategy: {
        type: 'RollingUpdate',
        rollingUpdate: { maxUnavailable: rollout.maxUnavailable, maxSurge: rollout.maxSurge },
      },
      template: { metadata: { labels: { [LABEL.service]: name } }, spec: rayClusterSpec(service, nodes, 'vllm-serve') },
    },
  } as KubernetesObject;
}

/** vLLM's CLI flags as engine keyword arguments (--max-model-len 4096 → max_model_len: 4096). */
export function engineKwargs(args: string[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--'))
      throw new Error(`spec.engine.args: ${arg} is not a --flag (Ray Serve takes engine keyword arguments)`);
    const [flag, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const next = args[i + 1];
    const value = inline ?? (next !== undefined && !next.startsWith('--') ? (i++, next) : true);
    out[flag.replaceAll('-', '_')] = typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  return out;
}

const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);
