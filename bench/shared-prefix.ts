// inference-perf's shared_prefix workload, open loop: groups of prompts that share a long system
// prompt, a short question each, answers of 64–128 tokens streamed back, sent at Poisson arrivals
// (exponential gaps from a seeded generator: every contestant gets the same arrivals and lengths).
// Before the arrivals, a warm-up that is not measured: every group's prompt sent `warmup` times
// (one token each, in a seeded order, four at a time) through the contestant itself, so that each
// meets the replicas as its own routing left them, as a service in use does: long-lived system
// prompts, not a first request each.
// Measured as a client sees it: time to first token, the gaps between tokens, output tokens per
// second over the point (from the first request sent to the last answer's end), errors. Bounded: a
// fixed number of requests, each with a deadline, and the point waits at most `deadlineMs` for the
// last answers.
import type { Pool } from 'undici';
import { mulberry32 } from '../src/util/random.js';

export interface SharedPrefixOptions {
  /** Arrivals per second. */
  rate: number;
  requests: number;
  /**
   * One system prompt per group; each request's group drawn at random (seeded). Not i mod groups:
   * with that, round robin over two replicas sent every group to the same replica each time (even
   * groups to one, odd to the other), an affinity for free that no real traffic gives.
   */
  systemPrompts: string[];
  model: string;
  headers: Record<string, string>;
  seed: number;
  /** Unmeasured passes over every group before the arrivals (0: the replicas' caches as found). */
  warmup?: number;
  deadlineMs?: number;
}

export interface StreamPoint {
  ttfts: number[];
  /** Every gap between two tokens of one answer, all answers pooled. */
  itls: number[];
  outputTokens: number;
  errors: number;
  /** From the first request sent to the last answer's end. */
  seconds: number;
  firstError?: string;
}

/** The arrivals (ms from the start), groups and answer lengths of a point: the same for the same seed. */
export function poissonSchedule(
  rate: number,
  requests: number,
  groups: number,
  seed: number,
): { atMs: number; group: number; maxTokens: number }[] {
  const next = mulberry32(seed);
  let at = 0;
  return Array.from({ length: requests }, () => {
    const point = { atMs: at, group: Math.floor(next() * groups), maxTokens: 64 + Math.floor(next() * 65) };
    at += (-Math.log(1 - next()) / rate) * 1000;
    return point;
  });
}

/**
 * The warm-up's groups: `passes` passes over every group, each pass in an order of its own. Not
 * 0, 1, …, n - 1 each time: with an even number of groups, round robin over two replicas would
 * send each group to the same replica in every pass, an affinity no real traffic gives.
 */
export function warmupOrder(groups: number, passes: number, seed: number): number[] {
  const next = mulberry32(seed ^ 0x9e3779b9);
  const order: number[] = [];
  for (let p = 0; p < passes; p++) {
    const pass = Array.from({ length: groups }, (_, g) => g);
    for (let i = pass.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [pass[i], pass[j]] = [pass[j]!, pass[i]!];
    }
    order.push(...pass);
  }
  return order;
}

export async function sharedPrefixPoint(targets: Pool[], o: SharedPrefixOptions): Promise<StreamPoint> {
  const point: StreamPoint = { ttfts: [], itls: [], outputTokens: 0, errors: 0, seconds: 0 };
  const schedule = poissonSchedule(o.rate, o.requests, o.systemPrompts.length, o.seed);
  const warmup = warmupOrder(o.systemPrompts.length, o.warmup ?? 0, o.seed);
  /** Request `k` of the point (or of its warm-up), a question after its group's system prompt. */
  const ask = (k: number, group: number, question: string, maxTokens: number, stream: boolean) =>
    targets[k % targets.length]!.request({
      path: '/v1/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json', ...o.headers },
      body: JSON.stringify({
        model: o.model,
        prompt: `${o.systemPrompts[group]}\n${question}: what comes next, and why?`,
        max_tokens: maxTokens,
        temperature: 0,
        ...(stream ? { stream } : {}),
      }),
      signal: AbortSignal.timeout(o.deadlineMs ?? 120_000),
    });
  let sent = 0;
  const warming = async () => {
    for (let k = sent++; k < warmup.length; k = sent++) {
      const res = await ask(k, warmup[k]!, `Question w${k}`, 1, false);
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`warm-up: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: 4 }, warming));
  const started = performance.now();
  let ended = started;
  const one = async (i: number, group: number, maxTokens: number) => {
    const t0 = performance.now();
    try {
      const res = await ask(i, group, `Question ${i}`, maxTokens, true);
      let buffered = '';
      let last = 0;
      let tokens = 0;
      for await (const chunk of res.body) {
        buffered += (chunk as Buffer).toString();
        if (res.statusCode !== 200) continue;
        const events = buffered.split('\n\n');
        buffered = events.pop()!;
        const now = performance.now();
        for (const e of events) {
          if (!e.startsWith('data: {') || !/"text":"[^"]/.test(e)) continue;
          if (last === 0) point.ttfts.push(now - t0);
          else point.itls.push(now - last);
          last = now;
          tokens++;
        }
      }
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${buffered.slice(0, 200)}`);
      if (tokens === 0) throw new Error('a stream without a token');
      point.outputTokens += tokens;
      ended = Math.max(ended, performance.now());
    } catch (err) {
      point.errors++;
      point.firstError ??= (err as Error).message;
    }
  };
  const inFlight: Promise<void>[] = [];
  for (const [i, { atMs, group, maxTokens }] of schedule.entries()) {
    const wait = started + atMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(one(i, group, maxTokens));
  }
  await Promise.all(inFlight);
  point.seconds = (ended - started) / 1000;
  return point;
}
