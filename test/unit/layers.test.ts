import { test } from 'node:test';
import assert from 'node:assert/strict';
import { offloadArgs, splitLayers } from '../../src/planner/llamacpp.js';
import { llamaCppServiceTemplate } from '../../src/engine/llamacpp/service.js';
import { threadsFor } from '../../src/engine/template.js';
import { findModel } from '../../src/planner/catalog.js';
import { plan } from '../../src/planner/plan.js';
import { validateDocument } from '../../src/spec/load.js';
import { tinySpec } from '../helpers.js';

const BINARIES = { commit: 'c', llamaServer: '/bin/llama-server', rpcServer: '/bin/ggml-rpc-server' };

test('layers are shared out evenly, the first nodes taking the remainder', () => {
  assert.deepEqual(splitLayers(12, 1), [12]);
  assert.deepEqual(splitLayers(12, 3), [4, 4, 4]);
  assert.deepEqual(splitLayers(13, 3), [5, 4, 4]);
  assert.deepEqual(splitLayers(12, 12), Array(12).fill(1));
});

test('a split that cannot work says why', () => {
  assert.throws(() => splitLayers(12, 13), /cannot split 12 layers over 13 nodes/);
  assert.throws(() => splitLayers(12, 0), /nodes must be an integer ≥ 1/);
});

test('offload flags: the leader keeps its share, the last worker also takes the output layer', () => {
  assert.deepEqual(offloadArgs([12]), ['--n-gpu-layers', '0']);
  assert.deepEqual(offloadArgs([6, 6]), ['--n-gpu-layers', '7', '--tensor-split', '7']);
  assert.deepEqual(offloadArgs([5, 4, 4]), ['--n-gpu-layers', '9', '--tensor-split', '4,5']);
});

test('cpu quantities become whole threads', () => {
  assert.equal(threadsFor(undefined), undefined);
  assert.equal(threadsFor(2), 2);
  assert.equal(threadsFor('500m'), 1);
  assert.equal(threadsFor('1.5'), 2);
  assert.equal(threadsFor('1k'), 1000, 'every quantity suffix, through the one parser');
});

test('tandem plan prints the llama.cpp flags the engine runs', () => {
  const layers = 12; // the project's model
  for (const nodes of [1, 2, 3]) {
    const service = validateDocument(tinySpec('s', { parallelism: { nodes } })).service!;
    const template = llamaCppServiceTemplate(service, { path: '/m.gguf', layers }, BINARIES, nodes);
    const endpoints = Array.from({ length: nodes }, (_, i) => ({ host: `127.0.0.${i + 1}`, port: 1000 }));
    const leaderArgs = template.render({ service: 's', replica: 0 }, endpoints).members[0]!.args;
    const planned = plan({
      model: { arch: { ...findModel('Llama-3.2-1B')!, layers } },
      gpu: { name: 'node', memoryGiB: 64, bandwidthGBs: 1 },
      gpusPerNode: 1,
      maxNodes: nodes,
      engine: 'llamacpp',
      dtype: 'bf16',
      kvDtype: 'fp16',
      memoryUtilization: 1,
      maxModelLen: 512,
    }).layouts.find((l) => l.nodes === nodes)!;
    const flags = planned.flags.args.slice(0, planned.flags.args.indexOf('--ctx-size'));
    const at = leaderArgs.indexOf('--n-gpu-layers');
    assert.deepEqual(leaderArgs.slice(at, at + flags.length), flags, `${nodes} node(s)`);
  }
});

test('spec.model.task embed: llama-server serves embeddings of the last token, unless the args pool otherwise', () => {
  const service = validateDocument(
    tinySpec('s', {
      model: { servedName: 'e', source: 'tandem://tiny-llama', task: 'embed' },
      engine: { type: 'llamacpp', args: ['--pooling', 'mean'] },
    }),
  ).service!;
  const args = llamaCppServiceTemplate(service, { path: '/m.gguf', layers: 12 }, BINARIES, 1)
    .render({ service: 's', replica: 0 }, [{ host: '127.0.0.1', port: 1000 }])
    .members[0]!.args.join(' ');
  assert.match(
    args,
    /--embeddings --pooling last .*--pooling mean$/,
    'the last --pooling is the one llama-server keeps',
  );
});
