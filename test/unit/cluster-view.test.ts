// What the gateway serves on a cluster, from the InferenceServices' status and their leader pods.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as k8s from '@kubernetes/client-node';
import { clusterView } from '../../src/platforms/kubernetes/cluster-backends.js';
import { clusterRecord } from '../../src/platforms/kubernetes/cluster-control.js';
import {
  readInferenceService,
  type InferenceServiceObject,
} from '../../src/platforms/kubernetes/inference-services.js';
import { LABEL } from '../../src/platforms/kubernetes/objects.js';

const object = (name: string, phases: string[], spec: Record<string, unknown> = {}) => ({
  metadata: { name, uid: `uid-${name}`, generation: 1 },
  spec: {
    model: { servedName: `${name}-model`, source: 'hf://org/m' },
    engine: { type: 'vllm', args: ['--max-num-seqs', '64'] },
    parallelism: { nodes: 2 },
    replicas: phases.length,
    ...spec,
  },
  status: { groups: phases.map((phase, replica) => ({ replica, phase, restarts: replica, readyMembers: '2/2' })) },
});
const leader = (service: string, replica: number, ip: string | undefined, ready = true): k8s.V1Pod => ({
  metadata: { labels: { [LABEL.service]: service, [LABEL.replica]: String(replica), [LABEL.member]: '0' } },
  status: { ...(ip ? { podIP: ip } : {}), conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});
const templateOf = (o: InferenceServiceObject) => readInferenceService(o, 'ns').template;

test("a group is served at its leader pod's IP while its phase and its leader are both Ready", () => {
  const view = clusterView(
    [object('a', ['Ready', 'Ready', 'Recreating', 'Ready'])],
    [
      leader('a', 0, '127.244.0.5'),
      leader('a', 1, '127.244.0.6', false),
      leader('a', 2, '127.244.0.7'),
      leader('a', 3, undefined),
    ],
    templateOf,
  );
  assert.deepEqual(
    view.backends.map((b) => [b.id, b.url, b.ready]),
    [
      ['a/0', 'http://127.244.0.5:8080', true],
      ['a/1', 'http://127.244.0.6:8080', false],
      ['a/2', 'http://127.244.0.7:8080', false],
    ],
  );
  assert.deepEqual(view.models, [{ id: 'a-model', replicas: 4, readyReplicas: 1 }]);
  assert.equal(view.backends[0]!.slots, 256, "the engine's own --max-num-seqs, and three times as many waiting at it");
  assert.equal(view.backends[0]!.tokenIds, 'vllm');
  assert.equal(view.backends[0]!.accelerated, undefined, 'no GPUs in its spec: prefix routing as on CPUs');
  assert.equal(view.backends[0]!.exclusiveCache, undefined, 'vLLM shares cached blocks between requests');
  const onGpus = clusterView(
    [object('g', ['Ready'], { resources: { gpu: 8 } })],
    [leader('g', 0, '127.244.0.8')],
    templateOf,
  );
  assert.equal(onGpus.backends[0]!.accelerated, true, 'spec.resources.gpu: its engine batches its slots');
  assert.deepEqual(
    view.groups.map((g) => [g.replica, g.phase, g.restarts]),
    [
      [0, 'Ready', 0],
      [1, 'Ready', 1],
      [2, 'Recreating', 2],
      [3, 'Ready', 3],
    ],
  );
});

test('an object whose spec is invalid serves nothing (the operator says why in its status)', () => {
  assert.match(readInferenceService(object('bad', ['Ready'], { replicas: -1 }), 'ns').problem!, /replicas/);
  const view = clusterView([object('bad', ['Ready'], { replicas: -1 })], [leader('bad', 0, '127.244.0.9')], templateOf);
  assert.deepEqual(view, { backends: [], models: [], groups: [] });
});

test('an IPv6 pod address is bracketed in the URL', () => {
  const view = clusterView([object('v6', ['Ready'])], [leader('v6', 0, 'fd00::5')], templateOf);
  assert.equal(view.backends[0]!.url, 'http://[fd00::5]:8080');
});

test('an autoscaled object at zero is a model that holds its requests, expected ready after its measured start time', () => {
  const scaled = {
    ...object('z', [], { autoscaling: { minReplicas: 0, maxReplicas: 2 } }),
    status: { groups: [], startupSeconds: 95.5 },
  };
  const view = clusterView([scaled], [], templateOf);
  assert.deepEqual(view.models, [
    { id: 'z-model', replicas: 0, readyReplicas: 0, startupMs: 95_500, autoscaled: true },
  ]);
});

test('while a group is replaced, its leader is the live pod, not one that exited or is being deleted', () => {
  // A rollout or a recreation: for a moment the old leader (exited, or terminating) and the new one
  // (Ready) are both listed, in any order.
  const old = leader('a', 0, '10.244.0.5', false);
  const going: k8s.V1Pod = { ...old, metadata: { ...old.metadata, deletionTimestamp: new Date() } };
  const exited: k8s.V1Pod = { ...old, status: { ...old.status, phase: 'Failed' } };
  const live = leader('a', 0, '10.244.0.9');
  for (const leaders of [
    [live, going, exited],
    [going, exited, live],
    [exited, live, going],
  ]) {
    const view = clusterView([object('a', ['Ready'])], leaders, templateOf);
    assert.deepEqual(
      view.backends.map((b) => [b.url, b.ready]),
      [['http://10.244.0.9:8080', true]],
    );
    assert.equal(view.models[0]!.readyReplicas, 1);
  }
});

test("the control API's record of an object: its groups from the status, each member from its pod (the replacement first while the old one terminates)", () => {
  const pod = (replica: number, member: number, extra: Partial<k8s.V1Pod> = {}, ready = true): k8s.V1Pod => ({
    metadata: {
      labels: {
        [LABEL.service]: 'a',
        [LABEL.replica]: String(replica),
        [LABEL.member]: String(member),
        [LABEL.templateHash]: 'h1',
      },
      ...extra.metadata,
    },
    status: {
      phase: 'Running',
      podIP: `127.244.${replica}.${member}`,
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      ...extra.status,
    },
  });
  const o = object('a', ['Ready', 'Recreating']);
  const record = clusterRecord(o, templateOf(o), [
    pod(0, 1),
    pod(0, 0),
    pod(1, 0, { metadata: { deletionTimestamp: new Date() } }),
    pod(1, 0, {}, false),
    pod(1, 1, { status: { phase: 'Failed' } }),
  ]);
  assert.equal(record.status?.servedName, 'a-model');
  assert.deepEqual(
    record.status?.groups.map((g) => [
      g.replica,
      g.phase,
      g.restarts,
      g.templateHash,
      g.members.map((m) => `${m.role} ${m.address} ${m.state}`),
    ]),
    [
      [0, 'Ready', 0, 'h1', ['leader 127.244.0.0:8080 Ready', 'worker 127.244.0.1:50052 Ready']],
      [1, 'Recreating', 1, 'h1', ['leader 127.244.1.0:8080 Starting', 'worker 127.244.1.1:50052 Exited']],
    ],
  );
  const invalid = clusterRecord({ ...o, spec: { replicas: -1 } }, undefined, []);
  assert.deepEqual([invalid.name, invalid.status], ['a', undefined]);
});
