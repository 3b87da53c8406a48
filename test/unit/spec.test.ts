/* eslint-disable @typescript-eslint/no-explicit-any -- mutating specs field by field is what these tests do */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpecError, loadServices, validateDocument } from '../../src/spec/load.js';
import { inferenceServiceJsonSchema } from '../../src/spec/schema.js';
import { tinySpec } from '../helpers.js';

const valid = () => structuredClone(tinySpec('svc', { parallelism: { nodes: 2 } })) as Record<string, any>;

test('a valid spec gets its defaults', () => {
  const { service, problems } = validateDocument(valid());
  assert.deepEqual(problems, []);
  assert.equal(service!.spec.replicas, 1);
  assert.equal(service!.spec.restartPolicy, 'RecreateGroupOnPodRestart');
  assert.deepEqual(service!.spec.engine.args, []);
  assert.equal(service!.spec.resources.gpu, 0);
});

// Each case: a change to a valid spec and the exact problem it must produce.
const INVALID: [string, (d: Record<string, any>) => void, string][] = [
  ['nodes zero', (d) => (d.spec.parallelism.nodes = 0), 'spec.parallelism.nodes: must be an integer from 1 to 256'],
  [
    'nodes fractional',
    (d) => (d.spec.parallelism.nodes = 1.5),
    'spec.parallelism.nodes: must be an integer from 1 to 256, or auto',
  ],
  [
    'nodes a string',
    (d) => (d.spec.parallelism.nodes = 'two'),
    'spec.parallelism.nodes: must be an integer from 1 to 256, or auto',
  ],
  ['replicas negative', (d) => (d.spec.replicas = -1), 'spec.replicas: must be an integer from 0 to 1000'],
  ['replicas huge', (d) => (d.spec.replicas = 1e300), 'spec.replicas: must be an integer from 0 to 1000'],
  [
    'cpu in thousands',
    (d) => (d.spec.resources.cpu = '2k'),
    'spec.resources.cpu: must be more than 0 and at most 1,024 CPUs',
  ],
  ['cpu zero', (d) => (d.spec.resources.cpu = 0), 'spec.resources.cpu: must be more than 0 and at most 1,024 CPUs'],
  [
    'memory negative',
    (d) => (d.spec.resources.memory = -5),
    'spec.resources.memory: must be more than 0 and at most 1,125,899,906,842,624 bytes (1Pi)',
  ],
  [
    'startupTimeout not a duration',
    (d) => (d.spec.startupTimeout = '30'),
    'spec.startupTimeout: must be a duration such as "90s", "30m" or "1h30m"',
  ],
  ['wrong apiVersion', (d) => (d.apiVersion = 'v1'), 'apiVersion: must be "tandem.dev/v1alpha1"'],
  ['wrong kind', (d) => (d.kind = 'Deployment'), 'kind: must be "InferenceService"'],
  [
    'bad name',
    (d) => (d.metadata.name = 'My_Service'),
    'metadata.name: must be a name of lower-case letters, digits and "-" (at most 40), starting with a letter',
  ],
  ['missing servedName', (d) => delete d.spec.model.servedName, 'spec.model.servedName: required'],
  ['missing model', (d) => delete d.spec.model, 'spec.model: required'],
  ['unknown engine', (d) => (d.spec.engine.type = 'tgi'), 'spec.engine.type: must be one of llamacpp, vllm, sglang'],
  ['unknown field', (d) => (d.spec.gpus = 8), 'spec.gpus: unknown field'],
  [
    'misspelt nested field',
    (d) => (d.spec.parallelism.tensorParallel = 2),
    'spec.parallelism.tensorParallel: unknown field',
  ],
  [
    'bad restartPolicy',
    (d) => (d.spec.restartPolicy = 'Always'),
    'spec.restartPolicy: must be one of RecreateGroupOnPodRestart, None',
  ],
  [
    'bad startupPolicy',
    (d) => (d.spec.startupPolicy = 'Whenever'),
    'spec.startupPolicy: must be one of LeaderCreated, LeaderReady, WorkersReady',
  ],
  [
    'bad cpu quantity',
    (d) => (d.spec.resources.cpu = 'lots'),
    'spec.resources.cpu: must be a quantity such as 2, "500m" or "16Gi"',
  ],
  [
    'bad env name',
    (d) => (d.spec.env = { 'NCCL-DEBUG': 'INFO' }),
    'spec.env.NCCL-DEBUG: is not a valid environment variable name',
  ],
  [
    'reserved env',
    (d) => (d.spec.env = { LWS_GROUP_SIZE: '9' }),
    'spec.env.LWS_GROUP_SIZE: is set by Tandem for every group member and cannot be overridden',
  ],
  ['args not strings', (d) => (d.spec.engine.args = '--ctx-size 4096'), 'spec.engine.args: must be a list of strings'],
  [
    'llamacpp tensor parallel',
    (d) => (d.spec.parallelism.tensor = 2),
    'spec.parallelism.tensor: must be 1 for llamacpp: llama.cpp splits a model across nodes by layers (pipeline), not tensors',
  ],
  [
    'llamacpp pipeline ≠ nodes',
    (d) => (d.spec.parallelism.pipeline = 3),
    'spec.parallelism.pipeline: must equal spec.parallelism.nodes (2) for llamacpp: each node holds one stage',
  ],
  [
    'llamacpp hub model',
    (d) => (d.spec.model.source = 'meta-llama/Llama-3.1-8B'),
    'spec.model.source: must be file://PATH.gguf, tandem://tiny-llama, hf://ORG/NAME or pvc://CLAIM/PATH.gguf for llamacpp',
  ],
  [
    'llamacpp leader first',
    (d) => (d.spec.startupPolicy = 'LeaderReady'),
    'spec.startupPolicy: must be WorkersReady for llamacpp: llama-server aborts unless every RPC worker accepts connections',
  ],
  [
    'vllm layout ≠ GPUs',
    (d) => {
      d.spec.engine.type = 'vllm';
      d.spec.model.source = 'hf://meta-llama/Llama-3.1-405B';
      d.spec.resources = { gpu: 8 };
      d.spec.parallelism = { nodes: 2, tensor: 8, pipeline: 1 };
    },
    "spec.parallelism: tensor × pipeline (8 × 1) must equal the group's GPUs (2 nodes × 8)",
  ],
];

for (const [name, mutate, expected] of INVALID) {
  test(`invalid spec: ${name}`, () => {
    const doc = valid();
    mutate(doc);
    const { service, problems } = validateDocument(doc);
    assert.equal(service, undefined);
    assert.deepEqual(problems, [expected]);
  });
}

test('every problem is reported at once', () => {
  const doc = valid();
  doc.spec.parallelism.nodes = 0;
  doc.spec.replicas = 'many';
  doc.metadata.name = '';
  doc.spec.extra = true;
  const { problems } = validateDocument(doc);
  assert.equal(problems.length, 4, problems.join('\n'));
});

test('files: every document is checked; missing model files and duplicate names are problems', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-spec-'));
  const yaml = (name: string, served: string, source: string) =>
    `apiVersion: tandem.dev/v1alpha1\nkind: InferenceService\nmetadata: {name: ${name}}\nspec:\n  model: {servedName: ${served}, source: "${source}"}\n  engine: {type: llamacpp}\n`;
  writeFileSync(
    join(dir, 'a.yaml'),
    `${yaml('a', 'm', 'tandem://tiny-llama')}---\n${yaml('a', 'm', 'file://missing.gguf')}`,
  );
  writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: [unclosed\n');
  assert.throws(
    () => loadServices([join(dir, 'a.yaml'), join(dir, 'bad.yaml'), join(dir, 'none.yaml')]),
    (err: unknown) => {
      assert.ok(err instanceof SpecError);
      const text = err.problems.join('\n');
      assert.match(text, /a\.yaml\[1\]: spec\.model\.source: file not found: .*missing\.gguf/);
      assert.match(text, /metadata\.name: "a" is also used/);
      assert.match(text, /spec\.model\.servedName: "m" is also served/);
      assert.match(text, /bad\.yaml: invalid YAML/);
      assert.match(text, /none\.yaml: cannot read \(ENOENT\)/);
      return true;
    },
  );
  writeFileSync(join(dir, 'model.gguf'), '');
  const [loaded] = loadServices(
    [join(dir, 'ok.yaml')].map((f) => (writeFileSync(f, yaml('ok', 'ok', 'file://model.gguf')), f)),
  );
  assert.equal(loaded!.modelPath, join(dir, 'model.gguf'), 'relative paths resolve from the spec file');
});

test('the schema is emitted as JSON Schema (for the control API; the CRD is made from it)', () => {
  const schema = inferenceServiceJsonSchema() as any;
  assert.equal(schema.type, 'object');
  assert.deepEqual(schema.properties.spec.properties.engine.properties.type.enum, ['llamacpp', 'vllm', 'sglang']);
  const nodes = schema.properties.spec.properties.parallelism.properties.nodes.anyOf;
  assert.deepEqual(nodes[0], { type: 'string', const: 'auto' });
  assert.equal(nodes[1].minimum, 1);
});

test('parallelism.nodes auto needs spec.resources.memory, and is for llamacpp', () => {
  const doc = valid();
  doc.spec.parallelism = { nodes: 'auto' };
  assert.deepEqual(validateDocument(doc).problems, [
    'spec.resources.memory: is required when spec.parallelism.nodes is auto: the planner sizes the group to it',
  ]);
  doc.spec.resources.memory = '64Mi';
  assert.deepEqual(validateDocument(doc).problems, []);
  doc.spec.parallelism = { nodes: 'automatic' };
  assert.deepEqual(validateDocument(doc).problems, [
    'spec.parallelism.nodes: must be an integer from 1 to 256, or auto',
  ]);
});

test('a YAML alias without its anchor is a listed problem, not a crash (found by the fuzzer, seed 7)', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'tandem-spec-')), 'alias.yaml');
  writeFileSync(file, 'apiVersion: *missing\nkind: InferenceService\n');
  assert.throws(
    () => loadServices([file]),
    (err: unknown) => err instanceof SpecError && /invalid YAML: Unresolved alias/.test(err.problems.join('\n')),
  );
});
