// Real groups on the embedded default: llama-server + ggml-rpc-server processes, the project's model.
import { test } from 'node:test';
import { createServer, type AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { TINY_LLAMA } from '../../src/model/tiny-llama.js';
import { splitLayers } from '../../src/planner/llamacpp.js';
import {
  allReady,
  complete,
  isAlive,
  leaderUrl,
  readLog,
  startServices,
  templatesFor,
  tinySpec,
  waitFor,
} from '../helpers.js';

const PROMPTS = ['Hello world', 'The leader and its workers'];
const MiB = 1024 * 1024;
const c = TINY_LLAMA;
const layerBytes =
  4 *
  (2 * c.embedding * c.embedding +
    2 * c.embedding * ((c.embedding / c.heads) * c.kvHeads) +
    3 * c.embedding * c.feedForward +
    2 * c.embedding);
const outputBytes = 4 * c.embedding * 32000;

test('2- and 3-node groups answer exactly as a 1-node group, each worker holding its share of the layers', async () => {
  // Trace logging shows each device's share of the model at load (and much more per request,
  // which is why it is not the default).
  const engine = { type: 'llamacpp' as const, args: ['--log-verbosity', '4'] };
  const running = await startServices([
    tinySpec('one', { parallelism: { nodes: 1 }, engine }),
    tinySpec('two', { parallelism: { nodes: 2 }, engine }),
    tinySpec('three', { parallelism: { nodes: 3 }, engine }),
  ]);
  try {
    for (const prompt of PROMPTS) {
      const [one, two, three] = await Promise.all(
        ['one', 'two', 'three'].map((s) => complete(leaderUrl(running, s), prompt)),
      );
      assert.ok(one!.length > 10, `1-node output too short: ${JSON.stringify(one)}`);
      assert.equal(two, one, `2-node group differs for ${JSON.stringify(prompt)}`);
      assert.equal(three, one, `3-node group differs for ${JSON.stringify(prompt)}`);
    }
    for (const [service, nodes] of [
      ['two', 2],
      ['three', 3],
    ] as const) {
      const group = running.reconciler.snapshot().find((s) => s.name === service)!.groups[0]!;
      const leaderLog = readLog(running, service, 0, 0);
      const split = splitLayers(c.layers, nodes);
      const offloaded = c.layers - split[0]! + 1; // + the output layer
      assert.match(leaderLog, new RegExp(`offloaded ${offloaded}/${c.layers + 1} layers`));
      for (const member of group.members.filter((m) => m.role === 'worker')) {
        const found = leaderLog.match(
          new RegExp(`RPC\\d+\\[${member.address.replace(/\./g, '\\.')}\\] model buffer size =\\s+([\\d.]+) MiB`),
        );
        assert.ok(found, `${service}: no model buffer on worker ${member.address} in the leader's log`);
        const expected = (split[member.index]! * layerBytes + (member.index === nodes - 1 ? outputBytes : 0)) / MiB;
        assert.ok(
          Math.abs(Number(found[1]) - expected) < 0.1,
          `${service}: worker ${member.index} holds ${found[1]} MiB, expected ${expected.toFixed(2)}`,
        );
        assert.match(readLog(running, service, 0, member.index), /Accepted client connection/);
      }
    }
  } finally {
    await running.stop();
  }
  for (const pid of running.pids) assert.equal(isAlive(pid), false, `pid ${pid} still running after stop`);
});

test('killing a worker recreates its whole group while the other replica keeps answering', async () => {
  const running = await startServices([tinySpec('pair', { parallelism: { nodes: 2 }, replicas: 2 })]);
  try {
    const before = running.reconciler.snapshot()[0]!;
    const worker = before.groups[0]!.members[1]!;
    const leader = before.groups[0]!.members[0]!;
    const other = leaderUrl(running, 'pair', 1);
    const expected = await complete(other, PROMPTS[0]!, 8);

    // Requests to replica 1 run throughout the failure and recovery of replica 0 (bounded: ≤ 300).
    let recovering = true;
    const served: string[] = [];
    const traffic = (async () => {
      for (let i = 0; i < 300 && recovering; i++) served.push(await complete(other, PROMPTS[0]!, 8));
    })();

    process.kill(worker.pid!, 'SIGKILL');
    await waitFor(running.reconciler, ([s]) => s!.groups[0]!.restarts === 1 && s!.groups[0]!.phase !== 'Ready', 10_000);
    await waitFor(running.reconciler, allReady, 60_000);
    recovering = false;
    await traffic;

    const after = running.reconciler.snapshot()[0]!;
    const group = after.groups[0]!;
    assert.equal(group.restarts, 1);
    assert.match(group.lastFailure!.reason, /worker 1 exited \(signal SIGKILL\)/);
    assert.notEqual(group.members[0]!.pid, leader.pid, 'the leader was not recreated with its group');
    assert.notEqual(group.members[1]!.pid, worker.pid);
    assert.equal(isAlive(leader.pid!), false);
    assert.equal(after.groups[1]!.restarts, 0, 'the other replica was disturbed');
    assert.ok(served.length > 0, 'no request reached the other replica during recovery');
    for (const text of served) assert.equal(text, expected);
    assert.equal(await complete(leaderUrl(running, 'pair', 0), PROMPTS[0]!, 8), expected);
  } finally {
    await running.stop();
  }
  for (const pid of running.pids) assert.equal(isAlive(pid), false, `pid ${pid} still running after stop`);
});

test('a leader that hangs while loading is recreated after spec.startupTimeout, with back-off and the reason', async () => {
  // A wedged RPC peer: it accepts llama-server's connection and never answers, so the load hangs.
  const wedged = createServer(() => {});
  await new Promise<void>((resolve) => wedged.listen(0, '127.0.0.1', resolve));
  const peer = `127.0.0.1:${(wedged.address() as AddressInfo).port}`;
  const running = await startServices(
    [
      tinySpec('hung', {
        parallelism: { nodes: 1 },
        startupTimeout: '2s',
        engine: { type: 'llamacpp', args: ['--rpc', peer] },
      }),
    ],
    0,
  );
  try {
    await waitFor(running.reconciler, ([s]) => (s!.groups[0]?.restarts ?? 0) >= 2, 20_000);
    const group = running.reconciler.snapshot()[0]!.groups[0]!;
    assert.match(group.lastFailure!.reason, /^leader 0 not ready 2s after it started \(spec.startupTimeout\)$/);
    assert.notEqual(group.phase, 'Ready');
  } finally {
    await running.stop();
    wedged.close();
  }
  for (const pid of running.pids) assert.equal(isAlive(pid), false, `pid ${pid} still running after stop`);
});

test('parallelism auto: the planner sizes the group from spec.resources.memory, and it answers like one node', async () => {
  const running = await startServices([
    tinySpec('auto', { parallelism: { nodes: 'auto' }, resources: { cpu: 1, memory: '64Mi' } }),
    tinySpec('ref', { parallelism: { nodes: 1 } }),
  ]);
  try {
    const auto = running.reconciler.snapshot().find((s) => s.name === 'auto')!;
    assert.equal(auto.groups[0]!.members.length, 3, '64 MiB per node: 3 nodes of 4 layers');
    assert.equal(
      await complete(leaderUrl(running, 'auto'), PROMPTS[1]!),
      await complete(leaderUrl(running, 'ref'), PROMPTS[1]!),
    );
  } finally {
    await running.stop();
  }
});

test('a new template rolls groups of real processes one at a time (maxUnavailable 1)', async () => {
  const spec = (debug: string) => tinySpec('roll', { replicas: 2, parallelism: { nodes: 2 }, env: { ROLL: debug } });
  const running = await startServices([spec('a')]);
  try {
    const [next] = await templatesFor([spec('b')]);
    let minReady = 2;
    const watch = () => {
      const [service] = running.reconciler.snapshot();
      minReady = Math.min(minReady, service!.groups.filter((g) => g.phase === 'Ready').length);
    };
    running.reconciler.on('tick', watch);
    running.reconciler.apply(next!);
    await waitFor(
      running.reconciler,
      ([s]) => s!.groups.length === 2 && s!.groups.every((g) => g.phase === 'Ready' && g.templateHash === next!.hash),
      60_000,
    );
    running.reconciler.off('tick', watch);
    assert.equal(minReady, 1, 'one group down at a time, and never both');
    assert.deepEqual(
      running.reconciler.snapshot()[0]!.groups.map((g) => g.restarts),
      [0, 0],
      'a rollout is not a failure',
    );
  } finally {
    await running.stop();
  }
});
