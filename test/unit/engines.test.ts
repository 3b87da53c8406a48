// The vLLM and SGLang renderers: the command lines each member runs, against the engines' documented
// multi-node flags (vLLM: --nnodes/--node-rank/--master-addr/--master-port/--headless, or a Ray
// cluster per group; SGLang: --nnodes/--node-rank/--dist-init-addr with a group-wide --tp).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateDocument } from '../../src/spec/load.js';
import { vllmServiceTemplate, type VllmTarget } from '../../src/engine/vllm/service.js';
import { sglangServiceTemplate } from '../../src/engine/sglang/service.js';
import { clusterServiceTemplate } from '../../src/platforms/kubernetes/render.js';
import { memberHost, memberPod } from '../../src/platforms/kubernetes/objects.js';
import type { InferenceService } from '../../src/spec/schema.js';
import { expandEnvRefs } from '../../src/platforms/local/env-refs.js';
import type { MemberTemplate } from '../../src/core/group.js';

/** The command line as the member runs it: $(VAR) expanded from its environment, as a kubelet does. */
const run = (m: MemberTemplate) => m.args.map((a) => expandEnvRefs(a, m.env)).join(' ');

function service(spec: Record<string, unknown>): InferenceService {
  const { service, problems } = validateDocument({
    apiVersion: 'tandem.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name: 'big' },
    spec: { model: { servedName: 'big', source: 'hf://org/big' }, engine: { type: 'vllm' }, ...spec },
  });
  assert.deepEqual(problems, []);
  return service!;
}
const problems = (spec: Record<string, unknown>) =>
  validateDocument({
    apiVersion: 'tandem.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name: 'big' },
    spec: { model: { servedName: 'big', source: 'hf://org/big' }, ...spec },
  }).problems;

const LOCAL: VllmTarget = {
  vllm: '/venv/bin/vllm',
  ray: '/venv/bin/ray',
  python: '/venv/bin/python3',
  env: { GLOO_SOCKET_IFNAME: 'lo' },
  version: 'vllm 0.32.0',
};
const endpoints = (n: number) => Array.from({ length: n }, (_, i) => ({ host: `127.0.0.${i + 2}`, port: 8000 + i }));
const ref = { service: 'big', replica: 0 };

test('vLLM mp: every member runs vllm serve with its rank; the leader serves, workers run headless', () => {
  const t = vllmServiceTemplate(service({ parallelism: { nodes: 2, tensor: 2, pipeline: 1 } }), '/m', LOCAL, 2);
  const group = t.render(ref, endpoints(2));
  const [leader, worker] = group.members;
  const multiNode = (rank: number) =>
    `--distributed-executor-backend mp --nnodes 2 --node-rank ${rank} --master-addr 127.0.0.2 --master-port 29500`;
  assert.equal(leader!.command, '/venv/bin/vllm');
  assert.equal(
    run(leader!),
    `serve /m --served-model-name big --host 127.0.0.2 --port 8000 --tensor-parallel-size 2 --pipeline-parallel-size 1 ${multiNode(0)}`,
  );
  assert.equal(run(worker!), `serve /m --tensor-parallel-size 2 --pipeline-parallel-size 1 ${multiNode(1)} --headless`);
  const three = vllmServiceTemplate(service({ parallelism: { nodes: 3, pipeline: 3 } }), '/m', LOCAL, 3);
  const workers = three.render(ref, endpoints(3)).members.slice(1);
  assert.deepEqual(workers[0]!.args, workers[1]!.args, 'one worker template for every worker (ranks from the env)');
  assert.deepEqual(leader!.readiness, { kind: 'http', path: '/health' });
  assert.deepEqual(worker!.readiness, { kind: 'running' }, 'a headless worker has no API to probe');
  assert.equal(worker!.env.VLLM_HOST_IP, '127.0.0.3');
  assert.equal(worker!.env.GLOO_SOCKET_IFNAME, 'lo');
  assert.equal(worker!.env.LWS_LEADER_ADDRESS, '127.0.0.2');
  assert.equal(group.startupPolicy, 'LeaderCreated', 'the leader waits for its workers at start-up: start together');

  const single = vllmServiceTemplate(service({}), '/m', LOCAL, 1).render(ref, endpoints(1)).members;
  assert.equal(single.length, 1);
  assert.ok(!single[0]!.args.includes('--nnodes'), 'one node: no multi-node flags');

  const withArgs = service({
    parallelism: { nodes: 2, pipeline: 2 },
    engine: { type: 'vllm', args: ['--max-model-len', '512'] },
  });
  for (const m of vllmServiceTemplate(withArgs, '/m', LOCAL, 2).render(ref, endpoints(2)).members) {
    assert.deepEqual(m.args.slice(-2), ['--max-model-len', '512'], 'every rank must agree on the model shape');
  }
});

test('vLLM Ray: the leader forms the cluster, waits for every node, then serves with the Ray executor', () => {
  const spec = {
    parallelism: { nodes: 3, tensor: 1, pipeline: 3 },
    engine: { type: 'vllm', distributedExecutorBackend: 'ray' },
  };
  const [leader, w1, w2] = vllmServiceTemplate(service(spec), '/m', LOCAL, 3).render(ref, endpoints(3)).members;
  assert.equal(leader!.command, '/bin/sh');
  const [flag, script, name, ...serve] = leader!.args;
  assert.equal(flag, '-c');
  assert.equal(name, 'ray-leader');
  assert.match(
    script!,
    /^\/venv\/bin\/ray start --head --port 6379 --node-ip-address 127\.0\.0\.2 --disable-usage-stats --block &\n/,
  );
  assert.match(script!, /ray\.nodes\(\).*= "3" \]/, 'waits for all 3 nodes');
  assert.match(script!, /exec "\$@"$/);
  assert.equal(
    serve.join(' '),
    '/venv/bin/vllm serve /m --served-model-name big --host 127.0.0.2 --port 8000 --tensor-parallel-size 1 --pipeline-parallel-size 3 --distributed-executor-backend ray',
  );
  for (const [w, host] of [
    [w1, '127.0.0.3'],
    [w2, '127.0.0.4'],
  ] as const) {
    assert.equal(w!.command, '/venv/bin/ray');
    assert.equal(run(w!), `start --address 127.0.0.2:6379 --node-ip-address ${host} --block --disable-usage-stats`);
  }
});

test('SGLang: --tp is the whole group, ranks find rank 0 through --dist-init-addr', () => {
  const svc = service({ engine: { type: 'sglang' }, parallelism: { nodes: 2 }, resources: { gpu: 8 }, replicas: 1 });
  const t = sglangServiceTemplate(
    { ...svc, spec: { ...svc.spec, parallelism: { ...svc.spec.parallelism, tensor: 16, pipeline: 1 } } },
    'org/big',
    { python: 'python3', bindAll: true, version: 'img' },
    2,
  );
  const [leader, worker] = t.render(ref, [
    { host: 'big-0-0.big-0.ns', port: 8080 },
    { host: 'big-0-1.big-0.ns', port: 50052 },
  ]).members;
  const common = '-m sglang.launch_server --model-path org/big --served-model-name big --tp 16 --pp-size 1 --nnodes 2';
  assert.equal(
    run(leader!),
    `${common} --node-rank 0 --dist-init-addr big-0-0.big-0.ns:20000 --host 0.0.0.0 --port 8080`,
  );
  assert.ok(run(worker!).startsWith(`${common} --node-rank 1 --dist-init-addr big-0-0.big-0.ns:20000`));
  assert.deepEqual(worker!.readiness, { kind: 'running' });
});

/** A 2-node group's pods, as the operator creates them in namespace ns. */
function twoNodePods(svc: InferenceService) {
  const obj = { service: svc, namespace: 'ns', uid: 'u' };
  const group = clusterServiceTemplate(obj).render(
    ref,
    [0, 1].map((i) => ({ host: memberHost(ref, i, 'ns'), port: i === 0 ? 8080 : 50052 })),
  );
  return group.members.map((m) => memberPod(obj, ref, m, group.hash));
}

test('vLLM in pods: the image default, the hub repo, no probe on a headless worker, group DNS as master address', () => {
  const svc = service({
    parallelism: { nodes: 2 },
    resources: { gpu: 8 },
    model: { servedName: 'big', source: 'hf://meta-llama/Llama-3.1-405B' },
  });
  const [leader, worker] = twoNodePods(svc);
  const c = leader!.spec!.containers[0]!;
  assert.equal(c.image, 'vllm/vllm-openai:v0.11.0');
  assert.equal(c.command![0], 'vllm');
  assert.ok(
    c
      .args!.join(' ')
      .includes(
        'serve meta-llama/Llama-3.1-405B --served-model-name big --host 0.0.0.0 --port 8080 --tensor-parallel-size 8 --pipeline-parallel-size 2',
      ),
  );
  assert.ok(c.args!.join(' ').includes('--master-addr $(LWS_LEADER_ADDRESS)'), 'the kubelet expands it');
  assert.equal(c.env!.find((e) => e.name === 'LWS_LEADER_ADDRESS')?.value, 'big-0-0.big-0.ns');
  assert.ok(c.readinessProbe?.httpGet);
  assert.equal(worker!.spec!.containers[0]!.readinessProbe, undefined);
  assert.equal(
    c.env!.find((e) => e.name === 'VLLM_HOST_IP'),
    undefined,
    'a pod finds its own address',
  );
});

test('llama.cpp in pods: an RPC worker is probed only until its port first accepts (it serves one client at a time)', () => {
  const svc = service({
    engine: { type: 'llamacpp' },
    parallelism: { nodes: 2 },
    startupTimeout: '10m',
    model: { servedName: 'm', source: 'pvc://models/m.gguf' },
  });
  const [leader, worker] = twoNodePods(svc);
  assert.ok(leader!.spec!.containers[0]!.readinessProbe?.httpGet, 'the leader: its HTTP health, all along');
  const w = worker!.spec!.containers[0]!;
  // ggml-rpc-server accepts one connection and serves it: a probe connecting every 10 s fills its
  // backlog of one, later probes time out, and a healthy group would go NotReady mid-serve.
  assert.equal(w.readinessProbe, undefined);
  assert.equal(w.startupProbe?.tcpSocket?.port, 50052);
  assert.ok(
    w.startupProbe!.periodSeconds! * w.startupProbe!.failureThreshold! > 600,
    "the kubelet never gives up before the operator's startupTimeout",
  );
  // Not init of its PID namespace: as init, ggml-rpc-server ignores a deletion's SIGTERM (no handler).
  assert.equal(worker!.spec!.shareProcessNamespace, true);
  const template = (s: InferenceService) => clusterServiceTemplate({ service: s, namespace: 'ns', uid: 'u' });
  assert.equal(template(svc).exclusiveCache, true, 'a llama-server slot takes its cached prompt while it runs');
  assert.equal(template(service({ resources: { gpu: 8 } })).exclusiveCache, undefined, 'vLLM shares cached blocks');
});

test('$(VAR) references expand as a kubelet expands them', () => {
  const env = { A: 'x', EMPTY: '' };
  assert.equal(expandEnvRefs('$(A)-$(EMPTY)-$(B)-$$(A)-$(echo hi)', env), 'x--$(B)-$(A)-$(echo hi)');
});

test('engine options are checked against the engine', () => {
  assert.deepEqual(problems({ engine: { type: 'sglang', distributedExecutorBackend: 'ray' } }), [
    'spec.engine.distributedExecutorBackend: is for vllm, not sglang',
  ]);
  assert.match(
    problems({ engine: { type: 'vllm' }, parallelism: { nodes: 2 }, startupPolicy: 'LeaderReady' }).join('\n'),
    /spec.startupPolicy: cannot be LeaderReady for a multi-node vllm group/,
  );
  assert.deepEqual(problems({ engine: { type: 'vllm' }, parallelism: { nodes: 1 }, startupPolicy: 'LeaderReady' }), []);
});

test('spec.model.task embed: every member of a vLLM group runs the pooling runner; SGLang serves embeddings; the engine args still come last', () => {
  const embed = {
    model: { servedName: 'big', source: 'hf://org/big', task: 'embed' },
    engine: { type: 'vllm', args: ['--x'] },
  };
  const members = vllmServiceTemplate(service({ ...embed, parallelism: { nodes: 2 } }), '/m', LOCAL, 2).render(
    ref,
    endpoints(2),
  ).members;
  for (const m of members) assert.match(run(m), /--runner pooling.* --x$/);
  const plain = vllmServiceTemplate(service({ parallelism: { nodes: 2 } }), '/m', LOCAL, 2).render(ref, endpoints(2));
  for (const m of plain.members) assert.doesNotMatch(run(m), /--runner/);
  const sglang = sglangServiceTemplate(
    service({ ...embed, engine: { type: 'sglang', args: ['--x'] }, resources: { gpu: 1 } }),
    'org/big',
    { python: 'python3', bindAll: true, version: 'img' },
    1,
  ).render(ref, endpoints(1)).members;
  assert.match(run(sglang[0]!), /--is-embedding --x$/);
  assert.deepEqual(problems({ model: { servedName: 'b', source: 's', task: 'rank' }, engine: { type: 'vllm' } }), [
    'spec.model.task: must be generate or embed',
  ]);
});
