// Closed-loop load for the benchmarks: a fixed number of requests at a fixed concurrency, each
// bounded in time, the whole batch bounded too. Latency is from sending a request to the end of
// its answer; for streams, time to first token is to the first event.
import { Pool } from 'undici';

export interface BatchOptions {
  concurrency: number;
  requests: number;
  path: string;
  /** The body of request i. */
  body: (i: number) => string;
  headers?: Record<string, string>;
  /** No new request starts after this long. */
  deadlineMs?: number;
}

export interface BatchResult {
  latencies: number[];
  /** Streams only: to the first `data:` event. */
  ttfts: number[];
  errors: number;
  /** Wall time of the batch. */
  seconds: number;
  /** The first error seen, for the report. */
  firstError?: string;
}

/** Pools for a target; several URLs are used in turn (a client spreading load itself). */
export function pools(urls: string[], concurrency: number): Pool[] {
  return urls.map(
    (u) =>
      new Pool(u, { connections: concurrency, headersTimeout: 120_000, bodyTimeout: 60_000, keepAliveTimeout: 30_000 }),
  );
}

export async function batch(targets: Pool[], o: BatchOptions): Promise<BatchResult> {
  const result: BatchResult = { latencies: [], ttfts: [], errors: 0, seconds: 0 };
  const started = performance.now();
  const deadline = started + (o.deadlineMs ?? 120_000);
  let next = 0;
  const worker = async () => {
    while (next < o.requests && performance.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      try {
        const res = await targets[i % targets.length]!.request({
          path: o.path,
          method: 'POST',
          headers: { 'content-type': 'application/json', ...o.headers },
          body: o.body(i),
        });
        let first = 0;
        let text = '';
        for await (const chunk of res.body) {
          const s = (chunk as Buffer).toString();
          if (first === 0 && s.includes('data: {')) first = performance.now();
          if (res.statusCode !== 200 && text.length < 500) text += s;
        }
        if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
        result.latencies.push(performance.now() - t0);
        if (first > 0) result.ttfts.push(first - t0);
      } catch (err) {
        result.errors++;
        result.firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

/** The p-th percentile (nearest rank); NaN for none. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
