// Real pods on the test cluster's real node (real-node.ts): `tandem install` with the image built
// from this checkout runs the operator and the gateway as Deployments; an InferenceService of
// 2 replicas × 2-node llama.cpp groups, its model on a hostPath PersistentVolume, runs in
// containers whose leaders find their workers by DNS name, and answers through the in-cluster
// gateway with the same greedy text as the same spec on the embedded default.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { GATEWAY_KEYS_SECRET, installManifests } from '../../src/cli/cluster.js';

import { RawApi } from '../../src/platforms/kubernetes/raw.js';
import { addKey } from '../../src/gateway/keys.js';
import { ensureLlamaSource } from '../../src/engine/llamacpp/source.js';
import { ensureTinyLlama } from '../../src/model/tiny-llama.js';
import { silentProgress } from '../../src/util/progress.js';
import { complete, leaderUrl, startServices, tinySpec } from '../helpers.js';
import { apply, readYaml } from './apply.js';
import { apiClient, kubeConfig, loadImage, realNodeWanted, runDir } from './cluster.js';
import { until, useTestCluster } from './harness.js';
import { buildTandemImage } from './image.js';
import { REAL_NODE, REAL_NODE_TAINT, realNodeUnavailable } from './real-node.js';

const ns = 'tandem-real';
const unavailable = realNodeWanted() ? realNodeUnavailable() : 'the real node is opt-in for now: TANDEM_REAL_NODE=1';
const PROMPT = 'The capital of France is';

/** What places a pod on the real node: it tolerates the node's taint and selects it. */
const onRealNode = {
  nodeSelector: { 'kubernetes.io/hostname': REAL_NODE },
  tolerations: [{ ...REAL_NODE_TAINT, operator: 'Equal' }],
};

let kubeconfig: string;
let api: RawApi;
let image: string;
let apiKey: string;

if (unavailable) {
  test('real pods on a real node', { skip: unavailable }, () => {});
} else {
  useTestCluster(ns, async (k) => {
    kubeconfig = k;
    api = new RawApi(kubeConfig(k));
    const built = await buildTandemImage(silentProgress);
    loadImage(built);
    image = built.ref;
  });
  after(() => {
    if (kubeconfig) return apiClient(kubeconfig, k8s.CoreV1Api).deletePersistentVolume({ name: `${ns}-model` });
  });

  test('tandem install runs the operator and the gateway on the real node from the image built here', async () => {
    const keys = join(mkdtempSync(join(tmpdir(), 'tandem-real-keys-')), 'keys.yaml');
    apiKey = addKey(keys, { name: 'test' });
    const objects = readYaml(installManifests(ns, image)).map((o) => {
      if (o.kind !== 'Deployment') return o;
      const d = o as k8s.V1Deployment;
      Object.assign(d.spec!.template.spec!, onRealNode);
      return d;
    });
    await apply(
      api,
      [
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: GATEWAY_KEYS_SECRET, namespace: ns },
          stringData: { 'keys.yaml': readFileSync(keys, 'utf8') },
        } as k8s.KubernetesObject,
        ...objects,
      ],
      ns,
    );
    const apps = apiClient(kubeconfig, k8s.AppsV1Api);
    for (const name of ['tandem-operator', 'tandem-gateway']) {
      await withPods(
        until(`${name}: 2 available replicas on ${REAL_NODE}`, 180_000, async () => {
          const d = await apps.readNamespacedDeployment({ name, namespace: ns });
          return d.status?.availableReplicas === 2 ? true : undefined;
        }),
      );
    }
    const pods = await apiClient(kubeconfig, k8s.CoreV1Api).listNamespacedPod({ namespace: ns });
    for (const p of pods.items) assert.equal(p.spec?.nodeName, REAL_NODE, `${p.metadata?.name} runs on the real node`);
    const holder = await until('an operator pod to hold the Lease', 60_000, async () => {
      const l = await apiClient(kubeconfig, k8s.CoordinationV1Api)
        .readNamespacedLease({ name: 'tandem-operator', namespace: ns })
        .catch(() => undefined);
      return l?.spec?.holderIdentity || undefined;
    });
    const operators = pods.items.filter((p) => p.metadata?.labels?.['app.kubernetes.io/name'] === 'tandem-operator');
    assert.ok(
      operators.some((p) => holder.includes(p.metadata!.name!)),
      `the Lease's holder ${holder} is one of ${operators.map((p) => p.metadata?.name).join(', ')}`,
    );
  });

  test('2 replicas × 2-node llama.cpp groups run in real pods and answer as the embedded default does', async () => {
    // The model on the node, as a PersistentVolume an administrator would make.
    const model = await ensureTinyLlama((await ensureLlamaSource(silentProgress)).dir, silentProgress);
    const modelDir = join(runDir(), 'real-node-models');
    mkdirSync(modelDir, { recursive: true });
    copyFileSync(model, join(modelDir, 'tiny.gguf'));
    await apply(
      api,
      [
        {
          apiVersion: 'v1',
          kind: 'PersistentVolume',
          metadata: { name: `${ns}-model` },
          spec: {
            capacity: { storage: '1Gi' },
            accessModes: ['ReadOnlyMany'],
            storageClassName: 'manual',
            hostPath: { path: modelDir, type: 'Directory' },
            claimRef: { namespace: ns, name: 'model' },
          },
        } as k8s.KubernetesObject,
        {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: { name: 'model', namespace: ns },
          spec: {
            accessModes: ['ReadOnlyMany'],
            storageClassName: 'manual',
            volumeName: `${ns}-model`,
            resources: { requests: { storage: '1Gi' } },
          },
        } as k8s.KubernetesObject,
        {
          apiVersion: 'tandem.dev/v1alpha1',
          kind: 'InferenceService',
          metadata: { name: 'duo', namespace: ns },
          spec: {
            model: { servedName: 'duo-model', source: 'pvc://model/tiny.gguf' },
            engine: { type: 'llamacpp', image },
            parallelism: { nodes: 2 },
            replicas: 2,
            resources: { cpu: '100m' },
            leaderTemplate: onRealNode,
            workerTemplate: onRealNode,
          },
        } as k8s.KubernetesObject,
      ],
      ns,
    );
    const custom = apiClient(kubeconfig, k8s.CustomObjectsApi);
    await withPods(
      until('duo: 2/2 groups Ready on real pods', 300_000, async () => {
        const o = (await custom.getNamespacedCustomObject({
          group: 'tandem.dev',
          version: 'v1alpha1',
          namespace: ns,
          plural: 'inferenceservices',
          name: 'duo',
        })) as { status?: { readyGroups?: string } };
        return o.status?.readyGroups === '2/2' ? true : undefined;
      }),
    );
    const core = apiClient(kubeconfig, k8s.CoreV1Api);
    const members = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'tandem.dev/service=duo' })).items;
    assert.equal(members.length, 4);
    for (const p of members) assert.equal(p.spec?.nodeName, REAL_NODE);
    const gateway = (
      await core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/name=tandem-gateway' })
    ).items[0]!;
    const viaCluster = await gatewayCompletion(`http://${gateway.status!.podIP}:8080`);
    assert.ok(viaCluster.trim().length > 0, 'the group generated text');

    // The same spec on the embedded default (one replica: the text is the group's, not the replica's).
    const local = await startServices([
      tinySpec('duo', { parallelism: { nodes: 2 }, model: { servedName: 'duo-model', source: `file://${model}` } }),
    ]);
    try {
      assert.equal(viaCluster, await complete(leaderUrl(local, 'duo'), PROMPT, 16));
    } finally {
      await local.stop();
    }
  });
}

async function gatewayCompletion(base: string): Promise<string> {
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ model: 'duo-model', prompt: PROMPT, max_tokens: 16, temperature: 0, seed: 1 }),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { choices: { text: string }[] }).choices[0]!.text;
}

/** A wait that, when it fails, says where each pod of the namespace is and what it waits for. */
function withPods<T>(wait: Promise<T>): Promise<T> {
  return wait.catch(async (err: Error) => {
    const pods = await apiClient(kubeconfig, k8s.CoreV1Api).listNamespacedPod({ namespace: ns });
    const lines = pods.items.map((p) => {
      const waiting = p.status?.containerStatuses?.flatMap((c) => c.state?.waiting?.reason ?? []) ?? [];
      return `  ${p.metadata?.name} on ${p.spec?.nodeName ?? '-'}: ${p.status?.phase} ${waiting.join(', ')}`;
    });
    throw new Error(`${err.message}\npods:\n${lines.join('\n')}`);
  });
}
