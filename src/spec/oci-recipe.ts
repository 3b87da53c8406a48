// `tandem import`: an OCI AI Blueprints multi-node recipe (recipe_mode "raycluster": a uniform
// head and workers on one node shape, vLLM over Ray, the model in object storage mounted into the
// containers) as an InferenceService. The recipe's own rules are checked, each error naming its field.
import { z } from 'zod';
import { API_VERSION, type InferenceServiceInput } from './schema.js';
import { SpecError } from './load.js';

const positive = z.number({ error: 'must be a number' }).positive({ error: 'must be more than 0' });
const RecipeSchema = z.object({
  recipe_mode: z.literal('raycluster', { error: 'must be "raycluster" (the multi-node recipe mode)' }),
  deployment_name: z.string({ error: 'is required' }).min(1, { error: 'is required' }),
  recipe_node_shape: z.string({ error: 'is required' }).min(1, { error: 'is required' }),
  recipe_image_uri: z.string().min(1).optional(),
  recipe_container_port: z.union([z.string(), z.number()], { error: 'is required' }),
  recipe_node_pool_size: z
    .int({ error: 'must be an integer' })
    .min(2, { error: 'must be at least 2 (a head and a worker)' }),
  recipe_nvidia_gpu_count: z
    .int({ error: 'must be an integer' })
    .min(1, { error: 'must be at least 1: the shape must have GPUs' }),
  input_object_storage: z
    .array(
      z.object({
        mount_location: z.string({ error: 'is required' }).startsWith('/', { error: 'must be an absolute path' }),
      }),
      { error: 'must be a list of buckets with their mount_location' },
    )
    .or(z.object({ mount_location: z.string().startsWith('/') }).transform((o) => [o]))
    .pipe(z.array(z.object({ mount_location: z.string() })).min(1, { error: 'must name at least one bucket' })),
  recipe_raycluster_params: z.object(
    {
      model_path_in_container: z
        .string({ error: 'is required' })
        .startsWith('/', { error: 'must be an absolute path' }),
      head_node_num_cpus: positive,
      head_node_num_gpus: z.int({ error: 'must be an integer' }),
      head_node_cpu_mem_in_gbs: positive,
      num_worker_nodes: z.int({ error: 'must be an integer' }),
      worker_node_num_cpus: positive,
      worker_node_num_gpus: z.int({ error: 'must be an integer' }),
      worker_node_cpu_mem_in_gbs: positive,
    },
    { error: 'is required' },
  ),
});

export type OciRecipe = z.input<typeof RecipeSchema>;

/** The InferenceService for a recipe, and notes on what the recipe had that Tandem does otherwise. */
export function importOciRecipe(recipe: unknown): { service: InferenceServiceInput; notes: string[] } {
  const parsed = RecipeSchema.safeParse(recipe);
  if (!parsed.success) {
    throw new SpecError(parsed.error.issues.map((i) => `${i.path.join('.') || 'recipe'}: ${i.message}`));
  }
  const r = parsed.data;
  const p = r.recipe_raycluster_params;
  const problems: string[] = [];
  // Uniform head and workers (the recipe's own requirement).
  for (const [head, worker] of [
    ['head_node_num_cpus', 'worker_node_num_cpus'],
    ['head_node_num_gpus', 'worker_node_num_gpus'],
    ['head_node_cpu_mem_in_gbs', 'worker_node_cpu_mem_in_gbs'],
  ] as const) {
    if (p[head] !== p[worker]) {
      problems.push(
        `recipe_raycluster_params.${worker}: ${p[worker]} must equal ${head} (${p[head]}): the head and workers are uniform`,
      );
    }
  }
  if (p.num_worker_nodes !== r.recipe_node_pool_size - 1) {
    problems.push(
      `recipe_raycluster_params.num_worker_nodes: ${p.num_worker_nodes} must be recipe_node_pool_size − 1 (${r.recipe_node_pool_size - 1})`,
    );
  }
  if (p.head_node_num_gpus !== r.recipe_nvidia_gpu_count) {
    problems.push(
      `recipe_raycluster_params.head_node_num_gpus: ${p.head_node_num_gpus} must equal recipe_nvidia_gpu_count (${r.recipe_nvidia_gpu_count}), the GPUs of ${r.recipe_node_shape}`,
    );
  }
  const mount = r.input_object_storage.find((b) =>
    p.model_path_in_container.startsWith(`${b.mount_location.replace(/\/$/, '')}/`),
  );
  if (!mount) {
    problems.push(
      `recipe_raycluster_params.model_path_in_container: ${p.model_path_in_container} is not under any input_object_storage mount_location (${r.input_object_storage.map((b) => b.mount_location).join(', ')})`,
    );
  }
  if (problems.length > 0) throw new SpecError(problems);

  const name = r.deployment_name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  const claim = `${name}-models`;
  const modelPath = p.model_path_in_container.slice(mount!.mount_location.replace(/\/$/, '').length + 1);
  const onShape = { nodeSelector: { 'node.kubernetes.io/instance-type': r.recipe_node_shape } };
  const service: InferenceServiceInput = {
    apiVersion: API_VERSION,
    kind: 'InferenceService',
    metadata: { name },
    spec: {
      model: { servedName: modelPath.split('/').pop()!, source: `pvc://${claim}/${modelPath}` },
      engine: {
        type: 'vllm',
        distributedExecutorBackend: 'ray',
        ...(r.recipe_image_uri ? { image: r.recipe_image_uri } : {}),
      },
      parallelism: { nodes: r.recipe_node_pool_size },
      resources: {
        cpu: p.head_node_num_cpus,
        memory: `${p.head_node_cpu_mem_in_gbs}G`,
        gpu: r.recipe_nvidia_gpu_count,
      },
      leaderTemplate: onShape,
      workerTemplate: onShape,
    },
  };
  return {
    service,
    notes: [
      `the model's bucket (mounted at ${mount!.mount_location}) is read from the PersistentVolumeClaim ${claim}: create it from the bucket (Tandem does not download from object storage)`,
      `the API is served on port 8080 behind Tandem's gateway, not on recipe_container_port ${r.recipe_container_port}`,
    ],
  };
}
