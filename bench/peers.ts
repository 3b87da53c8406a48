// bench:peers: Tandem's gateway beside the gateways a team would otherwise put in front of its
// replicas (nginx; sglang-router, smg and vllm-router, in Rust; LiteLLM's proxy, in Python), each in
// turn in front of the same two llama-server replicas, in interleaved rounds so that machine noise
// hits all alike. Tandem runs as users run it (`tandem up`), with API keys, metrics and prefix
// routing on; the routers run round robin, their cheapest policy. Beside them, as a yardstick, the
// least a Node gateway can do (node:http + undici, bench/peers/node-floor.ts).
//   1. Overhead: 1-token completions at concurrency 1, 8 and 32, driven by wrk (Debian's, unpacked
//      into the cache) as in the figures: RPS, p50, p99, errors, and each gateway's added
//      p50 and RPS ratio against the replicas called directly (half the connections to each); each
//      gateway's CPU per request served (its process and workers, from /proc), and one line for
//      scripts: `cpu per request: tandem N µs, node floor M µs, ratio R`.
//   2. Streams: time to first token at concurrency 8.
//   3. Shared prefix (bench/shared-prefix.ts, inference-perf's shape): groups of prompts sharing a
//      long system prompt, 64–128 tokens streamed, Poisson arrivals at three rates up to the two
//      replicas' saturation: TTFT p50/p90, ITL p50, output tokens/s and errors for the replicas
//      called round robin, Tandem's prefix routing, and sglang-router's and vllm-router's
//      cache_aware and round robin. Each point gets system prompts of its own, warmed by the
//      contestant's own routing before it is measured.
// Run: npm run bench:peers (ROUNDS=N rounds, POINT_SECONDS=S per wrk run, PREFIX_SECONDS=S of
// arrivals per shared-prefix point, PREFIX_GROUPS=N system prompts in each, PREFIX_CHARS=N
// characters each, PREFIX_WARMUP=N unmeasured passes over them first, SECTIONS=1,2,3 which of
// them, PEERS=node-floor,nginx,… which peers beside Tandem in sections 1 and 2,
// ENGINE_ARGS="--cache-ram 0" extra llama-server arguments for both replicas; the first run
// installs the peers, once).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'undici';
import { addKey } from '../src/gateway/keys.js';
import { stderrProgress } from '../src/util/progress.js';
import { seededNormals } from '../src/util/random.js';
import { batch, percentile, pools, type BatchResult } from './load.js';
import { ensureNginx, ensurePythonPeers, ensureWrk, NGINX, PYTHON_PEERS } from './peers/install.js';
import { mean, postScript, wrkPoint, type WrkResult } from './wrk.js';
import { launchPeer, type Launched, type PeerContext, type PeerName } from './peers/launch.js';
import { tandemUp } from './tandem-up.js';
import { sharedPrefixPoint, type StreamPoint } from './shared-prefix.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
/** Seconds of each wrk run: a point is ROUNDS of them, interleaved with the other gateways'. */
const POINT_SECONDS = Number(process.env.POINT_SECONDS ?? 5);
const CONCURRENCIES = [1, 8, 32];
/** Seconds of Poisson arrivals per shared-prefix point, and its number of prompt groups. */
const PREFIX_SECONDS = Number(process.env.PREFIX_SECONDS ?? 30);
const PREFIX_GROUPS = Number(process.env.PREFIX_GROUPS ?? 8);
/** Characters of each system prompt (longer ones need a larger --ctx-size in ENGINE_ARGS: ~3 characters a token). */
const PREFIX_CHARS = Number(process.env.PREFIX_CHARS ?? 2000);
/** Unmeasured passes over a point's groups before its arrivals, through the contestant (bench/shared-prefix.ts). */
const PREFIX_WARMUP = Number(process.env.PREFIX_WARMUP ?? 2);
/** Which of the sections below to run (SECTIONS=3: the shared-prefix workload alone). */
const SECTIONS = new Set((process.env.SECTIONS ?? '1,2,3').split(',').map(Number));
/** Which peers sections 1 and 2 run beside Tandem (PEERS=node-floor: the yardstick alone, for more rounds). */
const PEERS = new Set((process.env.PEERS ?? 'node-floor,nginx,sglang-router,smg,vllm-router,litellm').split(','));
const MODEL = 'bench';
/** Extra arguments for both replicas (ENGINE_ARGS="--cache-ram 0": no host-memory prompt cache, as on vLLM). */
const ENGINE_ARGS = (process.env.ENGINE_ARGS ?? '').split(' ').filter(Boolean);
/** The yardstick: node:http + undici, round robin, nothing else (bench/peers/node-floor.ts). */
const FLOOR = 'node floor (yardstick)';

const nginx = ensureNginx(stderrProgress);
const venv = await ensurePythonPeers(stderrProgress);
const wrk = ensureWrk(stderrProgress);
const dir = mkdtempSync(join(tmpdir(), 'tandem-peers-'));
const key = addKey(join(dir, 'keys.yaml'), { name: 'bench' });
stderrProgress('starting two replicas and Tandem (tandem up, with --api-keys)');
const tandem = await tandemUp(
  `apiVersion: tandem.dev/v1alpha1
kind: InferenceService
metadata: {name: bench}
spec:
  model: {servedName: ${MODEL}, source: "tandem://tiny-llama"}
  engine: {type: llamacpp, args: ${JSON.stringify(ENGINE_ARGS)}}
  replicas: 2
  resources: {cpu: 1}
`,
  ['--api-keys', join(dir, 'keys.yaml')],
  2,
);
const ctx: PeerContext = { venv, nginx, dir, leaders: tandem.leaders, model: MODEL, key };
const headers = { authorization: `Bearer ${key}` };
const launched: Launched[] = [];

interface Target {
  name: string;
  urls: string[];
  pools: (concurrency: number) => Pool[];
  /** The gateway's CPU time so far (ms); absent for the replicas called directly. */
  cpuMs?: () => number;
}
const opened: Pool[] = [];
const target = (name: string, urls: string[], cpuMs?: () => number): Target => ({
  name,
  urls,
  ...(cpuMs ? { cpuMs } : {}),
  pools: (c) => {
    const p = pools(urls, c);
    opened.push(...p);
    return p;
  },
});
async function peer(name: PeerName, label: string, policy?: string): Promise<Target> {
  const p = await launchPeer(name, ctx, policy);
  launched.push(p);
  await ready(label, p.url);
  return target(label, [p.url], p.cpuMs);
}

try {
  stderrProgress('starting the peers');
  const overheadPeers: [PeerName, string][] = [
    ['node-floor', FLOOR],
    ['nginx', `nginx ${NGINX}`],
    ['sglang-router', `sglang-router ${PYTHON_PEERS['sglang-router']}`],
    ['smg', `smg ${PYTHON_PEERS.smg}`],
    ['vllm-router', `vllm-router ${PYTHON_PEERS['vllm-router']}`],
    ['litellm', `LiteLLM ${PYTHON_PEERS['litellm[proxy]']}`],
  ];
  const overheadTargets: Target[] = [];
  if (SECTIONS.has(1) || SECTIONS.has(2)) {
    overheadTargets.push(target('direct', tandem.leaders), target('tandem', [tandem.gateway], tandem.cpuMs));
    for (const [name, label] of overheadPeers) if (PEERS.has(name)) overheadTargets.push(await peer(name, label));
  }
  if (SECTIONS.has(1)) await overhead(overheadTargets);
  if (SECTIONS.has(2)) {
    console.log('\n2. Streams: 32-token completions, concurrency 8: time to first token');
    const streamed = JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: 32, stream: true });
    table('concurrency 8, streamed', await rounds(overheadTargets, 8, 48, () => streamed), 'direct', true);
  }
  if (SECTIONS.has(3)) await sharedPrefix();
} finally {
  await Promise.all(opened.map((p) => p.close()));
  await Promise.all(launched.map((p) => p.stop()));
  await tandem.stop();
}

/** 1. Overhead: wrk's 1-token hammer at each concurrency, and each gateway's CPU per request. */
async function overhead(overheadTargets: Target[]): Promise<void> {
  const oneToken = JSON.stringify({ model: MODEL, prompt: 'Hello', max_tokens: 1, temperature: 0 });
  const script = postScript(dir, oneToken, headers);
  console.log(
    `\n1. Overhead: 1-token completions, two llama-server replicas, wrk, ${ROUNDS} interleaved rounds of ${POINT_SECONDS} s per point`,
  );
  // Each gateway's own CPU over its wrk runs, per request served: per concurrency, and in all.
  const cpu = new Map<string, Map<number | 'all', { ms: number; requests: number }>>();
  const charge = (name: string, c: number | 'all', ms: number, requests: number) => {
    const byC = cpu.get(name) ?? new Map<number | 'all', { ms: number; requests: number }>();
    cpu.set(name, byC);
    const sum = byC.get(c) ?? { ms: 0, requests: 0 };
    byC.set(c, { ms: sum.ms + ms, requests: sum.requests + requests });
  };
  // Not counted: each gateway's code compiled hot and its connections open before the first point.
  for (const t of overheadTargets) await wrkPoint(wrk, t.urls, '/v1/completions', script, 8, 2);
  for (const c of CONCURRENCIES) {
    const results = new Map<string, WrkResult[]>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const t of rotate(overheadTargets, r)) {
        const before = t.cpuMs?.();
        const res = await wrkPoint(wrk, t.urls, '/v1/completions', script, c, POINT_SECONDS);
        if (before !== undefined) {
          const ms = t.cpuMs!() - before;
          charge(t.name, c, ms, res.rps * POINT_SECONDS);
          charge(t.name, 'all', ms, res.rps * POINT_SECONDS);
        }
        results.set(t.name, [...(results.get(t.name) ?? []), res]);
      }
    }
    wrkTable(`concurrency ${c}`, results, 'direct');
  }
  const perRequest = (name: string, c: number | 'all') => {
    const m = cpu.get(name)?.get(c);
    return m && m.requests > 0 ? (m.ms * 1000) / m.requests : NaN;
  };
  print('CPU per request (µs): the gateway process and its workers, over its wrk runs', [
    ['gateway', ...CONCURRENCIES.map((c) => `c=${c}`), 'all', `÷ ${FLOOR}`],
    ...[...cpu.keys()].map((name) => [
      name,
      ...CONCURRENCIES.map((c) => perRequest(name, c).toFixed(0)),
      perRequest(name, 'all').toFixed(0),
      (perRequest(name, 'all') / perRequest(FLOOR, 'all')).toFixed(2),
    ]),
  ]);
  const [own, floor] = [perRequest('tandem', 'all'), perRequest(FLOOR, 'all')];
  console.log(
    `cpu per request: tandem ${own.toFixed(0)} µs, node floor ${floor.toFixed(0)} µs, ratio ${(own / floor).toFixed(2)}`,
  );
}

/** 3. The shared-prefix workload at three Poisson rates up to what the two replicas can do. */
async function sharedPrefix(): Promise<void> {
  const prefixTargets = [
    target('direct (round robin)', tandem.leaders),
    target('tandem (prefix)', [tandem.gateway]),
    await peer('sglang-router', 'sglang-router cache_aware', 'cache_aware'),
    await peer('sglang-router', 'sglang-router round_robin', 'round_robin'),
    await peer('vllm-router', 'vllm-router cache_aware', 'cache_aware'),
    await peer('vllm-router', 'vllm-router round_robin', 'round_robin'),
  ];
  // Each point gets system prompts of its own, so that no one finds the replicas' caches warm.
  let tenants = 0;
  const systemPrompts = () => Array.from({ length: PREFIX_GROUPS }, () => prose(++tenants, PREFIX_CHARS));
  const point = (t: Target, rate: number, seed: number, requests = Math.max(12, Math.round(rate * PREFIX_SECONDS))) =>
    sharedPrefixPoint(t.pools(64), {
      rate,
      requests,
      systemPrompts: systemPrompts(),
      model: MODEL,
      headers,
      seed,
      warmup: PREFIX_WARMUP,
    });
  // Saturation: as fast as the replicas called directly (after the same warm-up) answer a burst of the workload at once.
  const burst = await point(prefixTargets[0]!, 1000, 1, 32);
  const capacity = burst.ttfts.length / burst.seconds;
  const rates = [0.4, 0.7, 1].map((f) => Number((f * capacity).toFixed(2)));
  console.log(
    `\n3. Shared prefix (inference-perf's shape): ${PREFIX_GROUPS} groups × a ${PREFIX_CHARS.toLocaleString('en')}-character system prompt, a question each, ` +
      `64–128 tokens streamed; Poisson arrivals at ${rates.join(', ')} req/s (0.4, 0.7 and 1 × ${capacity.toFixed(2)}, ` +
      `the replicas' own rate on a burst), ${PREFIX_SECONDS} s of arrivals per point after ${PREFIX_WARMUP} unmeasured ` +
      `passes over its groups, ${ROUNDS} interleaved rounds` +
      (ENGINE_ARGS.length > 0 ? `; replicas with ${ENGINE_ARGS.join(' ')}` : ''),
  );
  const summary: string[] = [];
  for (const [k, rate] of rates.entries()) {
    const results = new Map<string, StreamPoint[]>();
    for (let r = 0; r < ROUNDS; r++)
      for (const t of rotate(prefixTargets, r))
        results.set(t.name, [...(results.get(t.name) ?? []), await point(t, rate, 1000 * k + r)]);
    summary.push(streamTable(`${rate} req/s`, results));
  }
  for (const line of summary) console.log(line);
}

/** `ROUNDS` batches per target, the order rotated each round. */
async function rounds(
  targets: Target[],
  concurrency: number,
  requests: number,
  body: (i: number) => string,
): Promise<Map<string, BatchResult[]>> {
  const out = new Map<string, BatchResult[]>();
  const byTarget = new Map(targets.map((t) => [t.name, t.pools(concurrency)]));
  for (const t of targets)
    await batch(byTarget.get(t.name)!, {
      concurrency,
      requests: concurrency * 2,
      path: '/v1/completions',
      headers,
      body,
    }); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const t of rotate(targets, r)) {
      const res = await batch(byTarget.get(t.name)!, { concurrency, requests, path: '/v1/completions', headers, body });
      out.set(t.name, [...(out.get(t.name) ?? []), res]);
    }
  }
  return out;
}

/** The points of each contestant at one rate: pooled percentiles, and each round's spread. */
function streamTable(title: string, results: Map<string, StreamPoint[]>): string {
  const p90s = (ps: StreamPoint[]) => ps.map((p) => percentile(p.ttfts, 90));
  const rates = (ps: StreamPoint[]) => ps.map((p) => p.outputTokens / p.seconds);
  const span = (xs: number[], digits: number) =>
    `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
  const rows = [['gateway', 'TTFT p50', 'TTFT p90', 'p90 by round', 'ITL p50', 'out tok/s', 'by round', 'errors']];
  const scored: { name: string; p90: number; tps: number }[] = [];
  for (const [name, ps] of results) {
    const ttfts = ps.flatMap((p) => p.ttfts);
    const tps = ps.reduce((n, p) => n + p.outputTokens, 0) / ps.reduce((n, p) => n + p.seconds, 0);
    scored.push({ name, p90: percentile(ttfts, 90), tps });
    rows.push([
      name,
      percentile(ttfts, 50).toFixed(0),
      percentile(ttfts, 90).toFixed(0),
      span(p90s(ps), 0),
      percentile(
        ps.flatMap((p) => p.itls),
        50,
      ).toFixed(1),
      tps.toFixed(0),
      span(rates(ps), 0),
      String(ps.reduce((n, p) => n + p.errors, 0)),
    ]);
  }
  print(`shared prefix, ${title} (ms; tokens/s)`, rows);
  for (const [name, ps] of results) {
    const first = ps.find((p) => p.firstError)?.firstError;
    if (first) console.log(`  ${name}: first error: ${first}`);
  }
  const best = (by: (x: (typeof scored)[number]) => number) =>
    scored.filter((x) => !x.name.startsWith('tandem')).sort((a, b) => by(a) - by(b))[0]!;
  const own = scored.find((x) => x.name.startsWith('tandem'))!;
  const [p90Peer, tpsPeer] = [best((x) => x.p90), best((x) => -x.tps)];
  return (
    `shared prefix ${title}: tandem TTFT p90 ${own.p90.toFixed(0)} ms, best other ${p90Peer.p90.toFixed(0)} (${p90Peer.name}); ` +
    `tandem ${own.tps.toFixed(0)} tok/s, best other ${tpsPeer.tps.toFixed(0)} (${tpsPeer.name})`
  );
}

function table(title: string, results: Map<string, BatchResult[]>, baseline?: string, ttft = false): void {
  const merged = new Map(
    [...results].map(([name, rs]) => [
      name,
      {
        latencies: rs.flatMap((r) => r.latencies),
        ttfts: rs.flatMap((r) => r.ttfts),
        errors: rs.reduce((n, r) => n + r.errors, 0),
        rps: rs.reduce((n, r) => n + r.latencies.length, 0) / rs.reduce((s, r) => s + r.seconds, 0),
        firstError: rs.find((r) => r.firstError)?.firstError,
      },
    ]),
  );
  const base = baseline ? merged.get(baseline) : undefined;
  const head = ['gateway', 'RPS', 'p50 ms', 'p99 ms', ...(ttft ? ['TTFT p50', 'TTFT p90'] : []), 'errors'];
  if (base) head.push('+p50 ms', 'RPS ratio');
  const rows = [head];
  for (const [name, m] of merged) {
    const row = [
      name,
      m.rps.toFixed(1),
      percentile(m.latencies, 50).toFixed(1),
      percentile(m.latencies, 99).toFixed(1),
      ...(ttft ? [percentile(m.ttfts, 50).toFixed(1), percentile(m.ttfts, 90).toFixed(1)] : []),
      String(m.errors),
    ];
    if (base) {
      row.push(
        (percentile(m.latencies, 50) - percentile(base.latencies, 50)).toFixed(1),
        (m.rps / base.rps).toFixed(2),
      );
    }
    rows.push(row);
  }
  print(title, rows);
  for (const [name, m] of merged) if (m.firstError) console.log(`  ${name}: first error: ${m.firstError}`);
}

/** The wrk points of each gateway, summed over rounds: RPS over all, percentiles the mean of the rounds'. */
function wrkTable(title: string, results: Map<string, WrkResult[]>, baseline: string): void {
  const base = results.get(baseline)!;
  const head = ['gateway', 'RPS', 'p50 ms', 'p99 ms', 'errors', '+p50 ms', 'RPS ratio'];
  const rows = [head];
  for (const [name, rs] of results) {
    const p50 = mean(rs, (r) => r.p50);
    rows.push([
      name,
      mean(rs, (r) => r.rps).toFixed(1),
      p50.toFixed(2),
      mean(rs, (r) => r.p99).toFixed(1),
      String(rs.reduce((n, r) => n + r.errors, 0)),
      (p50 - mean(base, (r) => r.p50)).toFixed(2),
      (mean(rs, (r) => r.rps) / mean(base, (r) => r.rps)).toFixed(2),
    ]);
  }
  print(title, rows);
}

function print(title: string, rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(`\n${title}`);
  for (const r of rows)
    console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
}

function rotate<T>(xs: T[], by: number): T[] {
  const k = by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/** `length` characters of words from a seeded generator: a system prompt no other tenant shares. */
function prose(seed: number, length: number): string {
  const words = ['model', 'replica', 'group', 'leader', 'worker', 'token', 'cache', 'prefix', 'route', 'queue'];
  const normals = seededNormals(`tenant-${seed}`, Math.ceil(length / 4), 1);
  let text = `Tenant ${seed}.`;
  for (let i = 0; text.length < length; i++)
    text += ` ${words[Math.abs(Math.floor(normals[i]! * 1000)) % words.length]}`;
  return text.slice(0, length);
}

/** Waits until a gateway answers a completion (it may still be starting or finding its workers). */
async function ready(label: string, url: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: MODEL, prompt: 'Hi', max_tokens: 1 }),
        signal: AbortSignal.timeout(10_000),
      });
      if (res.ok) return;
      last = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${label} did not answer within 120 s (last: ${last}); its log is in ${dir}`);
}
