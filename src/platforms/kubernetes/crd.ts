// The InferenceService CustomResourceDefinition, built from the one zod schema: its JSON Schema
// made structural (what the API server accepts), with the cross-field rules of the schema's
// superRefine restated in CEL, so `tandem validate` and the API server give the same verdicts.
import { API_VERSION, GROUP_ENV, inferenceServiceJsonSchema } from '../../spec/schema.js';

export const GROUP = API_VERSION.split('/')[0]!;
export const VERSION = API_VERSION.split('/')[1]!;
export const PLURAL = 'inferenceservices';
export const SHORT_NAME = 'tisvc'; // KServe has `isvc`

type Schema = Record<string, unknown>;
const rule = (rule: string, message: string, fieldPath?: string) => ({
  rule,
  message,
  ...(fieldPath ? { fieldPath } : {}),
});

const env: Schema = {
  type: 'object',
  default: {},
  additionalProperties: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
  'x-kubernetes-validations': [
    rule("self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))", 'names must be valid environment variable names'),
    rule(
      `!self.exists(k, k in [${GROUP_ENV.map((n) => `'${n}'`).join(', ')}])`,
      `${GROUP_ENV.join(', ')} are set by Tandem for every group member and cannot be overridden`,
    ),
  ],
};
const nodesSchema: Schema = {
  default: 1,
  'x-kubernetes-int-or-string': true,
  anyOf: [{ type: 'integer' }, { type: 'string' }],
  'x-kubernetes-validations': [
    rule(
      "type(self) == int ? (self >= 1 && self <= 256) : self == 'auto'",
      'must be an integer from 1 to 256, or auto',
    ),
  ],
};
// Kubernetes quantities are integers or strings (as in a Pod's resources).
const quantity = (max: string, message: string): Schema => ({
  'x-kubernetes-int-or-string': true,
  anyOf: [{ type: 'integer' }, { type: 'string' }],
  'x-kubernetes-validations': [
    rule(
      `type(self) == string ? (isQuantity(self) && self.matches('^[0-9]+([.][0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$') && quantity(self).isGreaterThan(quantity('0')) && quantity(self).compareTo(quantity('${max}')) <= 0) : (self > 0 && self <= ${max === '1Pi' ? 2 ** 50 : Number(max)})`,
      message,
    ),
  ],
});

/** Where the zod JSON Schema cannot be made structural by rule: these paths are replaced. */
const REPLACED: Record<string, Schema> = {
  'spec.parallelism.nodes': nodesSchema,
  'spec.env': env,
  'spec.engine.env': env,
  'spec.resources.cpu': quantity('1024', 'must be a quantity such as 2 or "500m", more than 0 and at most 1024'),
  'spec.resources.memory': quantity('1Pi', 'must be a quantity such as "16Gi", more than 0 and at most 1Pi'),
};

const groupNodes = '(has(self.parallelism.nodes) && type(self.parallelism.nodes) == int ? self.parallelism.nodes : 1)';
const auto = "(has(self.parallelism.nodes) && string(self.parallelism.nodes) == 'auto')";
const gpus = '(self.resources.gpu > 0 ? self.resources.gpu : 1)';
/** The superRefine rules of spec/schema.ts, in the same words. */
const SPEC_RULES = [
  rule(
    "!has(self.engine.distributedExecutorBackend) || self.engine.type == 'vllm'",
    'engine.distributedExecutorBackend is for vllm only',
  ),
  rule(
    `self.engine.type == 'llamacpp' || !has(self.startupPolicy) || self.startupPolicy != 'LeaderReady' || ${auto} || ${groupNodes} == 1`,
    'startupPolicy cannot be LeaderReady for a multi-node vllm or sglang group: its leader is ready only once its workers have joined',
  ),
  rule(
    '!(self.rollout.maxUnavailable == 0 && self.rollout.maxSurge == 0)',
    'rollout: maxUnavailable and maxSurge cannot both be 0: a rollout could never start',
  ),
  rule(
    '!has(self.autoscaling) || !has(self.autoscaling.minReplicas) || self.autoscaling.minReplicas <= self.autoscaling.maxReplicas',
    'autoscaling.minReplicas must be at most maxReplicas',
  ),
  rule(
    '!has(self.autoscaling) || !has(self.autoscaling.initialReplicas) || (self.autoscaling.initialReplicas >= (has(self.autoscaling.minReplicas) ? self.autoscaling.minReplicas : 1) && self.autoscaling.initialReplicas <= self.autoscaling.maxReplicas)',
    'autoscaling.initialReplicas must be from minReplicas to maxReplicas',
  ),
  rule(
    `!${auto} || has(self.resources.memory)`,
    'resources.memory is required when parallelism.nodes is auto: the planner sizes the group to it',
  ),
  rule(
    `!${auto} || self.engine.type == 'llamacpp'`,
    'parallelism.nodes: auto is planned for llamacpp; set nodes, tensor and pipeline for vllm and sglang',
  ),
  rule(
    "self.engine.type != 'llamacpp' || !has(self.parallelism.tensor) || self.parallelism.tensor == 1",
    'parallelism.tensor must be 1 for llamacpp: llama.cpp splits a model across nodes by layers (pipeline), not tensors',
  ),
  rule(
    `self.engine.type != 'llamacpp' || ${auto} || !has(self.parallelism.pipeline) || self.parallelism.pipeline == ${groupNodes}`,
    'parallelism.pipeline must equal parallelism.nodes for llamacpp: each node holds one stage',
  ),
  rule(
    "self.engine.type != 'llamacpp' || self.model.source.matches('^(file://.+[.]gguf|tandem://tiny-llama|hf://[^/]+/[^/]+|pvc://[^/]+/.+[.]gguf)$')",
    'model.source must be file://PATH.gguf, tandem://tiny-llama, hf://ORG/NAME or pvc://CLAIM/PATH.gguf for llamacpp',
  ),
  rule(
    "self.engine.type == 'llamacpp' || self.model.source.matches('^(file://.+|tandem://tiny-llama|hf://[^/]+/[^/]+|pvc://[^/]+/.+)$')",
    'model.source must be file://FOLDER, tandem://tiny-llama, hf://ORG/NAME or pvc://CLAIM/PATH for vllm and sglang',
  ),
  rule(
    "self.engine.type != 'llamacpp' || !has(self.startupPolicy) || self.startupPolicy == 'WorkersReady'",
    'startupPolicy must be WorkersReady for llamacpp: llama-server aborts unless every RPC worker accepts connections',
  ),
  rule(
    `self.engine.type == 'llamacpp' || ${auto} || (has(self.parallelism.tensor) ? self.parallelism.tensor : ${gpus}) * (has(self.parallelism.pipeline) ? self.parallelism.pipeline : ${groupNodes}) == ${groupNodes} * ${gpus}`,
    "parallelism: tensor × pipeline must equal the group's GPUs (nodes × resources.gpu)",
  ),
];

function structural(node: unknown, path: string): unknown {
  if (REPLACED[path]) return REPLACED[path];
  if (Array.isArray(node)) return node.map((n) => structural(n, path));
  if (typeof node !== 'object' || node === null) return node;
  const anyOf = (node as Schema).anyOf as Schema[] | undefined;
  if (anyOf?.length === 2 && anyOf.every((b) => b.type === 'integer' || b.type === 'string')) {
    return { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] };
  }
  const out: Schema = {};
  for (const [key, value] of Object.entries(node as Schema)) {
    if (key === '$schema' || key === 'propertyNames') continue;
    // JSON Schema 2020's numeric bounds, as OpenAPI v3.0 writes them (a bound and a boolean).
    if ((key === 'exclusiveMinimum' || key === 'exclusiveMaximum') && typeof value === 'number') {
      out[key === 'exclusiveMinimum' ? 'minimum' : 'maximum'] = value;
      out[key] = true;
    } else if (key === 'const') out.enum = [value];
    // Beside `properties` it is implied: the API server rejects unknown fields under strict field validation.
    else if (key === 'additionalProperties' && value === false) continue;
    // A map of anything (pod fields Tandem passes through): the API server checks them on the pod.
    else if (key === 'additionalProperties' && Object.keys(value as Schema).length === 0) {
      out['x-kubernetes-preserve-unknown-fields'] = true;
    } else if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Schema).map(([name, s]) => [name, structural(s, path ? `${path}.${name}` : name)]),
      );
    } else out[key] = structural(value, path);
  }
  return out;
}

/** The InferenceService's CRD: structural schema, status and scale subresources, printer columns. */
export function inferenceServiceCrd(): Schema {
  const json = inferenceServiceJsonSchema() as { properties: { spec: Schema } };
  const spec = structural(json.properties.spec, 'spec') as Schema;
  spec['x-kubernetes-validations'] = SPEC_RULES;
  const status: Schema = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        plural: PLURAL,
        singular: 'inferenceservice',
        kind: 'InferenceService',
        listKind: 'InferenceServiceList',
        shortNames: [SHORT_NAME],
        categories: ['tandem'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              required: ['spec'],
              properties: { spec, status },
              'x-kubernetes-validations': [
                rule(
                  "self.metadata.name.matches('^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$')",
                  'metadata.name must be lower-case letters, digits and "-" (at most 40), starting with a letter',
                ),
              ],
            },
          },
          subresources: {
            status: {},
            scale: {
              specReplicasPath: '.spec.replicas',
              statusReplicasPath: '.status.replicas',
              labelSelectorPath: '.status.selector',
            },
          },
          additionalPrinterColumns: [
            { name: 'Ready', type: 'string', jsonPath: '.status.readyGroups', description: 'Ready groups / replicas' },
            { name: 'Nodes', type: 'integer', jsonPath: '.status.nodesPerGroup', description: 'Members per group' },
            { name: 'Engine', type: 'string', jsonPath: '.spec.engine.type' },
            { name: 'Model', type: 'string', jsonPath: '.spec.model.servedName' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
        },
      ],
    },
  };
}
