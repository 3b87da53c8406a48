// The last minutes of each model's serving, for the dashboard: a point every few seconds, made from
// the gateway's own Prometheus counters and histograms (the difference between two readings), so
// that what the dashboard charts is exactly what /metrics exports.
import type { HistoryPoint } from '../core/serving.js';
import type { GatewayMetrics } from './metrics.js';

export type { HistoryPoint };

/** A reading of the cumulative series, per model. */
export interface Reading {
  at: number;
  models: Map<string, ModelReading>;
}

export interface ModelReading {
  requests: number;
  errors: number;
  outputTokens: number;
  /** The TTFT histogram's cumulative bucket counts, by upper bound (+Inf last). */
  ttftBuckets: [number, number][];
  queued: number;
}

/** The interval between two readings of one model, as a point. */
export function historyPoint(
  before: ModelReading | undefined,
  after: ModelReading,
  seconds: number,
  at: number,
): HistoryPoint {
  const delta = (key: 'requests' | 'errors' | 'outputTokens') => Math.max(0, after[key] - (before?.[key] ?? 0));
  const buckets = after.ttftBuckets.map(([le, count], i): [number, number] => [
    le,
    count - (before?.ttftBuckets[i]?.[1] ?? 0),
  ]);
  const p50 = bucketQuantile(buckets, 0.5);
  const p90 = bucketQuantile(buckets, 0.9);
  return {
    at,
    requestsPerS: delta('requests') / seconds,
    errorsPerS: delta('errors') / seconds,
    outputTokensPerS: delta('outputTokens') / seconds,
    ...(p50 === undefined ? {} : { ttftP50: p50 }),
    ...(p90 === undefined ? {} : { ttftP90: p90 }),
    queued: after.queued,
  };
}

/**
 * The q-quantile of cumulative histogram buckets, interpolated linearly within its bucket as
 * Prometheus's histogram_quantile does; a quantile in the +Inf bucket is the highest finite bound.
 */
export function bucketQuantile(buckets: [number, number][], q: number): number | undefined {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return lower;
      return lower + ((le - lower) * (rank - below)) / Math.max(1, count - below);
    }
    lower = le;
    below = count;
  }
  return lower;
}

/** Reads the series the history is made of, per model (every one of `served`, if only zeros). */
export async function readMetrics(
  metrics: GatewayMetrics,
  served: string[],
  queued: (model: string) => number,
  at: number,
): Promise<Reading> {
  const models = new Map<string, ModelReading>();
  const of = (model: string) => {
    let m = models.get(model);
    if (!m) models.set(model, (m = { requests: 0, errors: 0, outputTokens: 0, ttftBuckets: [], queued: 0 }));
    return m;
  };
  for (const model of served) of(model);
  for (const { labels, value } of (await metrics.requests.get()).values) {
    const m = of(String(labels.model));
    m.requests += value;
    if (!/^[23]/.test(String(labels.status))) m.errors += value;
  }
  for (const { labels, value } of (await metrics.tokens.get()).values) {
    if (labels.kind === 'completion') of(String(labels.model)).outputTokens += value;
  }
  for (const { labels, value, metricName } of (await metrics.timeToFirstToken.get()).values) {
    if (!metricName?.endsWith('_bucket')) continue;
    const bound = (labels as { le?: string | number }).le;
    const le = bound === '+Inf' ? Infinity : Number(bound);
    of(String(labels.model)).ttftBuckets.push([le, value]);
  }
  for (const [model, m] of models) {
    m.ttftBuckets.sort((a, b) => a[0] - b[0]);
    m.queued = queued(model);
  }
  return { at, models };
}

/** Points per model over the last `keepMs`, one per `record` call. */
export class ServingHistory {
  private readonly points = new Map<string, HistoryPoint[]>();
  private last?: Reading;

  constructor(private readonly keepMs: number) {}

  record(reading: Reading): void {
    const last = this.last;
    this.last = reading;
    if (!last || reading.at <= last.at) return;
    const seconds = (reading.at - last.at) / 1000;
    for (const [model, after] of reading.models) {
      let list = this.points.get(model);
      if (!list) this.points.set(model, (list = []));
      list.push(historyPoint(last.models.get(model), after, seconds, reading.at));
      while (list.length > 0 && list[0]!.at < reading.at - this.keepMs) list.shift();
    }
  }

  /** Every model's points, oldest first. */
  all(): Record<string, HistoryPoint[]> {
    return Object.fromEntries(this.points);
  }
}
