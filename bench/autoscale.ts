// Autoscaling policies side by side, in one run: a bursty trace (fixed seed, open loop: requests
// arrive on the trace's clock whatever the answers) replayed against the same service of real
// llama.cpp groups on the embedded default with
//   (a) a fixed maxReplicas,
//   (b) reactive scaling (Ray Serve's policy: the upscale delay, then load / target),
//   (c) Tandem's scale-ahead (the default),
// printing replica-seconds (groups alive, starting or serving, integrated over the run), requests
// dropped (any answer but 200) and latency p50/p99 for each, and the targets. Run: npm run bench:autoscale
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { embedded } from '../src/cli/embedded.js';
import { mulberry32 } from '../src/util/random.js';
import { percentile } from './load.js';
import { templatesFor, tinySpec } from '../test/helpers.js';

const SEED = Number(process.env.SEED ?? 20261125);
const MAX_REPLICAS = 3;
/** The trace: [seconds, requests per second] phases; arrivals within a phase are Poisson. */
const PHASES: [number, number][] = [
  [5, 0],
  [10, 8],
  [18, 0],
  [10, 1],
  [8, 12],
  [20, 0],
  [10, 5],
  [14, 0],
];
const TOKENS = 48;

function trace(seed: number): number[] {
  const random = mulberry32(seed);
  const arrivals: number[] = [];
  let start = 0;
  for (const [seconds, rate] of PHASES) {
    let t = start;
    while (rate > 0) {
      t += (-Math.log(1 - random()) / rate) * 1000;
      if (t >= start + seconds * 1000) break;
      arrivals.push(t);
    }
    start += seconds * 1000;
  }
  return arrivals;
}

interface Result {
  name: string;
  replicaSeconds: number;
  dropped: number;
  latencies: number[];
  mostReplicas: number;
  startupMs?: number;
}

async function replay(name: string, autoscaling: Record<string, unknown> | undefined): Promise<Result> {
  const spec = tinySpec('bursty', {
    engine: { type: 'llamacpp', args: ['--parallel', '2'] },
    ...(autoscaling
      ? {
          autoscaling: {
            minReplicas: 0,
            maxReplicas: MAX_REPLICAS,
            targetOngoingRequests: 2,
            upscaleDelay: '5s',
            downscaleDelay: '8s',
            scaleToZeroAfter: '10s',
            lookBackPeriod: '5s',
            ...autoscaling,
          },
        }
      : { replicas: MAX_REPLICAS }),
  });
  const local = embedded(await templatesFor([spec]), mkdtempSync(join(tmpdir(), 'tandem-bench-autoscale-')), {
    host: '127.0.0.1',
    port: 0,
  });
  const { reconciler, gateway } = local;
  local.start();
  await gateway.listen();
  // A fixed fleet starts before the trace, as its users would have it: ready when the first request comes.
  if (!autoscaling) {
    await new Promise<void>((resolve) => {
      const check = () => {
        if (reconciler.snapshot()[0]!.groups.filter((g) => g.phase === 'Ready').length === MAX_REPLICAS) {
          reconciler.off('tick', check);
          resolve();
        }
      };
      reconciler.on('tick', check);
      check();
    });
  }
  let groupMs = 0;
  let mostReplicas = 0;
  let last = performance.now();
  const meter = setInterval(() => {
    const now = performance.now();
    const groups = reconciler.snapshot()[0]!.groups.length;
    groupMs += groups * (now - last);
    mostReplicas = Math.max(mostReplicas, groups);
    last = now;
  }, 50);
  const pool = new Pool(gateway.url, { connections: 64 });
  const started = performance.now();
  const latencies: number[] = [];
  let dropped = 0;
  const arrivals = trace(SEED);
  await Promise.all(
    arrivals.map(async (at, i) => {
      await new Promise((r) => setTimeout(r, Math.max(0, started + at - performance.now())));
      const t0 = performance.now();
      try {
        const res = await pool.request({
          path: '/v1/completions',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'bursty-model',
            prompt: `Request ${i}:`,
            max_tokens: TOKENS,
            ignore_eos: true,
          }),
          headersTimeout: 60_000,
          bodyTimeout: 60_000,
        });
        await res.body.text();
        if (res.statusCode === 200) latencies.push(performance.now() - t0);
        else dropped++;
      } catch {
        dropped++;
      }
    }),
  );
  // The trace's quiet tail counts too: the run is the trace's length, whatever the answers took.
  const traceMs = PHASES.reduce((s, [seconds]) => s + seconds * 1000, 0);
  await new Promise((r) => setTimeout(r, Math.max(0, started + traceMs - performance.now())));
  clearInterval(meter);
  const startupMs = reconciler.snapshot()[0]!.startupMs;
  await pool.close();
  local.autoscaler.stop();
  await gateway.close();
  await reconciler.teardown();
  return {
    name,
    replicaSeconds: groupMs / 1000,
    dropped,
    latencies,
    mostReplicas,
    ...(startupMs === undefined ? {} : { startupMs }),
  };
}

const arrivals = trace(SEED);
console.log(
  `bursty trace (seed ${SEED}): ${arrivals.length} requests over ${PHASES.reduce((s, [t]) => s + t, 0)} s, ` +
    `phases ${PHASES.map(([s, r]) => `${s}s@${r}/s`).join(' ')}; ${TOKENS}-token completions; ` +
    `1-node llama.cpp groups, 2 slots each; target 2 per replica, max ${MAX_REPLICAS}, upscale delay 5s, downscale 8s, to zero after 10s`,
);
const results: Result[] = [];
results.push(await replay(`(a) fixed ${MAX_REPLICAS} replicas`, undefined));
results.push(await replay('(b) reactive (Ray Serve)', { policy: 'reactive' }));
results.push(await replay('(c) scale-ahead (Tandem)', { policy: 'ahead' }));
console.log('policy                      replica-s  dropped  p50 ms  p99 ms  most replicas  group start ms');
for (const r of results) {
  console.log(
    `${r.name.padEnd(26)}  ${r.replicaSeconds.toFixed(0).padStart(9)}  ${String(r.dropped).padStart(7)}  ${percentile(r.latencies, 50).toFixed(0).padStart(6)}  ${percentile(r.latencies, 99).toFixed(0).padStart(6)}  ${String(r.mostReplicas).padStart(13)}  ${r.startupMs === undefined ? '-' : r.startupMs.toFixed(0).padStart(14)}`,
  );
}
const [fixed, reactive, ahead] = results as [Result, Result, Result];
console.log(
  `targets: (c) drops nothing: ${ahead.dropped === 0 ? 'met' : 'NOT met'}; ` +
    `(c) replica-seconds / (a): ${(ahead.replicaSeconds / fixed.replicaSeconds).toFixed(2)} (target < 0.5: ${ahead.replicaSeconds < fixed.replicaSeconds / 2 ? 'met' : 'NOT met'}); ` +
    `(c) p99 / (b) p99: ${(percentile(ahead.latencies, 99) / percentile(reactive.latencies, 99)).toFixed(2)} (target < 1: ${percentile(ahead.latencies, 99) < percentile(reactive.latencies, 99) ? 'met' : 'NOT met'})`,
);
