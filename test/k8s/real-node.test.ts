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
import type { ServiceRecord } from '../../src/core/control.js';
import { ensureLlamaSource } from '../../src/engine/llamacpp/source.js';
import { ensureTinyLlama } from '../../src/model/tiny-llama.js';
import { silentProgress } from '../../src/util/progress.js';
import OpenAI from 'openai';
import {
  BATCH_INVARIANT,
  complete,
  leaderUrl,
  readStream,
  startServices,
  streamingLoad,
  tinySpec,
} from '../helpers.js';
import { LABEL } from '../../src/platforms/kubernetes/objects.js';
import { apply, readYaml } from './apply.js';
import { apiClient, kubeConfig, loadImage, realNodeWanted, runDir } from './cluster.js';
import { until, useTestCluster } from './harness.js';
import { buildTandemImage } from './image.js';
import { REAL_NODE, REAL_NODE_TAINT, containerPids, realNodeUnavailable } from './real-node.js';

const ns = `tandem-real-${process.pid}`;
const unavailable = realNodeWanted() ? realNodeUnavailable() : 'TANDEM_REAL_NODE=0';
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
let adminKey: string;
/** The in-cluster gateway, reached from the host at its pod's IP. */
let gatewayBase: string;

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
    adminKey = addKey(keys, { name: 'ops', admin: true });
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
            engine: { type: 'llamacpp', image, args: BATCH_INVARIANT },
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
    // The two gateways find each other (the other Ready pod of their Deployment) and share their load.
    const gateways = (
      await core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/name=tandem-gateway' })
    ).items;
    for (const [i, g] of gateways.entries()) {
      const peer = `${gateways[1 - i]!.status!.podIP}:9090`;
      await until(`${g.metadata!.name} to share load with its peer ${peer}`, 30_000, async () => {
        const log = await core.readNamespacedPodLog({ name: g.metadata!.name!, namespace: ns });
        return log.includes(`autoscaling on the load of gateway peer ${peer} too`) ? true : undefined;
      });
    }
    const members = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'tandem.dev/service=duo' })).items;
    assert.equal(members.length, 4);
    for (const p of members) assert.equal(p.spec?.nodeName, REAL_NODE);
    const gateway = (
      await core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/name=tandem-gateway' })
    ).items[0]!;
    gatewayBase = `http://${gateway.status!.podIP}:8080`;
    const viaCluster = await gatewayCompletion(gatewayBase);
    assert.ok(viaCluster.trim().length > 0, 'the group generated text');

    // From beyond the gateway's machine: probes need no key but learn only readiness; the metrics
    // (they name the keys) and the control API need an admin key.
    const get = (path: string, key?: string) =>
      fetch(`${gatewayBase}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
    assert.deepEqual(await (await get('/readyz')).json(), { ready: true });
    assert.equal((await get('/metrics')).status, 401);
    assert.equal((await get('/metrics', apiKey)).status, 403);
    assert.match(await (await get('/metrics', adminKey)).text(), /tandem_gateway_key_requests_total\{key="test"\}/);
    assert.equal((await get('/api/v1/services', apiKey)).status, 403);
    const record = (await (await get('/api/v1/services/duo', adminKey)).json()) as ServiceRecord;
    const leaders = members
      .filter((p) => p.metadata?.labels?.[LABEL.member] === '0')
      .map((p) => `${p.status!.podIP}:8080`);
    assert.deepEqual(
      record.status?.groups.map((g) => g.members[0]?.address).sort(),
      leaders.sort(),
      "the control API shows the groups' real pods",
    );
    // A member's log, read by the gateway through the API server from the real kubelet.
    const log = await (await get('/api/v1/services/duo/logs?replica=0&member=0&tail=200', adminKey)).text();
    assert.match(log, /^data: .*llama/m);
    assert.match(await (await get('/ui/')).text(), /<script type="module" src="\/ui\/app\/main.js">/);

    // The same spec on the embedded default (one replica: the text is the group's, not the replica's).
    const local = await startServices([
      tinySpec('duo', {
        parallelism: { nodes: 2 },
        model: { servedName: 'duo-model', source: `file://${model}` },
        engine: { type: 'llamacpp', args: BATCH_INVARIANT },
      }),
    ]);
    try {
      assert.equal(viaCluster, await complete(leaderUrl(local, 'duo'), PROMPT, 16));
    } finally {
      await local.stop();
    }
  });

  test('a worker process killed in its container: the whole group is recreated, streams finish on the other replica', async () => {
    const client = new OpenAI({ baseURL: `${gatewayBase}/v1`, apiKey, maxRetries: 0 });
    const uninterrupted = await gatewayCompletion(gatewayBase, 96);
    const before = await groupPods(0);
    const worker = before.find((p) => p.metadata?.labels?.[LABEL.member] === '1')!;
    const pids = containerPids(worker.status!.containerStatuses![0]!.containerID!);
    // Four streams over two replicas; the first token of the first one kills replica 0's worker.
    let killed = false;
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, async () =>
        readStream(
          await client.completions.create({
            model: 'duo-model',
            prompt: PROMPT,
            max_tokens: 96,
            temperature: 0,
            seed: 1,
            stream: true,
          }),
          () => {
            if (killed) return;
            killed = true;
            for (const pid of pids) process.kill(pid, 'SIGKILL');
          },
        ),
      ),
    );
    assert.ok(killed);
    for (const r of results) {
      assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
      if (r.status === 'fulfilled') {
        assert.equal(r.value.finish, 'length');
        assert.equal(r.value.text, uninterrupted, 'a stream continued elsewhere says what it would have said');
      }
    }
    const after = await withPods(
      until('group 0 recreated whole and Ready', 180_000, async () => {
        const list = await groupPods(0);
        const fresh = list.filter((p) => !before.some((b) => b.metadata?.uid === p.metadata?.uid));
        return fresh.length === 2 && fresh.every(isReady) ? fresh : undefined;
      }),
    );
    assert.equal(after.length, 2);
    const status = await duoStatus();
    assert.equal(status.groups?.find((g) => g.replica === 0)?.restarts, 1);
    // Whichever the operator saw first: the worker, or the leader that lost it (llama-server exits).
    assert.match(status.groups?.find((g) => g.replica === 0)?.lastFailure?.reason ?? '', /^(worker 1|leader 0) exited/);
  });

  test('NetworkPolicy on the real node: only the group reaches its RPC port, only the gateway namespace its leader', async () => {
    const members = await groupPods(1);
    const leader = members.find((p) => p.metadata?.labels?.[LABEL.member] === '0')!;
    const worker = members.find((p) => p.metadata?.labels?.[LABEL.member] === '1')!;
    const rpc = `${worker.status!.podIP}:${worker.spec!.containers[0]!.ports![0]!.containerPort}`;
    const http = `${leader.status!.podIP}:${leader.spec!.containers[0]!.ports![0]!.containerPort}`;
    const other = `${ns}-other`;
    const core = apiClient(kubeconfig, k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: other } } });
    try {
      const gatewayLabel = { 'tandem.dev/gateway': 'true' };
      const [plainRpc, gatewayRpc, gatewayHttp, foreignHttp] = await Promise.all([
        probe(ns, 'plain-rpc', {}, rpc),
        probe(ns, 'gateway-rpc', gatewayLabel, rpc),
        probe(ns, 'gateway-http', gatewayLabel, http),
        probe(other, 'foreign-http', gatewayLabel, http),
      ]);
      assert.deepEqual(
        { plainRpc, gatewayRpc, gatewayHttp, foreignHttp },
        { plainRpc: 'closed', gatewayRpc: 'closed', gatewayHttp: 'open', foreignHttp: 'closed' },
      );
    } finally {
      await core.deleteNamespace({ name: other });
    }
  });

  test('a changed template rolls the groups on real pods under streaming load, no request failed', async () => {
    const client = new OpenAI({ baseURL: `${gatewayBase}/v1`, apiKey, maxRetries: 0 });
    const before = new Set((await groupPods()).map((p) => p.metadata!.uid!));
    await apiClient(kubeconfig, k8s.CustomObjectsApi).patchNamespacedCustomObject(
      { ...DUO, body: { spec: { env: { TANDEM_TEST_ROLL: '1' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    // Two clients streaming back to back until the rollout is done (bounded: 3 minutes, 400 requests).
    const load = streamingLoad(client, 'duo-model', { maxTokens: 48, maxMs: 180_000, maxRequests: 400 });
    let outcomes: string[];
    try {
      await withPods(
        until('both groups rolled to the new template and Ready', 180_000, async () => {
          const list = await groupPods();
          const rolled = list.filter((p) => !before.has(p.metadata!.uid!));
          const env = (p: k8s.V1Pod) => p.spec?.containers[0]?.env?.some((e) => e.name === 'TANDEM_TEST_ROLL');
          return list.length === 4 && rolled.length === 4 && list.every((p) => isReady(p) && env(p)) ? true : undefined;
        }),
      );
    } finally {
      outcomes = await load.stop();
    }
    const failed = outcomes.filter((o) => o !== 'ok');
    assert.ok(outcomes.length > 0, 'requests were made during the rollout');
    if (failed.length > 0) {
      assert.fail(
        `${failed.length} of ${outcomes.length} requests failed: ${[...new Set(failed)].join('; ')}\n${await controlLogs()}`,
      );
    }
  });
}

const DUO = { group: 'tandem.dev', version: 'v1alpha1', namespace: ns, plural: 'inferenceservices', name: 'duo' };

interface DuoStatus {
  readyGroups?: string;
  groups?: { replica: number; restarts: number; lastFailure?: { reason: string } }[];
}

const duoStatus = async () =>
  ((await apiClient(kubeconfig, k8s.CustomObjectsApi).getNamespacedCustomObject(DUO)) as { status?: DuoStatus })
    .status ?? {};

const isReady = (p: k8s.V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

/** The duo service's pods (of one group), not being deleted. */
async function groupPods(replica?: number): Promise<k8s.V1Pod[]> {
  const selector = `${LABEL.service}=duo${replica === undefined ? '' : `,${LABEL.replica}=${replica}`}`;
  const list = await apiClient(kubeconfig, k8s.CoreV1Api).listNamespacedPod({ namespace: ns, labelSelector: selector });
  return list.items.filter((p) => !p.metadata?.deletionTimestamp);
}

/** The namespace's Events and the operators' and gateways' own lines (not the access log), for failure messages. */
async function controlLogs(): Promise<string> {
  const core = apiClient(kubeconfig, k8s.CoreV1Api);
  const events = (await core.listNamespacedEvent({ namespace: ns })).items
    .map(
      (e) =>
        `${new Date(e.lastTimestamp ?? e.eventTime ?? 0).toISOString()} ${e.involvedObject.name} ${e.reason}: ${e.message}`,
    )
    .sort();
  const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/name' });
  const logs = await Promise.all(
    pods.items.map(async (p) => {
      const log = await core.readNamespacedPodLog({ name: p.metadata!.name!, namespace: ns }).catch(String);
      const own = log.split('\n').filter((l) => l && !l.startsWith('{'));
      return `--- ${p.metadata!.name}\n${own.slice(-30).join('\n')}`;
    }),
  );
  return `--- events\n${events.slice(-60).join('\n')}\n${logs.join('\n')}`;
}

/**
 * Whether a pod in `namespace` with `labels`, on the real node, can open a TCP connection to
 * `target` (IP:port) within 10 s: Node in Tandem's own image, its answer read from the pod's log.
 */
async function probe(namespace: string, name: string, labels: Record<string, string>, target: string): Promise<string> {
  const [host, port] = target.split(':');
  // Tried for 10 s: the enforcer admits a new pod's address once it has seen the pod.
  const script = `const net=require('net');const end=Date.now()+10000;const at=()=>{const s=net.connect(${port},'${host}');s.setTimeout(1000);const no=()=>{s.destroy();if(Date.now()>end){console.log('closed');process.exit(0)}setTimeout(at,500)};s.on('connect',()=>{console.log('open');process.exit(0)});s.on('timeout',no);s.on('error',no)};at()`;
  const core = apiClient(kubeconfig, k8s.CoreV1Api);
  await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels },
      spec: {
        ...onRealNode,
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        containers: [{ name: 'probe', image, command: ['/usr/local/bin/node', '-e', script] }],
      },
    },
  });
  await withPods(
    until(`probe ${namespace}/${name} to finish`, 60_000, async () => {
      const p = await core.readNamespacedPod({ name, namespace });
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? true : undefined;
    }),
  );
  return (await core.readNamespacedPodLog({ name, namespace })).trim();
}

async function gatewayCompletion(base: string, maxTokens = 16): Promise<string> {
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ model: 'duo-model', prompt: PROMPT, max_tokens: maxTokens, temperature: 0, seed: 1 }),
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
