import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketQuantile, historyPoint, ServingHistory, type ModelReading } from '../../src/gateway/history.js';
import { llamaCppShares, splitLayers } from '../../src/planner/llamacpp.js';
import { findModel } from '../../src/planner/catalog.js';

const reading = (requests: number, errors: number, outputTokens: number, ttft: number[], queued = 0): ModelReading => ({
  requests,
  errors,
  outputTokens,
  ttftBuckets: [0.1, 0.5, 1, Infinity].map((le, i) => [le, ttft[i]!]),
  queued,
});

test('a quantile of histogram buckets is interpolated within its bucket, as histogram_quantile does', () => {
  const buckets: [number, number][] = [
    [0.1, 0],
    [0.5, 10],
    [1, 20],
    [Infinity, 20],
  ];
  assert.equal(bucketQuantile(buckets, 0.5), 0.5);
  assert.ok(Math.abs(bucketQuantile(buckets, 0.25)! - 0.3) < 1e-9);
  assert.ok(Math.abs(bucketQuantile(buckets, 0.9)! - 0.9) < 1e-9);
  assert.equal(
    bucketQuantile(
      [
        [0.1, 0],
        [Infinity, 4],
      ],
      0.5,
    ),
    0.1,
    'in +Inf: the highest finite bound',
  );
  assert.equal(
    bucketQuantile(
      [
        [0.1, 0],
        [Infinity, 0],
      ],
      0.5,
    ),
    undefined,
    'no observation, no quantile',
  );
});

test('a history point is the difference of two readings over the interval', () => {
  // In the interval: 10 first tokens, all between 0.1 and 0.5 s.
  const point = historyPoint(reading(10, 1, 100, [0, 2, 4, 4]), reading(30, 3, 500, [0, 12, 14, 14], 5), 2, 9000);
  const round = (x: number | undefined) => x && Number(x.toFixed(9));
  assert.deepEqual(
    { ...point, ttftP50: round(point.ttftP50), ttftP90: round(point.ttftP90) },
    {
      at: 9000,
      requestsPerS: 10,
      errorsPerS: 1,
      outputTokensPerS: 200,
      ttftP50: 0.3,
      ttftP90: 0.46,
      queued: 5,
    },
  );
  assert.equal(historyPoint(undefined, reading(0, 0, 0, [0, 0, 0, 0]), 2, 1).ttftP50, undefined);
});

test('the history keeps one point per reading for its window, per model', () => {
  const history = new ServingHistory(10_000);
  for (let t = 0; t <= 20_000; t += 2000) {
    history.record({ at: t, models: new Map([['m', reading(t / 100, 0, 0, [0, 0, 0, 0])]]) });
  }
  const points = history.all().m!;
  assert.deepEqual(
    points.map((p) => p.at),
    [10_000, 12_000, 14_000, 16_000, 18_000, 20_000],
  );
  assert.ok(points.every((p) => p.requestsPerS === 10));
});

test("the split picture's figures: each node's layers as the engine splits them, the GGUF's weight bytes shared out, the KV cache for the context", () => {
  // Untied embeddings: every parameter is on one node only, so the shares add up to the file.
  const arch = { ...findModel('Llama-3.2-1B')!, layers: 12, tiedEmbeddings: false };
  const weightBytes = 100 * 2 ** 20;
  const shares = llamaCppShares(arch, weightBytes, 3, 1024);
  let from = 0;
  for (const [i, n] of splitLayers(12, 3).entries()) {
    assert.deepEqual(shares[i]!.layers, [from, from + n]);
    from += n;
  }
  const total = shares.reduce((a, s) => a + s.weightBytes, 0);
  assert.ok(Math.abs(total - weightBytes) <= 3, `weights add up to the file's: ${total}`);
  // f16 K and V per KV head per layer, for every token of the context.
  const perTokenLayer = 2 * arch.kvHeads * arch.headDim * 2;
  assert.deepEqual(
    shares.map((s) => s.kvCacheBytes),
    splitLayers(12, 3).map((n) => n * perTokenLayer * 1024),
  );
});
