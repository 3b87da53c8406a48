// One point of load from wrk (the C load generator the figures were measured with): a
// fixed concurrency for a fixed time, one thread, the same POST body every time. It takes a small
// share of the CPU the gateways and engines share; the Node load generator (load.ts) took a core.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Wrk } from './peers/install.js';

export interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  /** Non-2xx answers and socket errors. */
  errors: number;
}

/** A wrk script that sends `body` as a JSON POST with `headers`. */
export function postScript(dir: string, body: string, headers: Record<string, string>): string {
  const path = join(dir, 'post.lua');
  const lua = (s: string) => JSON.stringify(s); // a JSON string is a valid Lua string here (ASCII)
  writeFileSync(
    path,
    [
      'wrk.method = "POST"',
      `wrk.body = ${lua(body)}`,
      'wrk.headers["content-type"] = "application/json"',
      ...Object.entries(headers).map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}`),
    ].join('\n'),
  );
  return path;
}

/**
 * `concurrency` connections for `seconds` against `urls` (several: the connections split evenly
 * among them, one wrk each, at once). RPS is the sum; percentiles the mean of the runs' (the urls
 * are alike replicas).
 */
export async function wrkPoint(
  wrk: Wrk,
  urls: string[],
  path: string,
  script: string,
  concurrency: number,
  seconds: number,
): Promise<WrkResult> {
  const targets = urls.slice(0, Math.min(urls.length, concurrency));
  const runs = await Promise.all(
    targets.map((u) => once(wrk, `${u}${path}`, script, Math.floor(concurrency / targets.length), seconds)),
  );
  return {
    rps: runs.reduce((s, r) => s + r.rps, 0),
    p50: mean(runs, (r) => r.p50),
    p99: mean(runs, (r) => r.p99),
    errors: runs.reduce((s, r) => s + r.errors, 0),
  };
}

/** The mean of `f` over `results`. */
export function mean(results: WrkResult[], f: (r: WrkResult) => number): number {
  return results.reduce((s, r) => s + f(r), 0) / results.length;
}

function once(wrk: Wrk, url: string, script: string, connections: number, seconds: number): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '30s', '--latency', '-s', script, url];
  return new Promise((resolve, reject) => {
    const child = spawn(wrk.binary, args, { env: wrk.env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    // 'close', not 'exit': the process can be gone before its output has all been read.
    child.once('close', (code) => {
      const rps = /Requests\/sec:\s*([\d.]+)/.exec(out);
      if (code !== 0 || !rps) return reject(new Error(`wrk ${args.join(' ')} failed (${code}): ${out}`));
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      resolve({
        rps: Number(rps[1]),
        p50: millis(/50%\s+([\d.]+)(us|ms|s)/.exec(out)),
        p99: millis(/99%\s+([\d.]+)(us|ms|s)/.exec(out)),
        errors:
          Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) +
          (socket ? socket.slice(1).reduce((s, n) => s + Number(n), 0) : 0),
      });
    });
  });
}

function millis(m: RegExpExecArray | null): number {
  if (!m) return NaN;
  const scale = { us: 0.001, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's'];
  return Number(m[1]) * scale;
}
