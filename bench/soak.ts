// The soak: `tandem up` as users run it, two services (a 2-node llama.cpp service of 2 replicas, an
// autoscaled 1-node one), a mixed load for SOAK_MINUTES (default 15), and a fixed schedule of
// faults: a worker killed, a leader killed, a worker stopped (SIGSTOP: hung, not dead), a changed
// template applied (rolling), a scale up and down, the log directory filling up (run as root:
// `tandem up` gets a mount namespace of its own with a 64 MiB tmpfs as its log directory, filled
// through /proc/PID/root; the host is not changed). It prints what each fault cost, what the
// requests met, latency and Tandem's RSS, heap and descriptors per minute, and one line for scripts;
// the table also goes to soak.json. Bounded: the load stops at the deadline, each request has a
// timeout, and every process is stopped at the end. Loopback only.
// Run: npm run soak   (SOAK_MINUTES=N, SOAK_SEED=S)
import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { mulberry32 } from '../src/util/random.js';
import type { RunInfo, StatusFile } from '../src/cli/state.js';
import { percentile } from './load.js';
import { withPrivateTmpfs } from '../test/tandem-up.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 15);
const SEED = Number(process.env.SOAK_SEED ?? 20261203);
const CLIENTS = 6;
const root = join(fileURLToPath(import.meta.url), '../../..');
const random = mulberry32(SEED);
const start = Date.now();
const deadline = start + MINUTES * 60_000;
const at = (fraction: number) => start + fraction * (deadline - start);

const spec = (name: string, body: Record<string, unknown>) =>
  stringify({ apiVersion: 'tandem.dev/v1alpha1', kind: 'InferenceService', metadata: { name }, spec: body });
const PAIR = {
  model: { servedName: 'pair', source: 'tandem://tiny-llama' },
  engine: { type: 'llamacpp' },
  parallelism: { nodes: 2 },
  replicas: 2,
  resources: { cpu: 1 },
};
const AUTO = {
  model: { servedName: 'auto', source: 'tandem://tiny-llama' },
  engine: { type: 'llamacpp' },
  resources: { cpu: 1 },
  autoscaling: {
    minReplicas: 0,
    maxReplicas: 2,
    targetOngoingRequests: 2,
    scaleToZeroAfter: '30s',
    lookBackPeriod: '5s',
  },
};

const state = mkdtempSync(join(tmpdir(), 'tandem-soak-'));
writeFileSync(join(state, 'services.yaml'), `${spec('pair', PAIR)}---\n${spec('auto', AUTO)}`);
const command = [process.execPath, join(root, 'bin', 'tandem.js'), 'up', join(state, 'services.yaml'), '--port', '0'];
/** Whether the log directory is a tmpfs of its own, to be filled (a mount namespace needs root). */
const smallLogDisk = process.getuid?.() === 0;
const [file, ...args] = smallLogDisk ? withPrivateTmpfs(join(state, 'logs'), '64m', command) : command;
const up = spawn(file!, args, { env: { ...process.env, TANDEM_STATE: state }, stdio: ['ignore', 'ignore', 'pipe'] });
let upLog = '';
up.stderr!.on('data', (d: Buffer) => (upLog = (upLog + d.toString()).slice(-20_000)));
const status = () => JSON.parse(readFileSync(join(state, 'status.json'), 'utf8')) as StatusFile;
const group = (service: string, replica: number) =>
  status()
    .services.find((s) => s.name === service)
    ?.groups.find((g) => g.replica === replica);
const readyGroups = (service: string) =>
  status()
    .services.find((s) => s.name === service)
    ?.groups.filter((g) => g.phase === 'Ready').length ?? 0;

async function waitFor(what: string, ms: number, check: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (check()) return;
    } catch {
      // state files not written yet
    }
    if (up.exitCode !== null) throw new Error(`tandem up exited (${up.exitCode}):\n${upLog}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${upLog.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

process.stderr.write(`soak: ${MINUTES} min, seed ${SEED}, state in ${state}\n`);
await waitFor('the pair service Ready', 600_000, () => readyGroups('pair') === 2);
const { gateway, logDir } = JSON.parse(readFileSync(join(state, 'run.json'), 'utf8')) as RunInfo;
/** The log directory as tandem up and its members see it (its mount namespace's). */
const logs = `/proc/${up.pid}/root${logDir}`;

// --- the load ----------------------------------------------------------------------------------
type Outcome = 'ok' | 'expected' | 'failed';
interface Sent {
  at: number;
  kind: string;
  model: string;
  ms: number;
  outcome: Outcome;
  cause?: string;
  /** Whether some replica of its model was Ready when it failed. */
  servable?: boolean;
}
const sent: Sent[] = [];
const LONG = 'The history of distributed inference, told at length. '.repeat(30);
const KINDS = ['stream', 'stream', 'stream', 'whole', 'long', 'abort', 'slow', 'malformed', 'unknown', 'auto'] as const;

async function one(kind: (typeof KINDS)[number]): Promise<void> {
  const model = kind === 'auto' ? 'auto' : kind === 'unknown' ? 'nobody' : 'pair';
  const streaming = kind !== 'whole' && kind !== 'long';
  const body =
    kind === 'malformed'
      ? '{"model": "pair", "prompt": '
      : JSON.stringify({
          model,
          prompt: kind === 'long' ? LONG : `Request ${sent.length}: once upon a time`,
          max_tokens: kind === 'long' ? 16 : 48,
          temperature: 0,
          stream: streaming,
        });
  const began = Date.now();
  const record = (outcome: Outcome, cause?: string) => {
    const entry: Sent = { at: began, kind, model, ms: Date.now() - began, outcome };
    if (cause) {
      entry.cause = cause;
      entry.servable = readyGroupsSafe(model) > 0;
    }
    sent.push(entry);
  };
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 120_000);
  try {
    const res = await fetch(`${gateway}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: abort.signal,
    });
    if (kind === 'malformed' || kind === 'unknown') {
      await res.text();
      const want = kind === 'malformed' ? 400 : 404;
      return record(res.status === want ? 'expected' : 'failed', `HTTP ${res.status}, ${want} expected`);
    }
    if (res.status !== 200) return record('failed', `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
    const reader = res.body!.getReader();
    let text = '';
    for (let chunks = 0; ; chunks++) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
      if (kind === 'abort' && chunks === 3) {
        await reader.cancel();
        return record('expected'); // the client left: its generation is cancelled upstream
      }
      if (kind === 'slow') await new Promise((r) => setTimeout(r, 50));
    }
    if (streaming && !text.includes('[DONE]')) {
      const error = /"message":"([^"]*)"/.exec(text)?.[1] ?? 'stream ended without [DONE]';
      return record('failed', `cut mid-stream: ${error}`);
    }
    record('ok');
  } catch (err) {
    record('failed', (err as Error).message);
  } finally {
    clearTimeout(timer);
  }
}

function readyGroupsSafe(model: string): number {
  try {
    return readyGroups(model === 'auto' ? 'auto' : 'pair');
  } catch {
    return 0;
  }
}

const clients = Array.from({ length: CLIENTS }, async () => {
  while (Date.now() < deadline && up.exitCode === null) {
    // The autoscaled service gets bursts: a minute on, a minute off.
    const minute = Math.floor((Date.now() - start) / 60_000);
    let kind = KINDS[Math.floor(random() * KINDS.length)]!;
    if (kind === 'auto' && minute % 2 === 1) kind = 'stream';
    await one(kind);
  }
});

// --- Tandem's own footprint, every 10 s ---------------------------------------------------------
interface Footprint {
  at: number;
  rssMiB: number;
  heapMiB: number;
  fds: number;
}
const footprints: Footprint[] = [];
const sampler = setInterval(async () => {
  try {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${up.pid}/status`, 'utf8'))![1]) / 1024;
    const fds = readdirSync(`/proc/${up.pid}/fd`).length;
    // The heap from inside: the gateway's own metric.
    const metrics = await (await fetch(`${gateway}/metrics`)).text();
    const heap = Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(metrics)![1]) / 1024 / 1024;
    footprints.push({ at: Date.now(), rssMiB: rss, heapMiB: heap, fds });
  } catch {
    // exited
  }
}, 10_000);

// --- the faults ---------------------------------------------------------------------------------
interface Fault {
  name: string;
  at: number;
  /** From the fault to the first event that shows it seen (the group recreated or rolling). */
  detectedS?: number;
  /** From the fault until the group (or service) served at full strength again. */
  recoveredS?: number;
  failed?: number;
}
const faults: Fault[] = [];
const events = async () =>
  (
    (await (await fetch(`${gateway}/api/v1/events`)).json()) as {
      items: { at: number; reason: string; replica?: number; service: string }[];
    }
  ).items;
const member = (replica: number, index: number) => group('pair', replica)!.members.find((m) => m.index === index)!.pid!;
const fullStrength = () =>
  readyGroups('pair') === 2 && status().services.find((s) => s.name === 'pair')!.groups.length === 2;

type Seen = (e: { reason: string; replica?: number; service: string }) => boolean;
const eventAfter = async (since: number, seen: Seen) => {
  for (const end = Date.now() + 120_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    const e = (await events()).find((x) => x.at >= since && x.service === 'pair' && seen(x));
    if (e) return e;
  }
  return undefined;
};

/** A fault at `when`: done by `act`, seen in the event that `seen` finds, over once `over` finds one too. */
async function fault(name: string, when: number, act: () => Promise<void> | void, seen: Seen, over?: Seen) {
  while (Date.now() < when) await new Promise((r) => setTimeout(r, 200));
  await waitFor(`the pair service at full strength before "${name}"`, 300_000, fullStrength);
  const f: Fault = { name, at: Date.now() };
  faults.push(f);
  process.stderr.write(`soak: ${name}\n`);
  await act();
  const found = await eventAfter(f.at, seen);
  if (found) f.detectedS = (found.at - f.at) / 1000;
  if (over && !(await eventAfter(f.at, over))) return;
  // Back to two Ready groups after the fault was seen (a group recreated, a rollout over).
  await new Promise((r) => setTimeout(r, 500));
  await waitFor(`the pair service back after "${name}"`, 300_000, fullStrength).catch(() => undefined);
  if (fullStrength()) f.recoveredS = (Date.now() - f.at) / 1000;
}

const schedule = (async () => {
  await fault(
    'SIGKILL of a worker',
    at(0.1),
    () => void process.kill(member(0, 1), 'SIGKILL'),
    (e) => e.replica === 0 && e.reason === 'GroupRecreating',
  );
  await fault(
    'SIGKILL of a leader',
    at(0.25),
    () => void process.kill(member(1, 0), 'SIGKILL'),
    (e) => e.replica === 1 && e.reason === 'GroupRecreating',
  );
  let stopped = 0;
  await fault(
    'SIGSTOP of a worker (hung)',
    at(0.4),
    () => void process.kill((stopped = member(0, 1)), 'SIGSTOP'),
    (e) => e.replica === 0 && e.reason === 'Unresponsive',
  );
  try {
    process.kill(stopped, 'SIGCONT');
  } catch {
    // gone with its group
  }
  await fault(
    'tandem apply of a changed template (rolling)',
    at(0.55),
    async () => {
      // A change of what runs that serves the same requests (a smaller context refused the long prompts).
      const changed = { ...PAIR, engine: { ...PAIR.engine, args: ['--batch-size', '256'] } };
      const res = await fetch(`${gateway}/api/v1/services`, {
        method: 'POST',
        headers: { 'content-type': 'application/yaml' },
        body: spec('pair', changed),
      });
      if (res.status !== 200) throw new Error(`apply: HTTP ${res.status} ${await res.text()}`);
    },
    (e) => e.reason === 'GroupRolling',
  );
  await fault(
    'scale to 3 and back to 2',
    at(0.7),
    async () => {
      const scale = (replicas: number) =>
        fetch(`${gateway}/api/v1/services/pair/scale`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ replicas }),
        });
      await scale(3);
      await waitFor('3 Ready groups', 120_000, () => readyGroups('pair') === 3);
      await scale(2);
    },
    (e) => e.reason === 'ScaledUp',
  );
  if (smallLogDisk)
    await fault(
      'the log directory full (for 20 s)',
      at(0.85),
      async () => {
        const filler = join(logs, 'filler');
        const fd = openSync(filler, 'w');
        try {
          for (const chunk = Buffer.alloc(1024 * 1024, 1); ;) writeSync(fd, chunk);
        } catch {
          // full
        } finally {
          closeSync(fd);
        }
        await new Promise((r) => setTimeout(r, 20_000));
        unlinkSync(filler);
      },
      (e) => e.reason === 'LogsFull',
      (e) => e.reason === 'LogsHaveRoom',
    );
  else process.stderr.write('soak: not root, so no log directory of its own to fill: that fault is left out\n');
})();

await Promise.all([...clients, schedule]);
clearInterval(sampler);
const restarts = status().services.flatMap((s) =>
  s.groups.map((g) => ({ service: s.name, replica: g.replica, restarts: g.restarts })),
);
const logSizes = (() => {
  const out: Record<string, number> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = statSync(path);
      if (st.isDirectory()) walk(path);
      else out[path.slice(logs.length + 1)] = st.size;
    }
  };
  walk(logs);
  return out;
})();
up.kill('SIGTERM');
await new Promise((r) => up.once('exit', r));

// --- the table ----------------------------------------------------------------------------------
for (const f of faults) {
  const window = sent.filter((s) => s.at >= f.at && s.at <= f.at + (f.recoveredS ?? 60) * 1000);
  f.failed = window.filter((s) => s.outcome === 'failed').length;
}
const failed = sent.filter((s) => s.outcome === 'failed');
const unservable = failed.filter((s) => s.servable === false);
const causes: Record<string, number> = {};
for (const s of failed) {
  const cause = `${s.servable === false ? 'no replica Ready' : 'a replica was Ready'}: ${s.cause}`;
  causes[cause] = (causes[cause] ?? 0) + 1;
}
const minutes = Array.from({ length: Math.ceil(MINUTES) }, (_, m) => {
  const inMinute = sent.filter((s) => s.outcome === 'ok' && Math.floor((s.at - start) / 60_000) === m).map((s) => s.ms);
  const fp = footprints.filter((x) => Math.floor((x.at - start) / 60_000) === m).at(-1);
  return {
    minute: m + 1,
    answered: inMinute.length,
    p50Ms: inMinute.length ? Math.round(percentile(inMinute, 50)) : null,
    p99Ms: inMinute.length ? Math.round(percentile(inMinute, 99)) : null,
    rssMiB: fp ? Math.round(fp.rssMiB) : null,
    heapMiB: fp ? Math.round(fp.heapMiB) : null,
    fds: fp?.fds ?? null,
  };
});
/** Least-squares slope per minute. */
const slope = (ys: { at: number; y: number }[]) => {
  if (ys.length < 2) return 0;
  const xs = ys.map((p) => (p.at - start) / 60_000);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, p) => a + p.y, 0) / ys.length;
  const num = ys.reduce((a, p, i) => a + (xs[i]! - mx) * (p.y - my), 0);
  const den = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
};
// The first minute is warm-up (the JIT, the pools): the slope is taken over the rest.
const steady = footprints.filter((f) => f.at - start >= 60_000);
const rssSlope = slope(steady.map((f) => ({ at: f.at, y: f.rssMiB })));
const fdSlope = slope(steady.map((f) => ({ at: f.at, y: f.fds })));
const heapSlope = slope(steady.map((f) => ({ at: f.at, y: f.heapMiB })));
const recovered = faults.filter((f) => f.detectedS !== undefined && f.recoveredS !== undefined).length;
const hung = faults.find((f) => f.name.startsWith('SIGSTOP'));
const result = {
  minutes: MINUTES,
  seed: SEED,
  requests: {
    sent: sent.length,
    answered: sent.filter((s) => s.outcome !== 'failed').length,
    failed: failed.length,
    unservable: unservable.length,
    causes,
    byKind: Object.fromEntries(KINDS.map((k) => [k, sent.filter((s) => s.kind === k).length])),
  },
  faults,
  minutesTable: minutes,
  rssSlopeMiBPerMin: Number(rssSlope.toFixed(2)),
  heapSlopeMiBPerMin: Number(heapSlope.toFixed(2)),
  fdSlopePerMin: Number(fdSlope.toFixed(2)),
  restarts,
  logSizes,
};
writeFileSync('soak.json', `${JSON.stringify(result, null, 2)}\n`);
console.log(
  `soak: ${MINUTES} min, seed ${SEED}, ${CLIENTS} clients, two services (pair: 2 × 2-node llama.cpp; auto: autoscaled 1-node)`,
);
console.log('\nfault                                          detected s  served again s  requests failed');
for (const f of faults)
  console.log(
    `${f.name.padEnd(46)} ${String(f.detectedS ?? '—').padStart(10)} ${String(f.recoveredS ?? '—').padStart(15)} ${String(f.failed).padStart(16)}`,
  );
console.log(
  `\nrequests: ${sent.length} sent, ${result.requests.answered} answered (expected 4xx and client aborts included), ${failed.length} failed, ${unservable.length} with no replica Ready`,
);
for (const [cause, n] of Object.entries(causes)) console.log(`  ${n} × ${cause}`);
console.log('\nminute  answered  p50 ms  p99 ms  RSS MiB  heap MiB  fds');
for (const m of minutes)
  console.log(
    `${String(m.minute).padStart(6)} ${String(m.answered).padStart(9)} ${String(m.p50Ms ?? '—').padStart(7)} ${String(m.p99Ms ?? '—').padStart(7)} ${String(m.rssMiB ?? '—').padStart(8)} ${String(m.heapMiB ?? '—').padStart(9)} ${String(m.fds ?? '—').padStart(4)}`,
  );
console.log(
  `\nRSS slope ${result.rssSlopeMiBPerMin} MiB/min, heap slope ${result.heapSlopeMiBPerMin} MiB/min, fd slope ${result.fdSlopePerMin}/min (after the first minute)`,
);
console.log(`member restarts: ${restarts.map((r) => `${r.service}/${r.replica} ${r.restarts}`).join(', ')}`);
console.log(
  `log files: ${Object.entries(logSizes)
    .map(([p, n]) => `${p} ${Math.round(n / 1024)} KiB`)
    .join(', ')}`,
);
console.log(
  `soak: ${sent.length} requests, ${failed.length} failed, ${unservable.length} unservable, faults ${recovered}/${faults.length} recovered, hung detected in ${hung?.detectedS ?? '—'} s, rss slope ${result.rssSlopeMiBPerMin} MB/min`,
);
