// The pure Kubernetes builders: what a member's pod carries, before any API server sees it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateDocument } from '../../src/spec/load.js';
import { clusterServiceTemplate } from '../../src/platforms/kubernetes/render.js';
import {
  groupNetworkPolicy,
  groupPodGroup,
  memberHost,
  memberPod,
  type ServiceObject,
} from '../../src/platforms/kubernetes/objects.js';

function object(spec: Record<string, unknown>): ServiceObject {
  const { service, problems } = validateDocument({
    apiVersion: 'tandem.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name: 'm' },
    spec: { model: { servedName: 'm', source: 'pvc://models/llama/70b.gguf' }, engine: { type: 'llamacpp' }, ...spec },
  });
  assert.deepEqual(problems, []);
  return { service: service!, namespace: 'ns', uid: 'u1' };
}

test('a member pod: group env, image, GPUs, /dev/shm, the model volume read-only, overrides merged', () => {
  const obj = object({
    parallelism: { nodes: 2 },
    resources: { gpu: 8, memory: '64Gi' },
    scheduling: { queue: 'team-a' },
    workerTemplate: {
      metadata: { annotations: { 'k8s.v1.cni.cncf.io/networks': 'roce' }, labels: { team: 'a' } },
      resources: { 'rdma/hca': 1 },
      env: [{ name: 'NCCL_IB_HCA', value: 'mlx5' }],
    },
  });
  const template = clusterServiceTemplate(obj);
  const ref = { service: 'm', replica: 3 };
  const endpoints = Array.from({ length: 2 }, (_, i) => ({
    host: memberHost(ref, i, 'ns'),
    port: i === 0 ? 8080 : 50052,
  }));
  const group = template.render(ref, endpoints);
  const pod = memberPod(obj, ref, group.members[1]!, group.hash);
  const c = pod.spec!.containers[0]!;
  assert.equal(pod.metadata!.name, 'm-3-1');
  assert.equal(pod.spec!.hostname, 'm-3-1');
  assert.equal(pod.spec!.subdomain, 'm-3');
  assert.equal(c.image, 'ghcr.io/ggml-org/llama.cpp:full');
  assert.deepEqual(c.args, ['--host', '0.0.0.0', '--port', '50052']);
  const env = Object.fromEntries(c.env!.map((e) => [e.name, e.value]));
  assert.deepEqual(
    [env.LWS_LEADER_ADDRESS, env.LWS_GROUP_SIZE, env.LWS_WORKER_INDEX, env.NCCL_IB_HCA],
    ['m-3-0.m-3.ns', '2', '1', 'mlx5'],
  );
  assert.deepEqual(c.resources!.limits, { 'rdma/hca': '1', memory: '64Gi', 'nvidia.com/gpu': '8' });
  assert.deepEqual(
    c.volumeMounts!.map((v) => [v.mountPath, v.readOnly === true]),
    [
      ['/dev/shm', false],
      ['/models', true],
    ],
  );
  assert.deepEqual(pod.spec!.volumes![1], {
    name: 'model',
    persistentVolumeClaim: { claimName: 'models', readOnly: true },
  });
  assert.equal(pod.metadata!.annotations!['k8s.v1.cni.cncf.io/networks'], 'roce');
  assert.equal(pod.metadata!.labels!.team, 'a');
  assert.equal(pod.metadata!.labels!['kueue.x-k8s.io/queue-name'], 'team-a');
  assert.equal(pod.metadata!.labels!['kueue.x-k8s.io/pod-group-name'], `m-3-${group.hash}`);
  assert.equal(pod.metadata!.annotations!['kueue.x-k8s.io/pod-group-total-count'], '2');
  const leader = memberPod(obj, ref, group.members[0]!, group.hash).spec!.containers[0]!;
  assert.ok(
    leader
      .args!.join(' ')
      .includes('--model /models/llama/70b.gguf --alias m --host 0.0.0.0 --port 8080 --rpc m-3-1.m-3.ns:50052'),
  );
  assert.equal(leader.resources!.limits!['rdma/hca'], undefined, 'worker overrides stay on workers');
});

test('a queue with Volcano: one PodGroup per group and template (the whole group or none), named by every pod', () => {
  const render = (spec: Record<string, unknown>) => {
    const obj = object({ parallelism: { nodes: 3 }, ...spec });
    const ref = { service: 'm', replica: 1 };
    const endpoints = Array.from({ length: 3 }, (_, i) => ({ host: memberHost(ref, i, 'ns'), port: 8080 }));
    const group = clusterServiceTemplate(obj).render(ref, endpoints);
    return { obj, ref, group, pods: group.members.map((m) => memberPod(obj, ref, m, group.hash)) };
  };
  const { obj, ref, group, pods } = render({ scheduling: { queue: 'research', gangScheduler: 'volcano' } });
  const pg = groupPodGroup(obj, ref, group.members[0]!, group.hash) as unknown as {
    metadata: { name: string; labels: Record<string, string>; ownerReferences: { uid: string }[] };
    spec: unknown;
  };
  assert.equal(pg.metadata.name, `m-1-${group.hash}`);
  assert.deepEqual(pg.spec, { minMember: 3, queue: 'research' });
  assert.equal(pg.metadata.ownerReferences[0]!.uid, 'u1');
  assert.equal(pg.metadata.labels['tandem.dev/template-hash'], group.hash);
  // The gang is admitted once every pod exists: all are created at once, and llama.cpp's leader
  // waits in its container for its workers' ports rather than being created after them.
  assert.equal(group.startupPolicy, 'LeaderCreated');
  const leader = pods[0]!.spec!.containers[0]!;
  assert.equal(leader.command![0], '/bin/bash');
  assert.equal(
    leader.args![1],
    'until (exec 3<>/dev/tcp/m-1-1.m-1.ns/8080) 2>/dev/null && (exec 3<>/dev/tcp/m-1-2.m-1.ns/8080) 2>/dev/null; do sleep 1; done; exec "$@"',
  );
  assert.equal(leader.args![3], '/app/llama-server');
  for (const pod of pods) {
    assert.equal(pod.spec!.schedulerName, 'volcano');
    assert.equal(pod.metadata!.annotations!['scheduling.k8s.io/group-name'], pg.metadata.name);
    assert.equal(pod.metadata!.labels!['kueue.x-k8s.io/queue-name'], undefined);
  }
  // Kueue (the default with a queue) needs no object of its own; without a queue, neither.
  const kueue = render({ scheduling: { queue: 'research' } });
  assert.equal(groupPodGroup(kueue.obj, kueue.ref, kueue.group.members[0]!, kueue.group.hash), undefined);
  assert.equal(kueue.pods[2]!.spec!.schedulerName, undefined);
  assert.equal(kueue.pods[2]!.metadata!.annotations!['kueue.x-k8s.io/pod-group-total-count'], '3');
  const plain = render({});
  assert.equal(plain.group.startupPolicy, 'WorkersReady', 'without a gang, the group planner orders the start');
  assert.equal(groupPodGroup(plain.obj, plain.ref, plain.group.members[0]!, plain.group.hash), undefined);
  assert.deepEqual(plain.pods[0]!.metadata!.annotations, {});
});

test('sources a pod cannot reach are clear errors', () => {
  assert.throws(
    () => clusterServiceTemplate(object({ model: { servedName: 'm', source: 'tandem://tiny-llama' } })),
    /spec.model.source: tandem:\/\/tiny-llama is not reachable from pods: use hf:\/\/ORG\/NAME or pvc:\/\/CLAIM\/PATH.gguf/,
  );
});

test('the NetworkPolicy admits the gateway from the install namespace only, as the API server names the field', () => {
  const policy = groupNetworkPolicy(
    object({ parallelism: { nodes: 2 } }),
    { service: 'm', replica: 0 },
    'tandem-system',
  );
  const text = JSON.stringify(policy);
  assert.doesNotMatch(text, /_from/, "the client library's internal name must not reach YAML or the API");
  const [own, gateway] = policy.spec.ingress as { from: Record<string, unknown>[]; ports?: unknown[] }[];
  assert.deepEqual(own!.from, [
    { podSelector: { matchLabels: { 'tandem.dev/service': 'm', 'tandem.dev/replica': '0' } } },
  ]);
  assert.deepEqual(gateway!.from, [
    {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'tandem-system' } },
      podSelector: { matchLabels: { 'tandem.dev/gateway': 'true' } },
    },
  ]);
});

test('user pod fields pass through as written, whatever fields they have', () => {
  const volume = { name: 'cache', ephemeral: { volumeClaimTemplate: { spec: { futureField: { x: 1 } } } } };
  const obj = object({
    parallelism: { nodes: 2 },
    leaderTemplate: { volumes: [volume], env: [{ name: 'A', value: '1', x: true }] },
  });
  const template = clusterServiceTemplate(obj);
  const ref = { service: 'm', replica: 0 };
  const group = template.render(ref, [
    { host: 'a', port: 8080 },
    { host: 'b', port: 50052 },
  ]);
  const pod = memberPod(obj, ref, group.members[0]!, group.hash);
  assert.deepEqual(pod.spec.volumes.at(-1), volume);
  assert.deepEqual(pod.spec.containers[0]!.env[0], { name: 'A', value: '1', x: true });
});

test('tandem.dev/ labels in a pod override are refused: they decide which pods reach a group', () => {
  const { problems } = validateDocument({
    apiVersion: 'tandem.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name: 'm' },
    spec: {
      model: { servedName: 'm', source: 'pvc://models/m.gguf' },
      engine: { type: 'llamacpp' },
      workerTemplate: { metadata: { labels: { 'tandem.dev/gateway': 'true' } } },
    },
  });
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /workerTemplate\.metadata\.labels.*tandem\.dev\/ labels are set by Tandem/);
});

test('policies never change the template hash; what the members run does', () => {
  const vllm = { model: { servedName: 'm', source: 'pvc://models/llama' }, engine: { type: 'vllm' } };
  const hash = (spec: Record<string, unknown>) =>
    clusterServiceTemplate(object({ ...vllm, parallelism: { nodes: 2 }, ...spec })).hash;
  const base = hash({});
  for (const policy of [
    { startupTimeout: '45m' },
    { restartPolicy: 'None' },
    { startupPolicy: 'WorkersReady' },
    { scheduling: { placementTimeout: '1m' } },
    { failurePolicy: { maxRestarts: 2 } },
    { rollout: { maxSurge: 1 } },
    { replicas: 3 },
  ]) {
    assert.equal(hash(policy), base, JSON.stringify(policy));
  }
  assert.notEqual(hash({ engine: { type: 'vllm', args: ['--max-model-len', '4096'] } }), base);
  assert.notEqual(hash({ env: { A: '1' } }), base);
  assert.notEqual(
    hash({ scheduling: { queue: 'q' }, startupPolicy: 'WorkersReady' }),
    hash({ scheduling: { queue: 'q' } }),
    'with a gang queue the leader waits for its workers in its container: the startup policy is what it runs',
  );
});
