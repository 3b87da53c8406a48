// Decode throughput of 1-, 2- and 3-node groups of the project's model, measured side by side in
// one run (requests interleaved round-robin so machine noise hits every layout alike), printed as
// ratios to the 1-node group. Run: npm run bench:split
import { startServices, tinySpec, leaderUrl } from '../test/helpers.js';

const ROUNDS = Number(process.env.ROUNDS ?? 8);
const TOKENS = 64;
const LAYOUTS = [1, 2, 3];

interface Timings {
  predicted_n: number;
  predicted_ms: number;
  prompt_n: number;
  prompt_ms: number;
}

async function generate(url: string, prompt: string): Promise<{ timings: Timings; wallMs: number }> {
  const started = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: TOKENS, temperature: 0, ignore_eos: true, cache_prompt: false }),
    signal: AbortSignal.timeout(60_000),
  });
  const body = (await res.json()) as { timings: Timings };
  return { timings: body.timings, wallMs: performance.now() - started };
}

const running = await startServices(LAYOUTS.map((nodes) => tinySpec(`n${nodes}`, { parallelism: { nodes } })));
try {
  const totals = new Map(LAYOUTS.map((n) => [n, { tokens: 0, decodeMs: 0, wallMs: 0 }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const nodes of LAYOUTS) {
      const { timings, wallMs } = await generate(
        leaderUrl(running, `n${nodes}`),
        `Round ${round}: the leader and its workers`,
      );
      const t = totals.get(nodes)!;
      t.tokens += timings.predicted_n;
      t.decodeMs += timings.predicted_ms;
      t.wallMs += wallMs;
    }
  }
  const base = totals.get(1)!;
  const baseRate = base.tokens / (base.decodeMs / 1000);
  console.log(`decode throughput, ${ROUNDS} rounds × ${TOKENS} tokens per layout, 1 thread per node, interleaved`);
  console.log('nodes  tokens/s  ratio-to-1-node  ms/token  wall-ms/request');
  for (const nodes of LAYOUTS) {
    const t = totals.get(nodes)!;
    const rate = t.tokens / (t.decodeMs / 1000);
    console.log(
      `${String(nodes).padEnd(5)}  ${rate.toFixed(1).padStart(8)}  ${(rate / baseRate).toFixed(3).padStart(15)}  ${(t.decodeMs / t.tokens).toFixed(2).padStart(8)}  ${(t.wallMs / ROUNDS).toFixed(0).padStart(15)}`,
    );
  }
} finally {
  await running.stop();
}
