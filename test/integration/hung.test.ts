// A hung member: a worker stopped with SIGSTOP keeps its TCP port open (the kernel accepts) and its
// leader's /health still answers, but the tokens stop. Through `tandem up` as users run it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { readStatus } from '../../src/cli/state.js';
import { readStream, scrape, until } from '../helpers.js';
import type { Up } from '../tandem-up.js';
import { cli, service, specFile, up } from '../tandem-up.js';

const MODEL = 'hang-model';

/** Lets a stopped worker go on, if it is still there (it goes with its group). */
function resume(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // gone with its group
  }
}

/** A 2-replica × 2-node service `name` applied to `u`, waited on until both groups are Ready. */
async function pairOn(u: Up, name: string): Promise<void> {
  const applied = cli(u, ['apply', specFile(u, name, { parallelism: { nodes: 2 }, replicas: 2 })]);
  assert.equal(applied.status, 0, applied.stderr);
  await until(`both groups of ${name} Ready`, 120_000, async () =>
    (await service(u, name))?.status?.groups.filter((g) => g.phase === 'Ready').length === 2 ? true : undefined,
  );
}

test('a worker stopped mid-stream: the replica is taken out within the unresponsive timeout, the stream finishes on the other replica, the group is recreated', async () => {
  const u = await up(['--unresponsive-timeout', '3s']);
  let stopped: number | undefined;
  try {
    await pairOn(u, 'hang');
    const client = new OpenAI({ baseURL: `${u.gateway}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
    const request = { model: MODEL, prompt: 'A long story', max_tokens: 200, temperature: 0 };
    const uninterrupted = (await client.completions.create(request)).choices[0]!.text;

    const { data: stream, response } = await client.completions.create({ ...request, stream: true }).withResponse();
    const replica = Number(response.headers.get('x-tandem-backend')!.split('/')[1]);
    const group = readStatus(u.state)!
      .services.find((s) => s.name === 'hang')!
      .groups.find((g) => g.replica === replica)!;
    const worker = group.members.find((m) => m.index === 1)!.pid!;
    const { text, finish } = await readStream(stream, (n) => {
      if (n === 2) process.kill((stopped = worker), 'SIGSTOP');
    });
    assert.equal(finish, 'length');
    assert.equal(text, uninterrupted, 'the stream went on on the other replica from where it stopped');

    const metrics = await scrape(u.gateway);
    assert.equal(metrics[`tandem_gateway_unresponsive_total{model="${MODEL}",replica="hang/${replica}"}`], 1);
    const detected = metrics[`tandem_gateway_unresponsive_detection_seconds_sum{model="${MODEL}"}`]!;
    assert.ok(detected >= 3 && detected < 5, `silent ${detected} s when taken out (bound 3 s, looked at every 0.25 s)`);
    const events = (await (await fetch(`${u.gateway}/api/v1/events`)).json()) as {
      items: { reason: string; replica?: number; message: string }[];
    };
    const unresponsive = events.items.filter((e) => e.reason === 'Unresponsive');
    assert.equal(unresponsive.length, 1, JSON.stringify(events.items.slice(-10)));
    assert.equal(unresponsive[0]!.replica, replica);
    // The group is recreated whole: new processes, Ready again, one restart counted.
    const recreated = async () => {
      const g = (await service(u, 'hang'))?.status?.groups.find((x) => x.replica === replica);
      return g?.phase === 'Ready' && g.restarts === 1 && !g.members.some((m) => m.pid === worker);
    };
    await until('the group recreated', 60_000, async () => ((await recreated()) ? true : undefined));
    assert.equal((await client.completions.create(request)).choices[0]!.text, uninterrupted);
  } finally {
    resume(stopped);
    await u.stop();
  }
});

test('a worker stopped between requests: the next request finds the engine stuck (its slots do not move), is answered by the other replica, and the group is recreated', async () => {
  const u = await up(['--unresponsive-timeout', '3s']);
  let stopped: number | undefined;
  try {
    await pairOn(u, 'idle');
    const group = readStatus(u.state)!
      .services.find((s) => s.name === 'idle')!
      .groups.find((g) => g.replica === 0)!;
    process.kill((stopped = group.members.find((m) => m.index === 1)!.pid!), 'SIGSTOP');
    const client = new OpenAI({ baseURL: `${u.gateway}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
    // Whole answers, never a stream: until one goes to the stopped group, then it is retried on the other.
    const answers = await Promise.all(
      [0, 1, 2, 3].map(() =>
        client.completions.create({ model: 'idle-model', prompt: 'Hello', max_tokens: 8, temperature: 0 }),
      ),
    );
    for (const a of answers) assert.equal(a.choices[0]!.text, answers[0]!.choices[0]!.text);
    const metrics = await scrape(u.gateway);
    assert.equal(metrics['tandem_gateway_unresponsive_total{model="idle-model",replica="idle/0"}'], 1);
  } finally {
    resume(stopped);
    await u.stop();
  }
});
