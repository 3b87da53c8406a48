// The test control plane is a real one: upstream CRDs validate, the scheduler places pods on
// KWOK's fake GPU nodes, the garbage collector removes what a deleted owner leaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { K8S_SOURCE } from './binaries.js';
import {
  apiClient,
  FAKE_NODES,
  kubeConfig,
  GPU_RESOURCE,
  GPUS_PER_NODE,
  TOPOLOGY_LABEL,
  BENCH_NODE_LABEL,
} from './cluster.js';
import { until, useTestCluster } from './harness.js';

let kubeconfig: string;
const ns = `tandem-test-${process.pid}`;
useTestCluster(ns, (k) => {
  kubeconfig = k;
});

const fixture = (name: string) =>
  k8s.loadYaml<k8s.KubernetesObject>(readFileSync(join(K8S_SOURCE, 'fixtures', name), 'utf8'));

test('fake nodes carry GPU capacity and a topology label, and are Ready', async () => {
  const nodes = (
    await apiClient(kubeconfig, k8s.CoreV1Api).listNode({ labelSelector: `type=kwok,!${BENCH_NODE_LABEL}` })
  ).items;
  assert.equal(nodes.length, FAKE_NODES);
  for (const n of nodes) {
    assert.equal(n.status?.allocatable?.[GPU_RESOURCE], String(GPUS_PER_NODE));
    assert.match(n.metadata?.labels?.[TOPOLOGY_LABEL] ?? '', /^block-\d$/);
    assert.ok(n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  }
});

test('the upstream CRDs accept a LeaderWorkerSet, a RayCluster, a RayService, a ScaledObject and a RayClusterFleet', async () => {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kubeConfig(kubeconfig));
  for (const file of [
    'leaderworkerset.yaml',
    'raycluster.yaml',
    'rayservice.yaml',
    'scaledobject.yaml',
    'rayclusterfleet.yaml',
  ]) {
    const obj = fixture(file);
    obj.metadata = { ...obj.metadata, namespace: ns };
    const created = await objects.create(obj);
    assert.ok(created.metadata?.uid, `${file} was not stored`);
    const read = await objects.read({
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: { name: obj.metadata.name!, namespace: ns },
    });
    assert.equal(read.metadata?.name, obj.metadata.name);
  }
});

test('the real API server rejects invalid objects with their schema errors', async () => {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kubeConfig(kubeconfig));
  for (const [file, message] of [
    [
      'invalid-leaderworkerset.yaml',
      /spec\.leaderWorkerTemplate\.size: Invalid value: "string": spec\.leaderWorkerTemplate\.size in body must be of type integer/,
    ],
    ['invalid-scaledobject.yaml', /spec\.triggers: Required value/],
  ] as const) {
    const obj = fixture(file);
    obj.metadata = { ...obj.metadata, namespace: ns };
    await assert.rejects(objects.create(obj), (err: unknown) => {
      assert.ok(err instanceof k8s.ApiException, String(err));
      assert.equal(err.code, 422);
      assert.match((JSON.parse(String(err.body)) as { message: string }).message, message);
      return true;
    });
  }
});

test('a Deployment asking for GPUs is scheduled onto fake GPU nodes, Ready, then garbage-collected', async () => {
  const apps = apiClient(kubeconfig, k8s.AppsV1Api);
  const core = apiClient(kubeconfig, k8s.CoreV1Api);
  const labels = { app: 'gpu-smoke' };
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'gpu-smoke' },
      spec: {
        replicas: 3,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              { name: 'engine', image: 'vllm/vllm-openai:v0.11.0', resources: { limits: { [GPU_RESOURCE]: '4' } } },
            ],
          },
        },
      },
    },
  });
  const pods = await until('3 Ready pods', 60_000, async () => {
    const list = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=gpu-smoke' })).items;
    const ready = list.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    return ready.length === 3 ? ready : undefined;
  });
  for (const p of pods) assert.match(p.spec?.nodeName ?? '', /^gpu-node-\d$/, 'scheduled onto a fake GPU node');
  // 4 GPUs each on 8-GPU nodes: the scheduler cannot put more than two on one node.
  const perNode = new Map<string, number>();
  for (const p of pods) perNode.set(p.spec!.nodeName!, (perNode.get(p.spec!.nodeName!) ?? 0) + 1);
  assert.ok(
    [...perNode.values()].every((n) => n <= 2),
    JSON.stringify([...perNode]),
  );

  await apps.deleteNamespacedDeployment({ name: 'gpu-smoke', namespace: ns, propagationPolicy: 'Background' });
  await until('the garbage collector to remove the pods', 60_000, async () => {
    const left = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=gpu-smoke' })).items;
    return left.length === 0 ? true : undefined;
  });
});
