// The operator on the real control plane: Tandem's own CRD, groups of pods placed by the real
// scheduler and made Ready by KWOK, recreated whole, scaled through the scale subresource, picked
// up by a restarted operator, and collected by the real garbage collector.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type ServerResponse } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { externalScalerPackage } from '../../src/autoscaler/keda.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { validateDocument } from '../../src/spec/load.js';
import { GROUP, PLURAL, VERSION } from '../../src/platforms/kubernetes/crd.js';
import { Operator } from '../../src/cli/operator.js';
import { LeaderLease } from '../../src/platforms/kubernetes/lease.js';
import OpenAI from 'openai';
import { LABEL, LEADER_PORT, PODGROUP } from '../../src/platforms/kubernetes/objects.js';
import { ensureLlamaBinaries } from '../../src/engine/llamacpp/build.js';
import { ensureLlamaSource } from '../../src/engine/llamacpp/source.js';
import { ensureTinyLlama } from '../../src/model/tiny-llama.js';
import { silentProgress } from '../../src/util/progress.js';
import type { GroupStatusEntry, ServiceStatus } from '../../src/platforms/kubernetes/service-status.js';
import {
  apiClient,
  appendContainerLog,
  installCrds,
  installTandemCrd,
  kubeConfig,
  runningCluster,
  TOPOLOGY_LABEL,
} from './cluster.js';
import { ensureKedaAdapter, ensureKedaOperator } from './binaries.js';
import { startKeda, type Keda } from './keda.js';
import { exportService } from '../../src/platforms/kubernetes/export/index.js';
import { UNRESPONSIVE_PREFIX } from '../../src/platforms/kubernetes/spec-feed.js';
import { freePort } from '../../src/util/net.js';
import { until as poll, useTestCluster } from './harness.js';
import { serviceAccountConfig as accountConfig, startOperator } from './accounts.js';
import { controlApi, openApiChecker } from '../tandem-up.js';
import type { ServiceRecord } from '../../src/core/control.js';

let kubeconfig: string;
const ns = `tandem-op-${process.pid}`;
const logs: string[] = [];
useTestCluster(ns, async (k) => {
  kubeconfig = k;
  await installTandemCrd(kubeconfig);
});

function until<T>(what: string | (() => string), timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  return poll(what, timeoutMs, probe, () => logs.slice(-20).join('\n'));
}

const custom = () => apiClient(kubeconfig, k8s.CustomObjectsApi);
const core = () => apiClient(kubeconfig, k8s.CoreV1Api);
const where = { group: GROUP, version: VERSION, namespace: ns, plural: PLURAL };

function isvc(name: string, spec: Record<string, unknown>) {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: 'InferenceService', metadata: { name }, spec };
}
const big = (replicas: number, extra: Record<string, unknown> = {}) => ({
  model: { servedName: 'big', source: 'hf://org/big-model-GGUF' },
  engine: { type: 'llamacpp' },
  parallelism: { nodes: 2 },
  replicas,
  resources: { cpu: '4', memory: '16Gi', gpu: 8 },
  scheduling: { topologyKey: TOPOLOGY_LABEL, placementTimeout: '5s' },
  failurePolicy: { maxRestarts: 3, window: '10m' },
  env: { NCCL_DEBUG: 'INFO' },
  leaderTemplate: { metadata: { annotations: { [NETWORKS]: 'roce-a' } }, nodeSelector: { type: 'kwok' } },
  workerTemplate: {
    metadata: { annotations: { [NETWORKS]: 'roce-a' } },
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
  },
  ...extra,
});
const NETWORKS = 'k8s.v1.cni.cncf.io/networks';

async function pods(service: string): Promise<k8s.V1Pod[]> {
  return (await core().listNamespacedPod({ namespace: ns, labelSelector: `${LABEL.service}=${service}` })).items;
}
const readyPods = (list: k8s.V1Pod[]) =>
  list.filter(
    (p) =>
      !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
/** The object's status; a test reads a field only once it waited for it to be there. */
async function status(name: string): Promise<ServiceStatus> {
  const obj = (await custom().getNamespacedCustomObject({ ...where, name })) as { status?: ServiceStatus };
  return obj.status ?? ({ groups: [], conditions: [] } as unknown as ServiceStatus);
}
function groupOf(s: ServiceStatus, replica: number): GroupStatusEntry {
  const g = s.groups.find((x) => x.replica === replica);
  assert.ok(g, `group ${replica} in ${JSON.stringify(s)}`);
  return g;
}

test('tandem validate and the API server agree on a corpus of InferenceServices', async () => {
  const base = big(1);
  const corpus: [string, Record<string, unknown>][] = [
    ['valid', base],
    ['valid auto', { ...base, parallelism: { nodes: 'auto' }, resources: { memory: '8Gi' } }],
    ['valid vllm', { ...base, engine: { type: 'vllm' }, parallelism: { nodes: 2, tensor: 8, pipeline: 2 } }],
    ['valid env values', { ...base, env: { A: 1, C: 'x' } }],
    ['env boolean', { ...base, env: { B: true } }],
    ['cpu fraction as a number', { ...base, resources: { cpu: 1.5, gpu: 0 } }],
    ['valid cpu string', { ...base, resources: { cpu: '1.5', gpu: 0 } }],
    ['unknown field', { ...base, replicaz: 2 }],
    ['nodes too many', { ...base, parallelism: { nodes: 300 } }],
    ['nodes not a number', { ...base, parallelism: { nodes: 'two' } }],
    ['parallelism word', { ...base, parallelism: 'manual' }],
    [
      'nodes auto on vllm',
      { ...base, engine: { type: 'vllm' }, parallelism: { nodes: 'auto' }, resources: { memory: '8Gi' } },
    ],
    ['auto without memory', { ...base, parallelism: { nodes: 'auto' }, resources: { gpu: 0 } }],
    ['llamacpp tensor', { ...base, parallelism: { nodes: 2, tensor: 2 } }],
    ['llamacpp pipeline', { ...base, parallelism: { nodes: 2, pipeline: 3 } }],
    ['bad source', { ...base, model: { servedName: 'x', source: 's3://bucket/m.gguf' } }],
    ['vllm tp×pp', { ...base, engine: { type: 'vllm' }, parallelism: { nodes: 2, tensor: 3 } }],
    ['env override', { ...base, env: { LWS_GROUP_SIZE: '3' } }],
    [
      'valid vllm ray',
      { ...base, engine: { type: 'vllm', distributedExecutorBackend: 'ray' }, parallelism: { nodes: 2, tensor: 8 } },
    ],
    [
      'ray on sglang',
      { ...base, engine: { type: 'sglang', distributedExecutorBackend: 'ray' }, parallelism: { nodes: 2, tensor: 8 } },
    ],
    [
      'vllm s3 source',
      {
        ...base,
        engine: { type: 'vllm' },
        parallelism: { nodes: 2, tensor: 8 },
        model: { servedName: 'x', source: 's3://b/m' },
      },
    ],
    [
      'vllm multi-node LeaderReady',
      { ...base, engine: { type: 'vllm' }, parallelism: { nodes: 2, tensor: 8 }, startupPolicy: 'LeaderReady' },
    ],
    ['env name', { ...base, env: { 'BAD-NAME': 'x' } }],
    ['memory quantity', { ...base, resources: { memory: '16 GiB', gpu: 0 } }],
    ['negative cpu', { ...base, resources: { cpu: -1, gpu: 0 } }],
    ['rollout zero', { ...base, rollout: { maxUnavailable: 0, maxSurge: 0 } }],
    ['restart policy', { ...base, restartPolicy: 'Always' }],
    ['startup timeout', { ...base, startupTimeout: '10 minutes' }],
    [
      'valid autoscaling',
      {
        ...base,
        autoscaling: { minReplicas: 0, maxReplicas: 4, targetOngoingRequests: 1.5, scaleToZeroAfter: '5m' },
      },
    ],
    ['autoscaling min over max', { ...base, autoscaling: { minReplicas: 5, maxReplicas: 4 } }],
    ['autoscaling initial out of range', { ...base, autoscaling: { maxReplicas: 4, initialReplicas: 0 } }],
    ['autoscaling no max', { ...base, autoscaling: { minReplicas: 0 } }],
    ['autoscaling target zero', { ...base, autoscaling: { maxReplicas: 2, targetOngoingRequests: 0 } }],
    ['autoscaling delay', { ...base, autoscaling: { maxReplicas: 2, upscaleDelay: 'soon' } }],
  ];
  const verdicts: string[] = [];
  for (const [what, spec] of corpus) {
    const doc = isvc('corpus', spec);
    const ours = validateDocument(doc).problems;
    const theirs = await custom()
      .createNamespacedCustomObject({ ...where, body: doc, dryRun: 'All', fieldValidation: 'Strict' })
      .then(() => undefined)
      .catch((err: { body?: string }) => String(err.body));
    verdicts.push(
      `${what}: tandem ${ours.length === 0 ? 'accepts' : 'rejects'}, API server ${theirs ? 'rejects' : 'accepts'}`,
    );
    assert.equal(
      ours.length === 0,
      theirs === undefined,
      `${what}: tandem ${JSON.stringify(ours)}, API server ${theirs}`,
    );
  }
  assert.ok(verdicts.length === corpus.length);
});

test('an InferenceService becomes groups of pods: placed, Ready, recreated whole, scaled, picked up, collected', async () => {
  // Set to watch the operators' lines as they write them (to stop one at a given step).
  let onLog: ((line: string) => void) | undefined;
  const log = (l: string) => {
    logs.push(l);
    onLog?.(l);
  };
  let operator = new Operator(kubeConfig(kubeconfig), { namespace: ns, log, resyncMs: 2000 });
  await operator.start();
  try {
    await custom().createNamespacedCustomObject({ ...where, body: isvc('big', big(2)) });
    const placed = await until('4 Ready pods', 60_000, async () => {
      const list = await pods('big');
      return readyPods(list).length === 4 ? list : undefined;
    });
    const startup = await until(
      'the measured start time in the status',
      20_000,
      async () => (await status('big')).startupSeconds,
    );
    assert.ok(startup >= 0 && startup < 60, `groups took ${startup} s to start`);
    const nodes = (await core().listNode()).items;
    const block = (node?: string) => nodes.find((n) => n.metadata?.name === node)?.metadata?.labels?.[TOPOLOGY_LABEL];
    for (const replica of ['0', '1']) {
      const members = placed.filter((p) => p.metadata?.labels?.[LABEL.replica] === replica);
      assert.equal(members.length, 2);
      assert.equal(new Set(members.map((p) => block(p.spec?.nodeName))).size, 1, 'one topology domain per group');
      for (const p of members) {
        const env = Object.fromEntries((p.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
        assert.equal(env.LWS_LEADER_ADDRESS, `big-${replica}-0.big-${replica}.${ns}`);
        assert.equal(env.LWS_GROUP_SIZE, '2');
        assert.equal(env.LWS_WORKER_INDEX, p.metadata?.labels?.[LABEL.member]);
        assert.equal(env.NCCL_DEBUG, 'INFO');
        assert.equal(p.spec?.restartPolicy, 'Never');
        assert.equal(p.spec?.containers[0]?.resources?.limits?.['nvidia.com/gpu'], '8');
        assert.equal(p.metadata?.ownerReferences?.[0]?.kind, 'InferenceService');
        assert.equal(p.metadata?.annotations?.[NETWORKS], 'roce-a', 'the pod template override');
      }
      const leader = members.find((p) => p.metadata?.labels?.[LABEL.member] === '0')!;
      const worker = members.find((p) => p.metadata?.labels?.[LABEL.member] === '1')!;
      assert.deepEqual(leader.spec?.nodeSelector, { type: 'kwok' });
      assert.equal(
        worker.spec?.tolerations?.some((t) => t.key === 'nvidia.com/gpu'),
        true,
      );
      assert.ok(
        leader.spec?.containers[0]?.args?.join(' ').includes(`--rpc big-${replica}-1.big-${replica}.${ns}:50052`),
      );
    }
    await until('status 2/2 and Available', 20_000, async () => {
      const s = await status('big');
      const available = s.conditions?.find((c: { type: string }) => c.type === 'Available');
      return s.readyGroups === '2/2' && available?.status === 'True' && s.nodesPerGroup === 2 ? s : undefined;
    });

    // A worker deleted behind the operator's back: its group is recreated whole, the other untouched.
    const group0 = placed.filter((p) => p.metadata?.labels?.[LABEL.replica] === '0').map((p) => p.metadata?.uid);
    const lost = placed.find((p) => p.metadata?.name === 'big-1-1')!;
    await core().deleteNamespacedPod({ namespace: ns, name: 'big-1-1' });
    const after = await until('group 1 recreated and Ready', 60_000, async () => {
      const s = await status('big');
      const g1 = s.groups?.find((g: { replica: number }) => g.replica === 1);
      const list = await pods('big');
      return g1?.restarts === 1 && g1.phase === 'Ready' && readyPods(list).length === 4 ? { s, list } : undefined;
    });
    const g1 = groupOf(after.s, 1);
    assert.match(g1.lastFailure!.reason, /^worker 1 (was deleted by someone else|disappeared)$/);
    assert.ok(g1.lastFailureTime);
    assert.ok(!after.list.some((p) => p.metadata?.uid === lost.metadata?.uid));
    const leader1 = placed.find((p) => p.metadata?.name === 'big-1-0')!;
    assert.ok(!after.list.some((p) => p.metadata?.uid === leader1.metadata?.uid), 'the leader was recreated too');
    assert.deepEqual(
      after.list
        .filter((p) => p.metadata?.labels?.[LABEL.replica] === '0')
        .map((p) => p.metadata?.uid)
        .sort(),
      [...group0].sort(),
      'group 0 untouched',
    );
    const events = (await core().listNamespacedEvent({ namespace: ns })).items.filter(
      (e) => e.involvedObject.name === 'big',
    );
    assert.ok(events.some((e) => e.reason === 'GroupRecreating' && e.type === 'Warning'));

    // A restarted operator picks everything up: no pod recreated, the restart count kept.
    await operator.stop();
    const before = (await pods('big')).map((p) => p.metadata?.uid).sort();
    operator = new Operator(kubeConfig(kubeconfig), { namespace: ns, log, resyncMs: 2000 });
    await operator.start();
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual((await pods('big')).map((p) => p.metadata?.uid).sort(), before, 'nothing recreated');
    const kept = groupOf(await status('big'), 1);
    assert.equal(kept.restarts, 1);

    // A pod turning Failed (its engine exited): that group is recreated whole too.
    const failing = (await pods('big')).find((p) => p.metadata?.name === 'big-0-1')!;
    await core().patchNamespacedPodStatus(
      {
        namespace: ns,
        name: 'big-0-1',
        body: { status: { phase: 'Failed', reason: 'Error', message: 'engine exited' } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await until('group 0 recreated after its pod failed', 60_000, async () => {
      const g0 = (await status('big')).groups?.find((g: { replica: number }) => g.replica === 0);
      const list = await pods('big');
      return g0?.restarts === 1 && g0.phase === 'Ready' && readyPods(list).length === 4 ? true : undefined;
    });
    assert.ok(!(await pods('big')).some((p) => p.metadata?.uid === failing.metadata?.uid));
    assert.match(
      groupOf(await status('big'), 0).lastFailure!.reason,
      /^worker 1 exited \(pod Failed: Error \(engine exited\)\)$/,
    );

    // A template change rolls one group at a time (maxUnavailable 1 of 2); the operator is replaced
    // mid-rollout and the new one finishes it: no duplicate pod, the groups' restart counts kept.
    let minReady = 2;
    let maxPods = 0;
    const logsBefore = logs.length;
    const watchRollout = setInterval(() => {
      void pods('big').then((list) => {
        maxPods = Math.max(maxPods, list.length);
        const ready = ['0', '1'].filter(
          (r) => readyPods(list).filter((p) => p.metadata?.labels?.[LABEL.replica] === r).length === 2,
        ).length;
        minReady = Math.min(minReady, ready);
      });
    }, 100);
    try {
      // Stopped the moment it starts rolling the first group (a poll could see the rollout done).
      const stopped = new Promise<void>((resolve) => {
        const running = operator;
        onLog = (line) => {
          if (!/big: group \d: rolling group to template/.test(line)) return;
          onLog = undefined;
          void running.stop().then(resolve);
        };
      });
      await custom().patchNamespacedCustomObject(
        { ...where, name: 'big', body: { spec: { env: { NCCL_DEBUG: 'WARN' } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      await stopped;
      operator = new Operator(kubeConfig(kubeconfig), { namespace: ns, log, resyncMs: 2000 });
      await operator.start();
      await until('the rollout done', 90_000, async () => {
        const list = readyPods(await pods('big'));
        const env = (p: k8s.V1Pod) => p.spec?.containers[0]?.env?.find((e) => e.name === 'NCCL_DEBUG')?.value;
        return list.length === 4 && list.every((p) => env(p) === 'WARN') ? true : undefined;
      });
    } finally {
      clearInterval(watchRollout);
    }
    // Polling may miss a group's brief absence (KWOK recreates pods within one poll): that the rollout
    // took each group down is read from the operators' events, the bound on how many at once from the polls.
    assert.ok(minReady >= 1, 'never more than maxUnavailable (1) group down');
    const rolling = new Set(
      logs.slice(logsBefore).flatMap((l) => /big: group (\d): rolling group to template/.exec(l)?.[1] ?? []),
    );
    assert.deepEqual([...rolling].sort(), ['0', '1'], 'each group rolled');
    // At most: a busy machine may roll the first group before the first poll lands.
    assert.ok(maxPods <= 4, `no duplicate or orphaned pod (${maxPods} at once)`);
    const rolled = (await status('big')).groups;
    assert.deepEqual(
      rolled.map((g: { restarts: number }) => g.restarts),
      [1, 1],
      'a rollout is not a failure; restarts kept',
    );

    // The scale subresource (kubectl scale) drives spec.replicas.
    const scale = (await custom().getNamespacedCustomObjectScale({ ...where, name: 'big' })) as {
      spec: { replicas: number };
    };
    assert.equal(scale.spec.replicas, 2);
    await custom().patchNamespacedCustomObjectScale(
      { ...where, name: 'big', body: { spec: { replicas: 1 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    let last = '';
    await until(
      () => `scaled to one group (last: ${last})`,
      60_000,
      async () => {
        const list = await pods('big');
        const s = await status('big');
        last = `${list.map((p) => p.metadata?.name).join(',')} ${JSON.stringify(s.readyGroups)} ${JSON.stringify(s.groups?.map((g: { phase: string }) => g.phase))}`;
        return list.length === 2 && s.readyGroups === '1/1' ? true : undefined;
      },
    );
    // Deleted with the group, but seen gone only once the API server has it so: waited for.
    await until("the removed group's headless Service to go", 20_000, async () => {
      const services = (await core().listNamespacedService({ namespace: ns })).items.map((s) => s.metadata?.name);
      return services.length === 1 && services[0] === 'big-0' ? true : undefined;
    });

    // Deleting the object: the garbage collector removes every pod, Service and NetworkPolicy.
    await custom().deleteNamespacedCustomObject({ ...where, name: 'big' });
    const net = apiClient(kubeconfig, k8s.NetworkingV1Api);
    await until('everything collected', 60_000, async () => {
      const left =
        (await pods('big')).length +
        (await core().listNamespacedService({ namespace: ns })).items.length +
        (await net.listNamespacedNetworkPolicy({ namespace: ns })).items.length;
      return left === 0 ? true : undefined;
    });
  } finally {
    await operator.stop();
  }
});

test('every group-level object is level-triggered: deleted by hand, deleted and re-applied; a policy change rolls nothing', async () => {
  const operator = new Operator(kubeConfig(kubeconfig), { namespace: ns, log: (l) => logs.push(l), resyncMs: 60_000 });
  await operator.start();
  const net = () => apiClient(kubeconfig, k8s.NetworkingV1Api);
  const owned = (o: { metadata?: k8s.V1ObjectMeta } | undefined, uid: string) =>
    o?.metadata?.ownerReferences?.some((r) => r.uid === uid) === true && !o.metadata?.deletionTimestamp;
  const groupObjects = async (uid: string) => {
    const service = await core()
      .readNamespacedService({ namespace: ns, name: 'lvl-0' })
      .catch(() => undefined);
    const policy = await net()
      .readNamespacedNetworkPolicy({ namespace: ns, name: 'lvl-0' })
      .catch(() => undefined);
    return owned(service, uid) && owned(policy, uid) ? { service: service!, policy: policy! } : undefined;
  };
  try {
    const light = (replicas: number) => big(replicas, { resources: { cpu: '1', memory: '1Gi', gpu: 1 } });
    const created = (await custom().createNamespacedCustomObject({ ...where, body: isvc('lvl', light(1)) })) as {
      metadata: { uid: string };
    };
    await until('2 Ready pods', 60_000, async () => (readyPods(await pods('lvl')).length === 2 ? true : undefined));
    const before = await until('the group Service and NetworkPolicy', 10_000, () => groupObjects(created.metadata.uid));

    // Deleted by hand: made again at the next pass (the deletion itself is the change that wakes it).
    await core().deleteNamespacedService({ namespace: ns, name: 'lvl-0' });
    await net().deleteNamespacedNetworkPolicy({ namespace: ns, name: 'lvl-0' });
    const again = await until('the Service and NetworkPolicy made again', 20_000, async () => {
      const o = await groupObjects(created.metadata.uid);
      return o &&
        o.service.metadata!.uid !== before.service.metadata!.uid &&
        o.policy.metadata!.uid !== before.policy.metadata!.uid
        ? o
        : undefined;
    });
    assert.ok(again);

    // Policies change, and replicas with them (a pass on the new spec must be seen to happen): the
    // running group keeps its pods.
    const running = new Set((await pods('lvl')).map((p) => p.metadata!.uid));
    await custom().patchNamespacedCustomObject(
      {
        ...where,
        name: 'lvl',
        body: {
          spec: {
            replicas: 2,
            startupTimeout: '45m',
            restartPolicy: 'None',
            failurePolicy: { maxRestarts: 5 },
            scheduling: { topologyKey: TOPOLOGY_LABEL, placementTimeout: '9s' },
          },
        },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const scaled = await until('4 Ready pods', 60_000, async () => {
      const list = readyPods(await pods('lvl'));
      return list.length === 4 ? list : undefined;
    });
    const group0 = scaled.filter((p) => p.metadata?.labels?.[LABEL.replica] === '0');
    assert.deepEqual(
      group0.map((p) => running.has(p.metadata!.uid)),
      [true, true],
      'no pod of the running group was recreated',
    );
    assert.ok(!logs.some((l) => /lvl: group 0: rolling/.test(l)), 'no rollout');

    // Deleted and applied again under the same name: a new object (uid), whose groups get their
    // own Service and NetworkPolicy, and pods it owns.
    await custom().deleteNamespacedCustomObject({ ...where, name: 'lvl' });
    const recreated = (await custom().createNamespacedCustomObject({ ...where, body: isvc('lvl', light(1)) })) as {
      metadata: { uid: string };
    };
    await until("the new object's group objects", 60_000, () => groupObjects(recreated.metadata.uid));
    await until('2 Ready pods of the new object', 60_000, async () => {
      const list = readyPods(await pods('lvl'));
      return list.length === 2 && list.every((p) => owned(p, recreated.metadata.uid)) ? true : undefined;
    });
    await custom().deleteNamespacedCustomObject({ ...where, name: 'lvl' });
  } finally {
    await operator.stop();
  }
});

test('a group that cannot be placed gives back its placed pods after the deadline, and fails past its budget', async () => {
  const operator = new Operator(kubeConfig(kubeconfig), { namespace: ns, log: (l) => logs.push(l), resyncMs: 2000 });
  await operator.start();
  try {
    // 5 nodes × 8 GPUs on a cluster of 4 such nodes: never placed whole.
    const spec = big(1, {
      parallelism: { nodes: 5 },
      scheduling: { placementTimeout: '3s' },
      failurePolicy: { maxRestarts: 1, window: '10m' },
    });
    await custom().createNamespacedCustomObject({ ...where, body: isvc('huge', spec) });
    const s = await until('group Failed', 60_000, async () => {
      const st = await status('huge');
      return st.groups?.[0]?.phase === 'Failed' ? st : undefined;
    });
    assert.match(groupOf(s, 0).lastFailure!.reason, /not placed on a node 3s after its creation/);
    const degraded = s.conditions.find((c: { type: string }) => c.type === 'Degraded')!;
    assert.equal(degraded.status, 'True');
    assert.match(degraded.message, /more than spec.failurePolicy.maxRestarts \(1\)/);
    await until('no pod of it left', 30_000, async () => ((await pods('huge')).length === 0 ? true : undefined));
    await custom().deleteNamespacedCustomObject({ ...where, name: 'huge' });
  } finally {
    await operator.stop();
  }
});

test('with Volcano as gang scheduler: a PodGroup per group, its pods left to that scheduler, collected with the object', async () => {
  // Volcano's PodGroup API as its scheduler serves it (group, version, names, minMember/queue). Its
  // own CRD ships only in volcano.sh/volcano, a module the proxy here does not serve; no Volcano
  // scheduler runs, so the pods must wait for it rather than be bound by the default one.
  await installCrds(kubeconfig, [
    {
      metadata: { name: `${PODGROUP.plural}.${PODGROUP.group}` },
      spec: {
        group: PODGROUP.group,
        scope: 'Namespaced',
        names: { plural: PODGROUP.plural, singular: 'podgroup', kind: 'PodGroup', shortNames: ['pg'] },
        versions: [
          {
            name: PODGROUP.version,
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: {
                    type: 'object',
                    properties: { minMember: { type: 'integer' }, queue: { type: 'string' } },
                  },
                  status: { type: 'object', x_kubernetes_preserve_unknown_fields: true },
                },
              },
            },
          },
        ],
      },
    },
  ]);
  const podGroups = async () =>
    (
      (await custom().listNamespacedCustomObject({ ...PODGROUP, namespace: ns })) as {
        items: { metadata: { name: string; ownerReferences: { uid: string }[] }; spec: unknown }[];
      }
    ).items;
  const operator = new Operator(kubeConfig(kubeconfig), { namespace: ns, log: (l) => logs.push(l), resyncMs: 2000 });
  await operator.start();
  try {
    const created = (await custom().createNamespacedCustomObject({
      ...where,
      body: isvc('gang', big(1, { scheduling: { queue: 'research', gangScheduler: 'volcano' } })),
    })) as { metadata: { uid: string } };
    const [pg] = await until('a PodGroup', 30_000, async () => {
      const items = await podGroups();
      return items.length === 1 ? items : undefined;
    });
    assert.deepEqual(pg!.spec, { minMember: 2, queue: 'research' });
    assert.equal(pg!.metadata.ownerReferences[0]!.uid, created.metadata.uid);
    const members = await until('both pods', 30_000, async () => {
      const p = await pods('gang');
      return p.length === 2 ? p : undefined;
    });
    for (const pod of members) {
      assert.equal(pod.spec!.schedulerName, 'volcano');
      assert.equal(pod.metadata!.annotations!['scheduling.k8s.io/group-name'], pg!.metadata.name);
    }
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(
      (await pods('gang')).every((p) => !p.spec!.nodeName),
      'the default scheduler leaves them to Volcano',
    );
    await custom().deleteNamespacedCustomObject({ ...where, name: 'gang' });
    await until('the PodGroup collected with the object', 60_000, async () =>
      (await podGroups()).length === 0 ? true : undefined,
    );
  } finally {
    await operator.stop();
  }
});

test('two candidates for the lease: one leads, the other takes over once it is released', async () => {
  const kc = kubeConfig(kubeconfig);
  const options = { namespace: ns, name: 'tandem-operator', durationSeconds: 3 };
  const a = new LeaderLease(kc, { ...options, identity: 'a' });
  const b = new LeaderLease(kc, { ...options, identity: 'b' });
  await a.acquire(() => undefined);
  let bLeads = false;
  const bDone = b.acquire(() => undefined).then(() => (bLeads = true));
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(bLeads, false, 'b waits while a renews');
  await a.release();
  // Bounded: a release that does not hold (CI once hung here) fails this test, not the file's timeout.
  await until('b to take the released lease', 10_000, async () => (bLeads ? true : undefined));
  await bDone;
  await b.release();
});

test("a lease is judged by the candidate's own clock: an hour of skew takes nothing from a live holder", async () => {
  const kc = kubeConfig(kubeconfig);
  const options = { namespace: ns, name: 'skewed', durationSeconds: 15 };
  const holder = new LeaderLease(kc, { ...options, identity: 'holder' });
  let clock = Date.now() + 3_600_000; // an hour ahead of the holder, whose renewTime it reads
  const ahead = new LeaderLease(kc, { ...options, identity: 'ahead', now: () => clock });
  assert.equal(await holder.tryTake(), true);
  assert.equal(await ahead.tryTake(), false, "the holder's renewTime is an hour old by this clock, but it just saw it");
  clock += 10_000;
  assert.equal(await holder.tryTake(), true, 'renewed');
  clock += 10_000;
  assert.equal(await ahead.tryTake(), false, 'a renewal seen 10 s ago: still held');
  clock += 16_000; // no renewal seen for longer than the lease
  assert.equal(await ahead.tryTake(), true, 'expired by what this candidate observed');
  assert.equal(await holder.tryTake(), false, 'the old holder now waits');
});

test('tandem install applies with least privilege; two `tandem operator` processes: one acts, the other takes over', async () => {
  const manifests = execFileSync(
    process.execPath,
    [cli, 'install', '--image', 'example/tandem:test', '--namespace', ns],
    {
      encoding: 'utf8',
    },
  );
  const docs = k8s.loadAllYaml(manifests) as k8s.KubernetesObject[];
  assert.deepEqual(
    docs.map((d) => `${d.kind}/${d.metadata?.name}`),
    [
      'CustomResourceDefinition/inferenceservices.tandem.dev',
      ...['ServiceAccount', 'Role', 'RoleBinding', 'Deployment'].map((k) => `${k}/tandem-operator`),
      ...['ServiceAccount', 'Role', 'RoleBinding', 'Deployment', 'Service'].map((k) => `${k}/tandem-gateway`),
    ],
  );
  const objects = k8s.KubernetesObjectApi.makeApiClient(kubeConfig(kubeconfig));
  for (const d of docs.slice(1, 4)) await objects.create(d);

  // The operators run as the installed ServiceAccount: its Role must be enough.
  const saConfig = await serviceAccountConfig('tandem-operator');
  const start = () => startOperator(saConfig);
  const a = start();
  const b = start();
  try {
    await until('one leader', 20_000, async () =>
      a.log.includes('leading') || b.log.includes('leading') ? true : undefined,
    );
    await custom().createNamespacedCustomObject({
      ...where,
      body: isvc('duo', { ...big(1), parallelism: { nodes: 1 }, resources: { gpu: 0 }, scheduling: {} }),
    });
    const first = await until('a Ready pod', 30_000, async () => {
      const ready = readyPods(await pods('duo'));
      return ready.length === 1 ? ready[0] : undefined;
    });
    const [leader, standby] = a.log.includes('leading') ? [a, b] : [b, a];
    // Its line can come after the pod is seen Ready: the log is the child's output, read as it comes.
    await until('the leader to say it created the group', 20_000, async () =>
      /group 0: group created/.test(leader.log) ? true : undefined,
    );
    assert.doesNotMatch(standby.log, /leading|group created/, 'the other one waits');

    leader.child.kill('SIGTERM');
    await until('the leader to exit', 20_000, async () => (leader.child.exitCode === 0 ? true : undefined));
    await until('the standby to lead', 20_000, async () => (standby.log.includes('leading') ? true : undefined));
    await core().deleteNamespacedPod({ namespace: ns, name: 'duo-0-0' });
    await until('a new pod, from the new leader', 30_000, async () => {
      const ready = readyPods(await pods('duo'));
      return ready.length === 1 && ready[0]!.metadata?.uid !== first.metadata?.uid ? true : undefined;
    });
    // Which it says depends on whether its first look came before the pod was deleted or after.
    await until('the new leader to say it made the group again', 20_000, async () =>
      /group 0: (leader 0 (was deleted by someone else|disappeared): recreating|group created)/.test(standby.log)
        ? true
        : undefined,
    );

    const table = execFileSync(process.execPath, [cli, 'status', '--kubeconfig', saConfig], { encoding: 'utf8' });
    assert.match(table, /^duo +1\/1 +1 +llamacpp +0 +Ready +1\/1 +1 /m);

    // Logs through the API server from KWOK's fake kubelet, as a user reads them (the operator's
    // ServiceAccount may not: it never reads a log): printed, then followed.
    const user = ['--kubeconfig', kubeconfig, '--namespace', ns];
    appendContainerLog(`before ${process.pid}`);
    const once = execFileSync(process.execPath, [cli, 'logs', 'duo', ...user], { encoding: 'utf8' });
    assert.match(once, new RegExp(`^before ${process.pid}$`, 'm'));
    const follower = spawn(process.execPath, [cli, 'logs', 'duo', '-f', ...user]);
    let followed = '';
    follower.stdout.on('data', (d: Buffer) => (followed += d.toString()));
    try {
      await until('the followed log to show the line that was there', 20_000, async () =>
        followed.includes(`before ${process.pid}`) ? true : undefined,
      );
      appendContainerLog(`after ${process.pid}`);
      await until('the followed log to show a line written later', 20_000, async () =>
        followed.includes(`after ${process.pid}`) ? true : undefined,
      );
    } finally {
      follower.kill('SIGINT');
    }
    assert.throws(
      () =>
        execFileSync(process.execPath, [cli, 'logs', 'duo', '--replica', '3', ...user], {
          stdio: 'pipe',
        }),
      /no pod duo-3-0 in namespace/,
    );
  } finally {
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    await custom()
      .deleteNamespacedCustomObject({ ...where, name: 'duo' })
      .catch(() => undefined);
  }
});

test('an operator that loses its lease stops acting and stands by, alive, to take it again', async () => {
  // As the installed ServiceAccount (the previous test applied its Role).
  const operator = startOperator(await serviceAccountConfig('tandem-operator'));
  const leases = apiClient(kubeconfig, k8s.CoordinationV1Api);
  const lease = { namespace: ns, name: 'tandem-operator' };
  const terms = () => operator.log.split('\n').filter((l) => l.includes('tandem: leading')).length;
  try {
    await until('it leads', 20_000, async () => (terms() === 1 ? true : undefined));
    // Another holder renews the lease under it, as after a partition: its renewals fail past the deadline.
    const thief = setInterval(() => {
      void leases
        .readNamespacedLease(lease)
        .then((l) => {
          l.spec = { ...l.spec, holderIdentity: 'thief', renewTime: new k8s.V1MicroTime(), leaseDurationSeconds: 15 };
          return leases.replaceNamespacedLease({ ...lease, body: l });
        })
        .catch(() => undefined); // a conflict with its renewal: the next tick wins
    }, 1000);
    try {
      await until('it says it lost the lease', 40_000, async () =>
        operator.log.includes('lost the lease') ? true : undefined,
      );
    } finally {
      clearInterval(thief);
    }
    assert.equal(operator.child.exitCode, null, 'still running');
    // The other holder is gone: its lease expires by this operator's clock, and it leads again.
    await until('it leads again', 40_000, async () => (terms() === 2 ? true : undefined));
    assert.equal(operator.child.exitCode, null);
    assert.doesNotMatch(operator.log, /unhandled rejection/);
  } finally {
    operator.child.kill('SIGTERM');
  }
});

/** A kubeconfig of the gateway's ServiceAccount, with the Role `tandem install` gives it. */
async function gatewayAccount(): Promise<string> {
  const docs = k8s.loadAllYaml(
    execFileSync(process.execPath, [cli, 'install', '--image', 'x', '--namespace', ns], { encoding: 'utf8' }),
  ) as k8s.KubernetesObject[];
  const objects = k8s.KubernetesObjectApi.makeApiClient(kubeConfig(kubeconfig));
  for (const d of docs.filter(
    (d) => d.metadata?.name === 'tandem-gateway' && /^(ServiceAccount|Role|RoleBinding)$/.test(d.kind!),
  ))
    await objects.create(d).catch((err: { code?: number }) => {
      if (err.code !== 409) throw err;
    });
  return serviceAccountConfig('tandem-gateway');
}

test('tandem gateway serves the Ready groups of a namespace at their leader pods, as its installed ServiceAccount', async () => {
  const saConfig = await gatewayAccount();
  const operator = new Operator(kubeConfig(kubeconfig), { namespace: ns, log: (l) => logs.push(l), resyncMs: 2000 });
  await operator.start();
  const engines: ChildProcess[] = [];
  const gateway = spawn(process.execPath, [cli, 'gateway', '--kubeconfig', saConfig, '--port', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let gatewayLog = '';
  gateway.stderr.on('data', (d: Buffer) => (gatewayLog += d.toString()));
  try {
    const spec = { ...big(2), parallelism: { nodes: 1 }, resources: { gpu: 0 }, scheduling: {} };
    await custom().createNamespacedCustomObject({
      ...where,
      body: isvc('web', { ...spec, model: { servedName: 'web-model', source: 'hf://org/web-GGUF' } }),
    });
    const leaders = await until('2 Ready groups', 30_000, async () => {
      const ready = readyPods(await pods('web'));
      return (await status('web')).readyGroups === '2/2' && ready.length === 2 ? ready : undefined;
    });
    // KWOK gives pods loopback addresses here: a real llama-server answers at each leader pod's IP.
    const { llamaServer } = await ensureLlamaBinaries(silentProgress);
    const model = await ensureTinyLlama((await ensureLlamaSource(silentProgress)).dir, silentProgress);
    for (const pod of leaders) {
      const ip = pod.status!.podIP!;
      assert.match(ip, /^127\./, 'pod IPs on loopback');
      const args = ['-m', model, '--host', ip, '--port', String(LEADER_PORT), '--alias', 'web-model', '-t', '1'];
      engines.push(spawn(llamaServer, args, { stdio: 'ignore' }));
    }
    const url = await until(
      'the gateway to listen',
      20_000,
      async () => /gateway (http:\S+)\/v1/.exec(gatewayLog)?.[1],
    );
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => [m.id, (m as unknown as { ready_replicas: number }).ready_replicas]),
      [['web-model', 2]],
    );
    const served = new Set<string>();
    await until('both leaders to answer through the gateway', 30_000, async () => {
      const { data, response } = await client.completions
        .create({ model: 'web-model', prompt: 'Hello', max_tokens: 4, temperature: 0 })
        .withResponse()
        .catch(() => ({ data: undefined, response: undefined }));
      if (data?.choices[0]?.text) served.add(response.headers.get('x-tandem-backend')!);
      return served.size === 2 ? true : undefined;
    });
    assert.deepEqual([...served].sort(), ['web/0', 'web/1']);

    // A group that is recreated leaves rotation at once; the other serves.
    await core().deleteNamespacedPod({ namespace: ns, name: 'web-0-0' });
    await until('web/0 out of rotation', 20_000, async () => {
      const m = await client.models.list();
      return (m.data[0] as unknown as { ready_replicas: number }).ready_replicas === 1 ? true : undefined;
    });
    for (let i = 0; i < 3; i++) {
      const { response } = await client.completions
        .create({ model: 'web-model', prompt: 'Again', max_tokens: 2 })
        .withResponse();
      assert.equal(response.headers.get('x-tandem-backend'), 'web/1');
    }
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /tandem_group_restarts\{service="web",replica="0"\} 1/);
    await custom().deleteNamespacedCustomObject({ ...where, name: 'web' });
  } finally {
    gateway.kill('SIGTERM');
    for (const e of engines) e.kill('SIGKILL');
    await operator.stop();
  }
  assert.doesNotMatch(gatewayLog, /forbidden/i, 'the Role is enough');
});

test("the control API on Kubernetes, as the gateway's installed ServiceAccount: apply (created, refused whole, rolling, updated, unchanged), scale, events, a member's log, delete; every answer as its OpenAPI description says", async () => {
  const saConfig = await gatewayAccount();
  const operator = new Operator(kubeConfig(kubeconfig), { namespace: ns, log: (l) => logs.push(l), resyncMs: 2000 });
  await operator.start();
  const gateway = spawn(process.execPath, [cli, 'gateway', '--kubeconfig', saConfig, '--port', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let gatewayLog = '';
  gateway.stderr.on('data', (d: Buffer) => (gatewayLog += d.toString()));
  try {
    const url = await until(
      'the gateway to listen',
      20_000,
      async () => /gateway (http:\S+)\/v1/.exec(gatewayLog)?.[1],
    );
    const api = controlApi(url);
    const { check } = await openApiChecker(api);
    const spec = (extra: Record<string, unknown> = {}) => ({
      ...big(1),
      parallelism: { nodes: 1 },
      resources: { gpu: 0 },
      scheduling: {},
      model: { servedName: 'ctl-model', source: 'hf://org/ctl-GGUF' },
      ...extra,
    });
    const applied = (answer: { body: unknown }) => (answer.body as { applied: unknown }).applied;

    assert.deepEqual(applied(check('/services', 'post', await api('POST', '/services', [isvc('ctl', spec())]))), [
      { name: 'ctl', result: 'created' },
    ]);
    const object = await custom().getNamespacedCustomObject({ ...where, name: 'ctl' });
    // Refused whole, with the validator's messages: the valid document is not applied either.
    const bad = isvc('bad', spec({ replicas: -1, model: { servedName: 'bad-model', source: 'hf://org/b-GGUF' } }));
    const refused = check(
      '/services',
      'post',
      await api('POST', '/services', [isvc('ctl', spec({ env: { A: '1' } })), bad]),
    );
    assert.equal(refused.status, 422);
    const { problems: expected } = validateDocument(bad);
    assert.deepEqual(
      (refused.body as { error: { problems: string[] } }).error.problems,
      expected.map((p) => `[1]: ${p}`),
    );
    const after = await custom().getNamespacedCustomObject({ ...where, name: 'ctl' });
    assert.deepEqual(
      [after.metadata.generation, after.spec],
      [object.metadata.generation, object.spec],
      'nothing was changed',
    );

    await until('the group Ready, with its member, in the control API', 30_000, async () => {
      const record = check('/services/{name}', 'get', await api('GET', '/services/ctl')).body as ServiceRecord;
      const g = record.status?.groups[0];
      return g?.phase === 'Ready' && g.members[0]?.state === 'Ready' && /^127\./.test(g.members[0].address)
        ? true
        : undefined;
    });
    check('/services', 'get', await api('GET', '/services'));
    const apply = async (doc: unknown) => applied(check('/services', 'post', await api('POST', '/services', doc)));
    assert.deepEqual(await apply(isvc('ctl', spec({ env: { A: '1' } }))), [{ name: 'ctl', result: 'rolling' }]);
    assert.deepEqual(await apply(isvc('ctl', spec({ env: { A: '1' }, replicas: 2 }))), [
      { name: 'ctl', result: 'updated' },
    ]);
    assert.deepEqual(await apply(isvc('ctl', spec({ env: { A: '1' }, replicas: 2 }))), [
      { name: 'ctl', result: 'unchanged' },
    ]);
    check('/services/{name}/scale', 'put', await api('PUT', '/services/ctl/scale', { replicas: 1 }));
    const scaled = (await custom().getNamespacedCustomObject({ ...where, name: 'ctl' })) as {
      spec: { replicas: number };
    };
    assert.equal(scaled.spec.replicas, 1);

    const events = await until("the group's events", 20_000, async () => {
      const answer = check('/events', 'get', await api('GET', '/events'));
      const items = (answer.body as { items: { service: string; replica?: number; message: string }[] }).items;
      return items.some((e) => e.service === 'ctl' && e.replica === 0 && /group created/.test(e.message))
        ? items
        : undefined;
    });
    assert.ok(events.length > 0);

    // KWOK's fake kubelet serves every container's log: a line written there comes back.
    appendContainerLog(`control ${process.pid}`);
    await until("the leader's log through the control API", 20_000, async () => {
      const answer = await api('GET', '/services/ctl/logs?replica=0&member=0&tail=100');
      return answer.status === 200 && String(answer.body).includes(`data: control ${process.pid}`) ? true : undefined;
    });
    check('/services/{name}/logs', 'get', await api('GET', '/services/ctl/logs?replica=7'));

    check('/services/{name}', 'delete', await api('DELETE', '/services/ctl'));
    await until('ctl gone', 30_000, async () =>
      check('/services/{name}', 'get', await api('GET', '/services/ctl')).status === 404 ? true : undefined,
    );
  } finally {
    gateway.kill('SIGTERM');
    await operator.stop();
    await custom()
      .deleteNamespacedCustomObject({ ...where, name: 'ctl' })
      .catch(() => undefined);
  }
  assert.doesNotMatch(gatewayLog, /forbidden/i, 'the Role is enough');
});

const cli = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** A kubeconfig that acts as a ServiceAccount of the test namespace (a token from the TokenRequest API). */
const serviceAccountConfig = (name: string) => accountConfig(kubeconfig, ns, name);

test('an operator whose status writes fail stays up, says why, backs off, and still runs the groups (status is display only)', async () => {
  const rbac = k8s.KubernetesObjectApi.makeApiClient(kubeConfig(kubeconfig));
  const role = (
    k8s.loadAllYaml(
      execFileSync(process.execPath, [cli, 'install', '--image', 'x', '--namespace', ns], { encoding: 'utf8' }),
    ) as k8s.KubernetesObject[]
  )
    .filter((d) => d.metadata?.name === 'tandem-operator' && /^(ServiceAccount|Role|RoleBinding)$/.test(d.kind!))
    .map((d) => {
      const copy = JSON.parse(JSON.stringify(d)) as k8s.KubernetesObject & {
        rules?: { resources: string[] }[];
        subjects?: { name: string }[];
        roleRef?: { name: string };
      };
      copy.metadata!.name = 'no-status';
      copy.rules = copy.rules?.filter((r) => !r.resources.includes(`${PLURAL}/status`));
      if (copy.subjects) copy.subjects[0]!.name = 'no-status';
      if (copy.roleRef) copy.roleRef.name = 'no-status';
      return copy;
    });
  for (const d of role) await rbac.create(d);
  const op = startOperator(await serviceAccountConfig('no-status'));
  try {
    await until('it leads', 20_000, async () => (op.log.includes('leading') ? true : undefined));
    await custom().createNamespacedCustomObject({
      ...where,
      body: isvc('mute', { ...big(1), parallelism: { nodes: 1 }, resources: { gpu: 0 }, scheduling: {} }),
    });
    await until('the forbidden status write reported', 20_000, async () =>
      /status of mute not written \(retrying in 2000 ms\): .*forbidden/.test(op.log) ? true : undefined,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the operator printed:\n${op.log}`);
    });
    // The groups' state is on their Services: the group runs although its status cannot be written.
    await until('the group Ready', 20_000, async () => (readyPods(await pods('mute')).length === 1 ? true : undefined));
    assert.equal(op.child.exitCode, null, `the operator exited:\n${op.log}`);
    const waits = [...op.log.matchAll(/status of mute not written \(retrying in (\d+) ms\)/g)].map((m) => Number(m[1]));
    assert.deepEqual(
      waits,
      [1000, 2000, 4000, 8000, 16000, 30000, 30000].slice(0, waits.length),
      'each retry waits longer',
    );
  } finally {
    op.child.kill('SIGTERM');
    await custom()
      .deleteNamespacedCustomObject({ ...where, name: 'mute' })
      .catch(() => undefined);
  }
});

/**
 * The ScaledObject `tandem render --to keda` writes for `service`, its scaler reached on loopback at
 * `port` (the gateway Service's DNS name in a cluster), polled every second.
 */
async function applyScaledObject(
  service: NonNullable<ReturnType<typeof validateDocument>['service']>,
  port: number,
): Promise<void> {
  const [scaled] = exportService(service, 'keda', ns) as (k8s.KubernetesObject & {
    spec: { pollingInterval: number; triggers: { metadata: Record<string, string> }[] };
  })[];
  assert.equal(scaled!.spec.triggers[0]!.metadata.scalerAddress, `tandem-gateway.${ns}.svc:9090`);
  scaled!.spec.triggers[0]!.metadata.scalerAddress = `127.0.0.1:${port}`;
  scaled!.spec.pollingInterval = 1;
  await custom().createNamespacedCustomObject({
    group: 'keda.sh',
    version: 'v1alpha1',
    namespace: ns,
    plural: 'scaledobjects',
    body: scaled,
  });
}

test("KEDA's operator, on the ScaledObject tandem render --to keda writes, applies Tandem's decision: from zero on a request the gateway holds, and back to zero", async () => {
  const kedaOperator = await ensureKedaOperator(silentProgress);
  const operator = new Operator(kubeConfig(kubeconfig), { namespace: ns, log: (l) => logs.push(l), resyncMs: 2000 });
  await operator.start();
  const children: ChildProcess[] = [];
  const engines = new Map<string, ChildProcess>();
  let gatewayLog = '';
  let keda: Keda | undefined;
  try {
    const spec = {
      ...big(0),
      model: { servedName: 'scaled-model', source: 'hf://org/scaled-GGUF' },
      parallelism: { nodes: 1 },
      resources: { gpu: 0 },
      scheduling: {},
      // At most 1: counts above 1 are the HPA's, through KEDA's metrics adapter (the two-gateways test).
      autoscaling: {
        minReplicas: 0,
        maxReplicas: 1,
        targetOngoingRequests: 1,
        scaleToZeroAfter: '5s',
        lookBackPeriod: '2s',
      },
    };
    const doc = isvc('scaled', spec);
    await custom().createNamespacedCustomObject({ ...where, body: doc });

    const gateway = spawn(
      process.execPath,
      [cli, 'gateway', '--kubeconfig', await gatewayAccount(), '--port', '0', '--keda-port', '0'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    children.push(gateway);
    gateway.stderr.on('data', (d: Buffer) => (gatewayLog += d.toString()));
    const kedaPort = await until(
      'the KEDA scaler to listen',
      20_000,
      async () => /KEDA external scaler on \S+:(\d+)/.exec(gatewayLog)?.[1],
    );
    const url = (await until(
      'the gateway to listen',
      20_000,
      async () => /gateway (http:\S+)\/v1/.exec(gatewayLog)?.[1],
    ))!;

    await applyScaledObject(validateDocument(doc).service!, Number(kedaPort));

    // KEDA's operator as its Deployment runs it, on loopback, certificates of its own.
    keda = await startKeda({ kubeconfig, namespace: ns, operator: kedaOperator });
    const replicas = async () =>
      ((await custom().getNamespacedCustomObject({ ...where, name: 'scaled' })) as { spec: { replicas: number } }).spec
        .replicas;
    await until(
      () => `KEDA to take the ScaledObject (its log: ${keda!.log().slice(-2000)})`,
      60_000,
      async () => {
        const so = (await custom().getNamespacedCustomObject({
          group: 'keda.sh',
          version: 'v1alpha1',
          namespace: ns,
          plural: 'scaledobjects',
          name: 'scaled',
        })) as { status?: { conditions?: { type: string; status: string }[] } };
        return so.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
      },
    );
    assert.equal(await replicas(), 0, 'idle: still at zero');

    // A real llama-server at each Ready leader pod's IP, as a kubelet would start it.
    const { llamaServer } = await ensureLlamaBinaries(silentProgress);
    const model = await ensureTinyLlama((await ensureLlamaSource(silentProgress)).dir, silentProgress);
    const serveLeaders = setInterval(() => {
      void pods('scaled').then((list) => {
        for (const pod of readyPods(list)) {
          const ip = pod.status?.podIP;
          if (!ip || pod.metadata?.labels?.[LABEL.member] !== '0' || engines.has(pod.metadata.uid!)) continue;
          const args = ['-m', model, '--host', ip, '--port', String(LEADER_PORT), '--alias', 'scaled-model', '-t', '1'];
          engines.set(pod.metadata.uid!, spawn(llamaServer, args, { stdio: 'ignore' }));
        }
      });
    }, 250);
    try {
      // One request at zero: held by the gateway, pushed to KEDA, which scales the object up.
      // KWOK marks a pod Ready at once, before the llama-server started for it has loaded (no
      // readiness probe runs here): its 503 "Loading model" is retried, as the client does by default.
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 5, timeout: 60_000 });
      const sent = Date.now();
      const answer = await client.completions.create({ model: 'scaled-model', prompt: 'Hello', max_tokens: 4 });
      assert.equal(answer.choices.length, 1);
      assert.ok((await replicas()) >= 1, 'KEDA scaled it up');
      logs.push(`from zero to an answer through KEDA: ${Date.now() - sent} ms`);

      assert.match(gatewayLog, /scaled: 0 → 1 replicas: .*scaling from zero/, "Tandem's decision, which KEDA applied");
      // Idle (scaleToZeroAfter: 5s): Tandem's decision goes to zero, KEDA applies it, the pods go.
      await until(
        () => `KEDA to scale to zero (its log: ${keda!.log().slice(-1500)}; the gateway: ${gatewayLog.slice(-1500)})`,
        90_000,
        async () => ((await replicas()) === 0 && (await pods('scaled')).length === 0 ? true : undefined),
      );
    } finally {
      clearInterval(serveLeaders);
    }
    assert.match(gatewayLog, /scaled: 1 → 0 replicas: no request for/);
    const events = (await core().listNamespacedEvent({ namespace: ns })).items.filter(
      (e) => e.involvedObject.name === 'scaled' && e.source?.component === 'tandem-gateway',
    );
    assert.deepEqual(
      events.map((e) => e.reason).sort(),
      ['Draining', 'ScaledDown', 'ScaledUp'],
      "each decision is an Event on the object, from the gateway's autoscaler",
    );
    const shown = execFileSync(process.execPath, [cli, 'status', '--kubeconfig', kubeconfig, '--namespace', ns], {
      encoding: 'utf8',
    });
    assert.match(shown, /last scaling .*: 1 → 0 replicas: no request for/);
    assert.doesNotMatch(gatewayLog, /forbidden/i, "the gateway's Role is enough");
    await custom().deleteNamespacedCustomObject({ ...where, name: 'scaled' });
  } finally {
    for (const c of children) c.kill('SIGTERM');
    for (const e of engines.values()) e.kill('SIGKILL');
    await keda?.stop();
    await operator.stop();
  }
});

test('a group a gateway found unresponsive (an annotation saying when) is recreated whole, once; the other group is left alone', async () => {
  const operator = new Operator(kubeConfig(kubeconfig), { namespace: ns, log: (l) => logs.push(l), resyncMs: 2000 });
  await operator.start();
  try {
    await custom().createNamespacedCustomObject({ ...where, body: isvc('stuck', big(2)) });
    await until('both groups Ready', 60_000, async () =>
      (await status('stuck')).readyReplicas === 2 ? true : undefined,
    );
    const uids = async (replica: number) =>
      (await pods('stuck'))
        .filter((p) => p.metadata?.labels?.[LABEL.replica] === String(replica) && !p.metadata.deletionTimestamp)
        .map((p) => p.metadata!.uid!)
        .sort();
    const [before0, before1] = [await uids(0), await uids(1)];
    // What `tandem gateway` writes when a replica's streams stop with no word from it.
    await custom().patchNamespacedCustomObject(
      {
        ...where,
        name: 'stuck',
        body: { metadata: { annotations: { [`${UNRESPONSIVE_PREFIX}0`]: new Date().toISOString() } } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await until('group 0 recreated and Ready', 60_000, async () => {
      const s = await status('stuck');
      const now0 = await uids(0);
      return s.readyReplicas === 2 && now0.length === 2 && !now0.some((u) => before0.includes(u)) ? true : undefined;
    });
    assert.deepEqual(await uids(1), before1, 'the other group was left alone');
    assert.equal(groupOf(await status('stuck'), 0).restarts, 1);
    const events = (await core().listNamespacedEvent({ namespace: ns })).items.filter(
      (e) => e.involvedObject.name === 'stuck' && e.reason === 'Unresponsive',
    );
    assert.equal(
      events.length,
      1,
      'recreated once: the annotation, read again with every status write since, finds a newer group',
    );
    await custom().deleteNamespacedCustomObject({ ...where, name: 'stuck' });
  } finally {
    await operator.stop();
  }
});

test('two gateways, one load: each autoscaler decides on what both have in hand, so KEDA is told the count the whole load asks for, whichever it asks, and its HPA applies it', async () => {
  // The HPA's part needs KEDA's metrics adapter, which runs on the real node's bridge.
  const withHpa = (await runningCluster())?.nodeBin !== undefined;
  const kedaBinaries = withHpa
    ? { operator: await ensureKedaOperator(silentProgress), adapter: await ensureKedaAdapter(silentProgress) }
    : undefined;
  const operator = new Operator(kubeConfig(kubeconfig), { namespace: ns, log: (l) => logs.push(l), resyncMs: 2000 });
  await operator.start();
  const children: ChildProcess[] = [];
  let keda: Keda | undefined;
  // Stands in for the leader's engine: takes each request and answers only when the test lets it
  // go, so that what each gateway has in hand stays put while the decisions are read.
  const held: ServerResponse[] = [];
  let engine: Server | undefined;
  try {
    const spec = {
      ...big(1), // KEDA would hold it there; none runs here
      model: { servedName: 'pooled-model', source: 'hf://org/pooled-GGUF' },
      parallelism: { nodes: 1 },
      resources: { gpu: 0 },
      scheduling: {},
      autoscaling: {
        minReplicas: 1,
        maxReplicas: 4,
        targetOngoingRequests: 1,
        upscaleDelay: '1s',
        lookBackPeriod: '2s',
      },
    };
    await custom().createNamespacedCustomObject({ ...where, body: isvc('pooled', spec) });
    const leader = await until('the first group Ready', 60_000, async () => {
      const ready = readyPods(await pods('pooled')).find((p) => p.metadata?.labels?.[LABEL.member] === '0');
      return (await status('pooled')).readyReplicas === 1 ? ready?.status?.podIP : undefined;
    });
    // It holds completions only; anything else (the gateway asking llama-server's /slots) is not found.
    engine = createServer((req, res) => {
      if (req.method === 'POST') held.push(res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => engine!.listen(LEADER_PORT, leader, r));

    const account = await gatewayAccount();
    const ports = [await freePort(), await freePort()];
    const gateways = ports.map((port, i) => {
      const peer = `127.0.0.1:${ports[1 - i]}`;
      const args = [
        cli,
        'gateway',
        '--kubeconfig',
        account,
        '--port',
        '0',
        '--keda-port',
        String(port),
        '--peers',
        peer,
      ];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(child);
      const g = { child, log: '' };
      child.stderr.on('data', (d: Buffer) => (g.log += d.toString()));
      return g;
    });
    const urls = await Promise.all(
      gateways.map((g) => until('a gateway to listen', 20_000, async () => /gateway (http:\S+)\/v1/.exec(g.log)?.[1])),
    );
    // What each gateway tells KEDA: the count decided × the target (1).
    const pkg = externalScalerPackage() as { externalscaler: { ExternalScaler: grpc.ServiceClientConstructor } };
    const scalers = ports.map(
      (p) =>
        new pkg.externalscaler.ExternalScaler(
          `127.0.0.1:${p}`,
          grpc.credentials.createInsecure(),
        ) as unknown as grpc.Client & {
          GetMetrics: (
            req: object,
            cb: (err: Error | null, res: { metricValues: { metricValue: number }[] }) => void,
          ) => void;
        },
    );
    const told = (c: (typeof scalers)[number]) =>
      new Promise<number>((resolve, reject) =>
        c.GetMetrics(
          {
            scaledObjectRef: { name: 'pooled', namespace: ns, scalerMetadata: {} },
            metricName: 'tandem-pooled-requests',
          },
          (err, res) => (err ? reject(err) : resolve(res.metricValues[0]!.metricValue)),
        ),
      );
    try {
      await until('both gateways to serve the group', 20_000, async () =>
        (await Promise.all(scalers.map(told))).every((v) => v === 1) ? true : undefined,
      );
      // Two requests at each gateway: each alone has 2 in hand (2 replicas at target 1); the whole load asks for 4.
      const requests = urls.flatMap((url) =>
        [0, 1].map(() =>
          fetch(`${url}/v1/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'pooled-model', prompt: 'Hello', max_tokens: 1 }),
          }).catch(() => undefined),
        ),
      );
      await until('the engine to hold all four requests', 20_000, async () => (held.length === 4 ? true : undefined));
      await until(
        () => `both gateways to tell KEDA 4 (the gateways said: ${gateways.map((g) => g.log.slice(-600)).join(' | ')})`,
        30_000,
        async () => ((await Promise.all(scalers.map(told))).every((v) => v === 4) ? true : undefined),
      );
      for (const g of gateways) assert.match(g.log, /pooled: \d → 4 replicas/);
      if (kedaBinaries) {
        // KEDA as deployed, its ScaledObject as rendered (its scaler one of the gateways: in a
        // cluster, their Service); the HPA it makes reads the count through the metrics adapter.
        keda = await startKeda({ kubeconfig, namespace: ns, ...kedaBinaries });
        await applyScaledObject(validateDocument(isvc('pooled', spec)).service!, ports[0]!);
        await until(
          () => `the HPA to scale the service to 4 (KEDA said: ${keda!.log().slice(-3000)})`,
          120_000,
          async () => {
            const o = (await custom().getNamespacedCustomObject({ ...where, name: 'pooled' })) as {
              spec: { replicas: number };
            };
            return o.spec.replicas === 4 ? true : undefined;
          },
        );
        // Set by the HPA KEDA made, from the external metric the adapter served (4 at target 1).
        const hpa = await apiClient(kubeconfig, k8s.AutoscalingV2Api).readNamespacedHorizontalPodAutoscaler({
          name: 'keda-hpa-pooled',
          namespace: ns,
        });
        assert.equal(hpa.status?.desiredReplicas, 4);
        assert.equal(hpa.status?.currentMetrics?.[0]?.external?.current.averageValue, '4');
      }
      for (const res of held) res.end(JSON.stringify({ choices: [{ text: 'x' }] }));
      await Promise.all(requests);
    } finally {
      for (const c of scalers) c.close();
    }
    await custom().deleteNamespacedCustomObject({ ...where, name: 'pooled' });
  } finally {
    for (const c of children) c.kill('SIGTERM');
    for (const res of held) res.destroy();
    engine?.close();
    await keda?.stop();
    await operator.stop();
  }
});
