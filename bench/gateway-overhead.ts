// The gateway's cost: the same requests sent straight to a group's llama-server and through the
// gateway (a separate `tandem up` process, as users run it), interleaved in rounds so that machine
// noise hits both alike. Prints the latency the gateway adds (p50, p99) and the throughput ratio.
// Run: npm run bench:gateway
import { batch, percentile, pools } from './load.js';
import { tandemUp } from './tandem-up.js';

const ROUNDS = Number(process.env.ROUNDS ?? 10);
const PER_ROUND = Number(process.env.PER_ROUND ?? 40);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 4);
const MAX_TOKENS = Number(process.env.MAX_TOKENS ?? 1);

const running = await tandemUp(`apiVersion: tandem.dev/v1alpha1
kind: InferenceService
metadata: {name: bench}
spec:
  model: {servedName: bench, source: "tandem://tiny-llama"}
  engine: {type: llamacpp}
  parallelism: {nodes: 2}
  resources: {cpu: 1}
`);
try {
  const { gateway, leaders } = running;
  const leader = leaders[0]!;
  const body = JSON.stringify({ model: 'bench', prompt: 'Hello', max_tokens: MAX_TOKENS, temperature: 0 });
  const targets = { direct: pools([leader], CONCURRENCY), gateway: pools([gateway], CONCURRENCY) };
  const latencies = { direct: [] as number[], gateway: [] as number[] };
  const busyMs = { direct: 0, gateway: 0 };

  const round = async (name: 'direct' | 'gateway') => {
    const r = await batch(targets[name], {
      concurrency: CONCURRENCY,
      requests: PER_ROUND,
      path: '/v1/completions',
      body: () => body,
    });
    if (r.errors > 0) throw new Error(`${name}: ${r.firstError}`);
    latencies[name].push(...r.latencies);
    busyMs[name] += r.seconds * 1000;
  };
  await round('direct'); // warm-up, discarded
  await round('gateway');
  latencies.direct.length = latencies.gateway.length = 0;
  busyMs.direct = busyMs.gateway = 0;
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      await round('direct');
      await round('gateway');
    } else {
      await round('gateway');
      await round('direct');
    }
  }
  const pct = percentile;
  const rate = (name: 'direct' | 'gateway') => latencies[name].length / (busyMs[name] / 1000);
  console.log(
    `gateway overhead: ${ROUNDS} rounds × ${PER_ROUND} requests each way, concurrency ${CONCURRENCY}, max_tokens ${MAX_TOKENS}, 2-node group`,
  );
  console.log('path      p50 ms   p99 ms   req/s');
  for (const name of ['direct', 'gateway'] as const) {
    console.log(
      `${name.padEnd(8)}  ${pct(latencies[name], 50).toFixed(2).padStart(6)}   ${pct(latencies[name], 99).toFixed(2).padStart(6)}   ${rate(name).toFixed(1)}`,
    );
  }
  console.log(
    `added p50: ${(pct(latencies.gateway, 50) - pct(latencies.direct, 50)).toFixed(2)} ms, added p99: ${(pct(latencies.gateway, 99) - pct(latencies.direct, 99)).toFixed(2)} ms, throughput ratio gateway/direct: ${(rate('gateway') / rate('direct')).toFixed(3)}`,
  );
  await Promise.all(Object.values(targets).flatMap((ps) => ps.map((p) => p.close())));
} finally {
  await running.stop();
}
