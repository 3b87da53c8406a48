// The gateway's cost: the same requests sent straight to a group's llama-server and through the
// gateway (a separate `tandem up` process, as users run it), interleaved in rounds so that machine
// noise hits both alike. Prints the latency the gateway adds (p50, p99) and the throughput ratio.
// Run: npm run bench:gateway
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import type { StatusFile, RunInfo } from '../src/cli/state.js';

const ROUNDS = Number(process.env.ROUNDS ?? 10);
const PER_ROUND = Number(process.env.PER_ROUND ?? 40);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 4);
const MAX_TOKENS = Number(process.env.MAX_TOKENS ?? 1);

const root = join(fileURLToPath(import.meta.url), '../../..');
const state = mkdtempSync(join(tmpdir(), 'tandem-bench-'));
const spec = join(state, 'bench.yaml');
writeFileSync(
  spec,
  `apiVersion: tandem.dev/v1alpha1
kind: InferenceService
metadata: {name: bench}
spec:
  model: {servedName: bench, source: "tandem://tiny-llama"}
  engine: {type: llamacpp}
  parallelism: {nodes: 2}
  resources: {cpu: 1}
`,
);

const up = spawn(process.execPath, [join(root, 'bin', 'tandem.js'), 'up', spec, '--port', '0'], {
  env: { ...process.env, TANDEM_STATE: state },
  stdio: ['ignore', 'ignore', 'inherit'],
});
try {
  const { gateway, leader } = await waitReady();
  const body = JSON.stringify({ model: 'bench', prompt: 'Hello', max_tokens: MAX_TOKENS, temperature: 0 });
  const targets = {
    direct: new Pool(leader, { connections: CONCURRENCY }),
    gateway: new Pool(gateway, { connections: CONCURRENCY }),
  };
  const latencies = { direct: [] as number[], gateway: [] as number[] };
  const busyMs = { direct: 0, gateway: 0 };

  const batch = async (name: 'direct' | 'gateway') => {
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < PER_ROUND) {
          next++;
          const t0 = performance.now();
          const res = await targets[name].request({
            path: '/v1/completions',
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          });
          await res.body.text();
          if (res.statusCode !== 200) throw new Error(`${name}: HTTP ${res.statusCode}`);
          latencies[name].push(performance.now() - t0);
        }
      }),
    );
    busyMs[name] += performance.now() - started;
  };
  await batch('direct'); // warm-up, discarded
  await batch('gateway');
  latencies.direct.length = latencies.gateway.length = 0;
  busyMs.direct = busyMs.gateway = 0;
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      await batch('direct');
      await batch('gateway');
    } else {
      await batch('gateway');
      await batch('direct');
    }
  }
  const pct = (xs: number[], p: number) =>
    [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
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
  await Promise.all(Object.values(targets).map((p) => p.close()));
} finally {
  up.kill('SIGTERM');
  await new Promise((r) => up.once('exit', r));
}

async function waitReady(): Promise<{ gateway: string; leader: string }> {
  const deadline = Date.now() + 600_000; // the first run may build llama.cpp
  while (Date.now() < deadline) {
    try {
      const run = JSON.parse(readFileSync(join(state, 'run.json'), 'utf8')) as RunInfo;
      const status = JSON.parse(readFileSync(join(state, 'status.json'), 'utf8')) as StatusFile;
      const group = status.services[0]?.groups[0];
      if (group?.phase === 'Ready')
        return { gateway: run.gateway, leader: `http://${group.leader.host}:${group.leader.port}` };
    } catch {
      // not written yet
    }
    if (up.exitCode !== null) throw new Error(`tandem up exited with ${up.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the group did not become ready');
}
