// Autoscaling on the embedded default, with real llama.cpp groups: from zero on a burst, up to
// maxReplicas under load and never past it, down with a stream in flight left whole, then to zero.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embedded } from '../../src/cli/embedded.js';
import type { ServiceEvent } from '../../src/core/group.js';
import { isAlive, templatesFor, tinySpec, waitFor } from '../helpers.js';

const MODEL = 'auto-model';

test('scale from zero on a burst of 32, up to maxReplicas and no further, down without cutting a stream, then to zero', async () => {
  const [template] = await templatesFor([
    tinySpec('auto', {
      engine: { type: 'llamacpp', args: ['--parallel', '2'] },
      autoscaling: {
        minReplicas: 0,
        maxReplicas: 2,
        targetOngoingRequests: 2,
        upscaleDelay: '1s',
        downscaleDelay: '2s',
        scaleToZeroAfter: '3s',
        lookBackPeriod: '1s',
      },
    }),
  ]);
  const {
    reconciler,
    events: sink,
    gateway,
    autoscaler,
    start,
  } = embedded(
    [template!],
    mkdtempSync(join(tmpdir(), 'tandem-autoscale-')),
    { host: '127.0.0.1', port: 0 },
    { intervalMs: 250 },
  );
  const events: ServiceEvent[] = [];
  sink.on('event', (e) => events.push(e));
  let mostGroups = 0;
  const readyAt = new Map<number, number>();
  const pids = new Set<number>();
  reconciler.on('tick', () => {
    const groups = reconciler.snapshot()[0]!.groups;
    mostGroups = Math.max(mostGroups, groups.length);
    for (const g of groups) {
      if (g.phase === 'Ready' && g.createdAt !== undefined && !readyAt.has(g.replica))
        readyAt.set(g.replica, Date.now() - g.createdAt);
      for (const m of g.members) if (m.pid) pids.add(m.pid);
    }
  });
  start();
  await gateway.listen();
  const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
  try {
    // At zero: the model is listed, with no replica.
    const listed = (await client.models.list()).data.find((m) => m.id === MODEL) as unknown as { replicas: number };
    assert.equal(listed.replicas, 0);
    assert.equal(reconciler.snapshot()[0]!.groups.length, 0);

    // A burst of 32 at zero: every one answered once a group is Ready; the first token comes within
    // 1 s of the group's own start time (creation to Ready).
    const sent = Date.now();
    let firstToken = 0;
    const first = (async () => {
      const stream = await client.completions.create({ model: MODEL, prompt: 'Hello', max_tokens: 4, stream: true });
      for await (const chunk of stream) {
        firstToken ||= Date.now();
        void chunk;
      }
    })();
    const rest = Array.from({ length: 31 }, (_, i) =>
      client.completions.create({ model: MODEL, prompt: `Burst ${i}`, max_tokens: 4 }),
    );
    const answers = await Promise.all(rest);
    await first;
    assert.equal(answers.length, 31);
    for (const a of answers) assert.equal(a.choices.length, 1);
    const groupStart = Math.min(...readyAt.values());
    assert.ok(
      firstToken - sent <= groupStart + 1000,
      `first token ${firstToken - sent} ms after the request; the group took ${groupStart} ms to start`,
    );
    assert.ok(mostGroups <= 2, `${mostGroups} groups: past maxReplicas`);

    // Sustained load above target: 2 replicas (maxReplicas), never 3.
    await waitFor(reconciler, (s) => s[0]!.groups.filter((g) => g.phase === 'Ready').length === 2, 30_000);
    const loadUntil = Date.now() + 3000;
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        while (Date.now() < loadUntil)
          await client.completions.create({ model: MODEL, prompt: `Load ${i}`, max_tokens: 8 });
      }),
    );
    assert.equal(reconciler.snapshot()[0]!.replicas, 2);
    assert.equal(mostGroups, 2);

    // Two long streams, one per replica: under target, so one group goes, but only once its stream is done.
    const streams = await Promise.all(
      [0, 1].map(async (i) => {
        const res = await fetch(`${gateway.url}/v1/completions`, {
          method: 'POST',
          body: JSON.stringify({ model: MODEL, prompt: `Long ${i}`, max_tokens: 1200, stream: true, ignore_eos: true }),
        });
        return { replica: res.headers.get('x-tandem-backend'), res };
      }),
    );
    assert.deepEqual(streams.map((s) => s.replica).sort(), ['auto/0', 'auto/1']);
    const ended = await Promise.all(
      streams.map(async ({ replica, res }) => {
        const text = await res.text();
        return {
          replica,
          at: Date.now(),
          finish: /"finish_reason":"(\w+)"/.exec(text)?.[1],
          done: text.includes('[DONE]'),
        };
      }),
    );
    for (const e of ended) assert.deepEqual([e.finish, e.done], ['length', true], `${e.replica}'s stream was cut`);
    await waitFor(reconciler, (s) => s[0]!.replicas === 1, 30_000);
    const down = events.find((e) => e.reason === 'ScaledDown' && e.message.startsWith('2 → 1'));
    assert.ok(down, events.map((e) => e.message).join('\n'));
    const draining = events.find((e) => e.reason === 'Draining' && e.message.startsWith('2 → 1'));
    const drained = ended.find((e) => e.replica === 'auto/1')!;
    assert.ok(draining, events.map((e) => e.message).join('\n'));
    assert.ok(draining.at < drained.at, 'the scale-down began while replica 1 was still streaming');
    // That it was removed only once its stream had ended is the stream's whole answer above
    // (finish_reason length, [DONE]); the client's clock cannot order it against the removal.

    // Idle: to zero after scaleToZeroAfter, and no member process left.
    await waitFor(reconciler, (s) => s[0]!.replicas === 0 && s[0]!.groups.length === 0, 30_000);
    assert.ok(events.some((e) => e.reason === 'ScaledDown' && /scaling to zero/.test(e.message)));
    assert.equal(reconciler.snapshot()[0]!.autoscaling?.last?.to, 0);
    const ready = await fetch(`${gateway.url}/readyz`);
    assert.equal(ready.status, 200, 'a model scaled to zero still serves (its requests wait for a replica)');
  } finally {
    autoscaler.stop();
    await gateway.close();
    await reconciler.teardown();
  }
  for (const pid of pids) assert.equal(isAlive(pid), false);
});
