// bench:rollout: a changed spec applied to a running 2-replica service (2-node llama.cpp groups)
// under steady streaming load, through `tandem up`'s control API as `tandem apply` sends it.
// Reports failed requests (target 0), streams continued on another replica, the longest gap
// between two tokens any client saw during the rollout beside the longest in the same time of
// steady load before it, and the rollout's duration. Bounded: 4 clients, at most 3 minutes.
import OpenAI from 'openai';
import { stringify } from 'yaml';
import type { ServiceRecord } from '../src/core/control.js';
import { scrape } from '../test/helpers.js';
import { tandemUp } from './tandem-up.js';

const CLIENTS = 4;
const MAX_MS = 180_000;
const spec = (args: string[]) => ({
  apiVersion: 'tandem.dev/v1alpha1',
  kind: 'InferenceService',
  metadata: { name: 'chat' },
  spec: {
    model: { servedName: 'chat', source: 'tandem://tiny-llama' },
    engine: { type: 'llamacpp', args },
    parallelism: { nodes: 2 },
    replicas: 2,
    resources: { cpu: 1 },
  },
});

interface Stream {
  start: number;
  end: number;
  ok: boolean;
  /** Each token's arrival (ms). */
  arrivals: number[];
}

const up = await tandemUp(stringify(spec([])), [], 2);
try {
  const client = new OpenAI({ baseURL: `${up.gateway}/v1`, apiKey: 'none', maxRetries: 0 });
  const streams: Stream[] = [];
  const started = Date.now();
  let done = false;
  const load = Array.from({ length: CLIENTS }, async () => {
    while (!done && Date.now() - started < MAX_MS) {
      const s: Stream = { start: Date.now(), end: 0, ok: false, arrivals: [] };
      try {
        const stream = await client.completions.create({
          model: 'chat',
          prompt: 'The capital of France is',
          max_tokens: 64,
          temperature: 0,
          stream: true,
        });
        let finish: string | null | undefined;
        for await (const chunk of stream) {
          s.arrivals.push(Date.now());
          finish = chunk.choices[0]?.finish_reason ?? finish;
        }
        s.ok = finish === 'length';
      } catch {
        s.ok = false;
      }
      s.end = Date.now();
      streams.push(s);
    }
  });
  const failovers = async () =>
    Object.entries(await scrape(up.gateway))
      .filter(([name]) => name.startsWith('tandem_gateway_stream_failovers_total'))
      .reduce((sum, [, value]) => sum + value, 0);
  const failoversBefore = await failovers();
  await new Promise((r) => setTimeout(r, 10_000)); // steady load: the baseline
  const applyAt = Date.now();
  const res = await fetch(`${up.gateway}/api/v1/services`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(spec(['--ctx-size', '1024'])),
  });
  if (res.status !== 200) throw new Error(`apply: HTTP ${res.status}: ${await res.text()}`);
  let rolledAt = 0;
  while (!rolledAt && Date.now() - started < MAX_MS) {
    const record = (await (await fetch(`${up.gateway}/api/v1/services/chat`)).json()) as ServiceRecord;
    const s = record.status!;
    const current =
      s.groups.length === 2 && s.groups.every((g) => g.templateHash === s.templateHash && g.phase === 'Ready');
    if (current) rolledAt = Date.now();
    else await new Promise((r) => setTimeout(r, 100));
  }
  if (!rolledAt) throw new Error('the rollout did not finish within the bench bound');
  await new Promise((r) => setTimeout(r, 3_000));
  done = true;
  await Promise.all(load);
  const continued = (await failovers()) - failoversBefore;

  const gapIn = (from: number, to: number) =>
    Math.max(
      0,
      ...streams.flatMap((s) =>
        s.arrivals.slice(1).flatMap((t, i) => (t >= from && t <= to ? [t - s.arrivals[i]!] : [])),
      ),
    );
  const rolloutMs = rolledAt - applyAt;
  const during = gapIn(applyAt, rolledAt);
  const before = gapIn(applyAt - rolloutMs, applyAt);
  const failed = streams.filter((s) => !s.ok).length;
  const result = {
    clients: CLIENTS,
    requests: streams.length,
    failed,
    streamsContinued: continued,
    rolloutSeconds: Math.round(rolloutMs / 100) / 10,
    longestTokenGapMs: {
      steady: before,
      rollout: during,
      ratio: before > 0 ? Math.round((during / before) * 100) / 100 : null,
    },
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(
    `rollout: ${streams.length} requests, ${failed} failed, ${continued} streams continued, longest token gap ${during} ms (steady ${before} ms), rollout ${result.rolloutSeconds} s`,
  );
} finally {
  await up.stop();
}
