// The InferenceService: one schema (zod) for the CLI, the Kubernetes CRD and the control API;
// `inferenceServiceJsonSchema()` emits it as JSON Schema for the latter two.
import { z } from 'zod';
import { QUANTITY, parseQuantity } from './quantity.js';
import { DURATION } from './duration.js';

export const API_VERSION = 'tandem.dev/v1alpha1';
export const ENGINE_TYPES = ['llamacpp', 'vllm', 'sglang'] as const;
export const RESTART_POLICIES = ['RecreateGroupOnPodRestart', 'None'] as const;
export const STARTUP_POLICIES = ['LeaderCreated', 'LeaderReady', 'WorkersReady'] as const;
export const AUTOSCALING_POLICIES = ['ahead', 'reactive'] as const;
/** Members of one group: the largest multi-node groups run today are tens of nodes. */
const MAX_NODES = 256;
export const DEFAULT_STARTUP_TIMEOUT = '30m';
/** Set by Tandem on every member; a spec may not set them. */
/** llama.cpp model sources: files and the built-in model locally; a hub repo or a volume on a cluster. */
export const LLAMACPP_SOURCE =
  /^(file:\/\/.+\.gguf|tandem:\/\/tiny-llama|hf:\/\/[^/]+\/[^/]+|pvc:\/\/[^/]+\/.+\.gguf)$/;
export const CLUSTER_SOURCE = /^(hf|pvc):\/\//;
/** vLLM and SGLang model sources: a Hugging Face layout folder, the project's model, a hub repo, a volume. */
export const HF_SOURCE = /^(file:\/\/.+|tandem:\/\/tiny-llama|hf:\/\/[^/]+\/[^/]+|pvc:\/\/[^/]+\/.+)$/;
export const GROUP_ENV = ['LWS_LEADER_ADDRESS', 'LWS_GROUP_SIZE', 'LWS_WORKER_INDEX'] as const;

const count = (min: number, max: number) => {
  const error = `must be an integer from ${min} to ${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
};
const positive = (max: number) => {
  const error = `must be a number more than 0 and at most ${max.toLocaleString('en')}`;
  return z.number({ error }).gt(0, { error }).max(max, { error });
};
const text = (what: string) => z.string({ error: `must be ${what}` }).min(1, { error: `must be ${what}` });
// Kubernetes resource.Quantity, as users write it, up to `max` (in its base unit).
const quantity = (max: number, unit: string) =>
  z
    // Integers or strings, as Kubernetes takes quantities: 1.5 CPUs is "1500m" or "1.5".
    .union([z.int(), z.string()], { error: 'must be a quantity such as 2, "500m" or "16Gi"' })
    .refine((q) => typeof q === 'number' || QUANTITY.test(q), {
      error: 'must be a quantity such as 2, "500m" or "16Gi"',
      abort: true,
    })
    .refine(
      (q) => {
        const n = parseQuantity(q);
        return n > 0 && n <= max;
      },
      {
        error: `must be more than 0 and at most ${max.toLocaleString('en')} ${unit}`,
      },
    );
const duration = (fallback: string) =>
  z
    .string({ error: 'must be a duration such as "90s", "30m" or "1h30m"' })
    .regex(DURATION, { error: 'must be a duration such as "90s", "30m" or "1h30m"' })
    .default(fallback);
const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const env = z
  .record(
    z.string(),
    // What a Kubernetes API server takes for an untyped scalar: a string or an integer.
    z.union([z.string(), z.int()], { error: 'must be a string or an integer (quote other values: "true", "0.5")' }),
    {
      error: 'must be a map of variable names to values',
    },
  )
  .default({})
  .superRefine((vars, ctx) => {
    for (const name of Object.keys(vars)) {
      if (!envName.test(name))
        ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid environment variable name' });
      else if ((GROUP_ENV as readonly string[]).includes(name)) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: 'is set by Tandem for every group member and cannot be overridden',
        });
      }
    }
  })
  .transform((vars) => Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, String(v)])));

// Kubernetes objects Tandem passes through to pods as they are (the API server validates them).
const passthrough = z.record(z.string(), z.unknown(), { error: 'must be a map' });
const stringMap = z.record(z.string(), z.string(), { error: 'must be a map of strings' });
/** Merged over the pods Tandem renders for one role (Kubernetes only). */
const podOverride = z
  .object({
    metadata: z
      .object({
        annotations: stringMap.optional(),
        // Tandem's labels say which group a pod is in; the NetworkPolicies and the gateway trust them.
        labels: stringMap
          .refine((labels) => !Object.keys(labels).some((k) => k.startsWith('tandem.dev/')), {
            message:
              'tandem.dev/ labels are set by Tandem (they decide which pods reach a group) and cannot be set here',
          })
          .optional(),
      })
      .strict()
      .optional(),
    nodeSelector: stringMap.optional(),
    tolerations: z.array(passthrough).optional(),
    affinity: passthrough.optional(),
    volumes: z.array(passthrough).optional(),
    volumeMounts: z.array(passthrough).optional(),
    env: z.array(passthrough).optional(),
    serviceAccountName: z.string().min(1).optional(),
    schedulerName: z.string().min(1).optional(),
    priorityClassName: z.string().min(1).optional(),
    /** Extra resources such as rdma/hca_shared_devices_a: "1", as requests and limits. */
    resources: z.record(z.string(), z.union([z.int(), z.string()])).optional(),
  })
  .strict();

export const InferenceServiceSchema = z
  .object({
    apiVersion: z.literal(API_VERSION, { error: `must be "${API_VERSION}"` }),
    kind: z.literal('InferenceService', { error: 'must be "InferenceService"' }),
    metadata: z
      .object({
        name: z
          .string({ error: 'must be a name of lower-case letters, digits and "-" (at most 40)' })
          .regex(/^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$/, {
            error: 'must be a name of lower-case letters, digits and "-" (at most 40), starting with a letter',
          }),
        labels: z.record(z.string(), z.string()).optional(),
      })
      .strict(),
    spec: z
      .object({
        model: z
          .object({
            /** The name clients put in `model`. */
            servedName: text('a non-empty model name'),
            /** llama.cpp: file://PATH.gguf (relative paths from the spec's folder) or tandem://tiny-llama. */
            source: text('a model source such as file://models/m.gguf'),
            /**
             * generate (the default): completions and chat; embed: /v1/embeddings (llama.cpp
             * --embeddings with --pooling last unless the args say otherwise; vLLM --runner pooling;
             * SGLang --is-embedding).
             */
            task: z.enum(['generate', 'embed'], { error: 'must be generate or embed' }).optional(),
            /** On Kubernetes, the Secret key holding a hub token for hf:// sources (given to the engine as HF_TOKEN). */
            tokenSecret: z
              .object({ name: text('a Secret name'), key: text('a key of the Secret') })
              .strict()
              .optional(),
          })
          .strict(),
        engine: z
          .object({
            type: z.enum(ENGINE_TYPES, { error: `must be one of ${ENGINE_TYPES.join(', ')}` }),
            /** The container image on Kubernetes (a default per engine); the embedded default ignores it. */
            image: text('a container image such as ghcr.io/ggml-org/llama.cpp:full').optional(),
            /** vLLM only: how a multi-node group runs (mp: vLLM's own multi-node mode; ray: a Ray cluster per group). */
            distributedExecutorBackend: z.enum(['mp', 'ray'], { error: 'must be mp or ray' }).optional(),
            /** Extra engine arguments: the leader's command line (llamacpp), every member's (vllm, sglang). */
            args: z.array(z.string(), { error: 'must be a list of strings' }).default([]),
            /** Extra environment for the engine processes (every member). */
            env,
          })
          .strict(),
        parallelism: z
          .object({
            /** Group size: the leader and nodes − 1 workers; "auto": the planner sizes it to spec.resources.memory. */
            nodes: z
              .union([z.literal('auto'), count(1, MAX_NODES)], {
                error: `must be an integer from 1 to ${MAX_NODES}, or auto`,
              })
              .default(1),
            tensor: count(1, 1024).optional(),
            pipeline: count(1, MAX_NODES).optional(),
          })
          .strict()
          .default({ nodes: 1 }),
        replicas: count(0, 1000).default(1),
        restartPolicy: z
          .enum(RESTART_POLICIES, { error: `must be one of ${RESTART_POLICIES.join(', ')}` })
          .default('RecreateGroupOnPodRestart'),
        /**
         * Replicas follow the load (Ray Serve's autoscaling_config, named as there); with it, the
         * autoscaler owns spec.replicas.
         */
        autoscaling: z
          .object({
            minReplicas: count(0, 1000).default(1),
            maxReplicas: count(1, 1000),
            /** Replicas at start; default minReplicas. */
            initialReplicas: count(0, 1000).optional(),
            /** Ongoing and queued requests per replica to aim for; default the group's slots. */
            targetOngoingRequests: positive(10_000).optional(),
            /** Load above target this long before adding replicas (scale-ahead adds at once when waiting would let the queue build). */
            upscaleDelay: duration('30s'),
            /** Load below target this long before removing replicas. */
            downscaleDelay: duration('10m'),
            /** No request at all this long before the last replica goes (minReplicas 0); default downscaleDelay. */
            scaleToZeroAfter: z
              .string({ error: 'must be a duration such as "90s", "30m" or "1h30m"' })
              .regex(DURATION, { error: 'must be a duration such as "90s", "30m" or "1h30m"' })
              .optional(),
            /** How far one decision moves towards what the load asks for (1: all the way). */
            upscaleSmoothingFactor: positive(100).default(1),
            downscaleSmoothingFactor: positive(100).default(1),
            /** The load is averaged over this window. */
            lookBackPeriod: duration('30s'),
            /** ahead: also scale on the load expected once a new group would be ready; reactive: Ray Serve's policy. */
            policy: z
              .enum(AUTOSCALING_POLICIES, { error: `must be one of ${AUTOSCALING_POLICIES.join(', ')}` })
              .default('ahead'),
          })
          .strict()
          .optional(),
        /** When to start which member; defaults to the engine's need (llama.cpp: WorkersReady). */
        startupPolicy: z.enum(STARTUP_POLICIES, { error: `must be one of ${STARTUP_POLICIES.join(', ')}` }).optional(),
        /**
         * How long a member may take to become ready after it starts (loading a 405B model takes
         * minutes); past it the group has failed and is recreated with back-off.
         */
        startupTimeout: duration(DEFAULT_STARTUP_TIMEOUT),
        /** More than maxRestarts recreations of a group within window: the group is Failed until the spec changes. */
        failurePolicy: z
          .object({ maxRestarts: count(0, 1000).default(10), window: duration('1h') })
          .strict()
          .default({ maxRestarts: 10, window: '1h' }),
        /** How a new template replaces groups: at most maxUnavailable down, at most maxSurge extra. */
        rollout: z
          .object({ maxUnavailable: count(0, 1000).default(1), maxSurge: count(0, 1000).default(0) })
          .strict()
          .default({ maxUnavailable: 1, maxSurge: 0 }),
        scheduling: z
          .object({
            /** A member not placed on a node this long after its creation fails its group (all its pods go). */
            placementTimeout: duration('5m'),
            /** Place each group inside one domain of this node label (e.g. a rack or a NVLink domain). */
            topologyKey: z.string().min(1).optional(),
            /** Admit each group as one unit through this queue (a Kueue LocalQueue or a Volcano Queue). */
            queue: z.string().min(1).optional(),
            /** Which gang scheduler `queue` names a queue of: Kueue (pod-group labels) or Volcano (a PodGroup). */
            gangScheduler: z.enum(['kueue', 'volcano']).default('kueue'),
          })
          .strict()
          .default({ placementTimeout: '5m', gangScheduler: 'kueue' }),
        /** Per node, the same for the leader and every worker. */
        resources: z
          .object({
            cpu: quantity(1024, 'CPUs').optional(),
            memory: quantity(2 ** 50, 'bytes (1Pi)').optional(),
            gpu: count(0, 64).default(0),
          })
          .strict()
          .default({ gpu: 0 }),
        /** Environment for every member (e.g. NCCL_*). */
        env,
        /** Per-role pod overrides on Kubernetes: network annotations, tolerations, extra volumes, RDMA… */
        leaderTemplate: podOverride.optional(),
        workerTemplate: podOverride.optional(),
      })
      .strict(),
  })
  .strict()
  .superRefine((svc, ctx) => {
    const { engine, parallelism: p, model, resources } = svc.spec;
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if (svc.spec.rollout.maxUnavailable === 0 && svc.spec.rollout.maxSurge === 0) {
      issue(['spec', 'rollout'], 'maxUnavailable and maxSurge cannot both be 0: a rollout could never start');
    }
    const scaling = svc.spec.autoscaling;
    if (scaling) {
      if (scaling.minReplicas > scaling.maxReplicas)
        issue(['spec', 'autoscaling', 'minReplicas'], `must be at most maxReplicas (${scaling.maxReplicas})`);
      const initial = scaling.initialReplicas;
      if (initial !== undefined && (initial < scaling.minReplicas || initial > scaling.maxReplicas))
        issue(
          ['spec', 'autoscaling', 'initialReplicas'],
          `must be from minReplicas to maxReplicas (${scaling.minReplicas} to ${scaling.maxReplicas})`,
        );
    }
    if (p.nodes === 'auto') {
      if (resources.memory === undefined)
        issue(
          ['spec', 'resources', 'memory'],
          'is required when spec.parallelism.nodes is auto: the planner sizes the group to it',
        );
      if (engine.type !== 'llamacpp')
        issue(
          ['spec', 'parallelism', 'nodes'],
          'auto is planned for llamacpp on the embedded default; set nodes, tensor and pipeline for vllm and sglang',
        );
      return;
    }
    if (engine.distributedExecutorBackend !== undefined && engine.type !== 'vllm') {
      issue(['spec', 'engine', 'distributedExecutorBackend'], `is for vllm, not ${engine.type}`);
    }
    if (engine.type !== 'llamacpp' && svc.spec.startupPolicy === 'LeaderReady' && p.nodes > 1) {
      issue(
        ['spec', 'startupPolicy'],
        `cannot be LeaderReady for a multi-node ${engine.type} group: its leader is ready only once its workers have joined`,
      );
    }
    if (engine.type === 'llamacpp') {
      if (p.tensor !== undefined && p.tensor !== 1) {
        issue(
          ['spec', 'parallelism', 'tensor'],
          'must be 1 for llamacpp: llama.cpp splits a model across nodes by layers (pipeline), not tensors',
        );
      }
      if (p.pipeline !== undefined && p.pipeline !== p.nodes) {
        issue(
          ['spec', 'parallelism', 'pipeline'],
          `must equal spec.parallelism.nodes (${p.nodes}) for llamacpp: each node holds one stage`,
        );
      }
      if (!LLAMACPP_SOURCE.test(model.source)) {
        issue(
          ['spec', 'model', 'source'],
          'must be file://PATH.gguf, tandem://tiny-llama, hf://ORG/NAME or pvc://CLAIM/PATH.gguf for llamacpp',
        );
      }
      if (svc.spec.startupPolicy !== undefined && svc.spec.startupPolicy !== 'WorkersReady') {
        issue(
          ['spec', 'startupPolicy'],
          'must be WorkersReady for llamacpp: llama-server aborts unless every RPC worker accepts connections',
        );
      }
    } else {
      if (!HF_SOURCE.test(model.source)) {
        issue(
          ['spec', 'model', 'source'],
          `must be file://FOLDER (Hugging Face layout), tandem://tiny-llama, hf://ORG/NAME or pvc://CLAIM/PATH for ${engine.type}`,
        );
      }
      const gpus = p.nodes * Math.max(1, resources.gpu);
      const tp = p.tensor ?? Math.max(1, resources.gpu);
      const pp = p.pipeline ?? p.nodes;
      if (tp * pp !== gpus) {
        issue(
          ['spec', 'parallelism'],
          `tensor × pipeline (${tp} × ${pp}) must equal the group's GPUs (${p.nodes} nodes × ${Math.max(1, resources.gpu)})`,
        );
      }
    }
  });

export type InferenceServiceInput = z.input<typeof InferenceServiceSchema>;
export type InferenceService = z.output<typeof InferenceServiceSchema>;
export type EngineType = (typeof ENGINE_TYPES)[number];
export type StartupPolicy = (typeof STARTUP_POLICIES)[number];
export type RestartPolicy = (typeof RESTART_POLICIES)[number];
export type AutoscalingSpec = NonNullable<InferenceService['spec']['autoscaling']>;

export function inferenceServiceJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(InferenceServiceSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
