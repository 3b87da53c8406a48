// `tandem up` as users run it (a separate process), for the benchmarks: started on a spec, waited
// on until every group is Ready (its state files say so), stopped with SIGTERM.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StatusFile, RunInfo } from '../src/cli/state.js';
import { cpuMs } from './cpu.js';

const root = join(fileURLToPath(import.meta.url), '../../..');

export interface TandemUp {
  /** The gateway's base URL. */
  gateway: string;
  /** Each group's leader, by replica. */
  leaders: string[];
  state: string;
  /** The `tandem up` process's CPU time so far (ms): the gateway and the reconciler, not the engines. */
  cpuMs(): number;
  stop(): Promise<void>;
}

export async function tandemUp(spec: string, args: string[] = [], replicas = 1): Promise<TandemUp> {
  const state = mkdtempSync(join(tmpdir(), 'tandem-bench-'));
  const file = join(state, 'bench.yaml');
  writeFileSync(file, spec);
  const up = spawn(process.execPath, [join(root, 'bin', 'tandem.js'), 'up', file, '--port', '0', ...args], {
    env: { ...process.env, TANDEM_STATE: state },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const stop = async () => {
    if (up.exitCode !== null) return;
    up.kill('SIGTERM');
    await new Promise((r) => up.once('exit', r));
  };
  const deadline = Date.now() + 600_000; // the first run may build llama.cpp
  while (Date.now() < deadline) {
    try {
      const run = JSON.parse(readFileSync(join(state, 'run.json'), 'utf8')) as RunInfo;
      const status = JSON.parse(readFileSync(join(state, 'status.json'), 'utf8')) as StatusFile;
      const groups = status.services[0]?.groups ?? [];
      if (groups.length === replicas && groups.every((g) => g.phase === 'Ready')) {
        const leaders = groups.map((g) => `http://${g.leader.host}:${g.leader.port}`);
        return { gateway: run.gateway, leaders, state, stop, cpuMs: () => cpuMs(up.pid!) };
      }
    } catch {
      // not written yet
    }
    if (up.exitCode !== null) throw new Error(`tandem up exited with ${up.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error('the groups did not become ready');
}
