// `npm test [TIER…]`: runs the tiers in order (default: all of them), each with node's test runner.
// A tier builds only what it needs (cached): unit needs Node alone; integration builds llama.cpp and
// makes the model; browser also installs Debian's Chromium where it is missing; engines installs vLLM and makes its model; k8s builds and starts the test control
// plane (or reuses a running one), with llama.cpp and its model for the cluster gateway's test, and
// stops it afterwards if this run started it, on failure and on Ctrl-C too.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureLlamaBinaries } from '../src/engine/llamacpp/build.js';
import { ensureLlamaSource } from '../src/engine/llamacpp/source.js';
import { ensureTinyLlama } from '../src/model/tiny-llama.js';
import { stderrProgress } from '../src/util/progress.js';
import { ensureKedaOperator } from './k8s/binaries.js';
import { runDir, startCluster, stopCluster } from './k8s/cluster.js';
import { hostLeftovers } from './k8s/real-node.js';
import { ensureVllm } from '../src/engine/vllm/install.js';
import { ensureTinyHf } from '../src/model/tiny-hf.js';
import { ensureChromium } from './browser/chromium.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');

interface Tier {
  /** Why this machine cannot run the tier at all (hardware, privilege): it is skipped, saying so. */
  unavailable?: () => string | undefined;
  /** Builds or starts what the tier needs; returns the cleanup to run after it. */
  prepare?: () => Promise<(() => Promise<void>) | void>;
  /** Commands to run instead of test files (the lint tier), in order, stopping at a failure. */
  commands?: [string, string[]][];
}

async function prepareLlama(): Promise<void> {
  await ensureLlamaBinaries(stderrProgress);
  await ensureTinyLlama((await ensureLlamaSource(stderrProgress)).dir, stderrProgress);
}

const TIERS: Record<string, Tier> = {
  lint: {
    commands: [
      [
        process.execPath,
        [join(root, 'node_modules', 'prettier', 'bin', 'prettier.cjs'), '--check', '--log-level=warn', '.'],
      ],
      [process.execPath, [join(root, 'node_modules', 'eslint', 'bin', 'eslint.js'), '.']],
      // The layering of src/ (.dependency-cruiser.js): no cycle, no import against it.
      [
        process.execPath,
        [
          join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs'),
          '--config',
          '.dependency-cruiser.js',
          'src',
        ],
      ],
    ],
  },
  unit: {},
  integration: { prepare: prepareLlama },
  browser: {
    prepare: async () => {
      await ensureChromium(stderrProgress);
      await prepareLlama();
    },
  },
  engines: {
    unavailable: () => {
      if (process.platform !== 'linux') return 'vLLM groups run in Linux network namespaces';
      if (process.getuid?.() !== 0) return 'vLLM groups run in network namespaces, which need root';
      if (!/\bavx2\b/.test(readFileSync('/proc/cpuinfo', 'utf8'))) return "PyPI's vLLM CPU build needs AVX2";
      return undefined;
    },
    prepare: async () => {
      await ensureVllm(stderrProgress);
      await ensureTinyHf(stderrProgress);
    },
  },
  k8s: {
    prepare: async () => {
      // Built here, with its progress shown, not inside the test that uses it: cold, it takes
      // longer than a test file may run.
      await ensureKedaOperator(stderrProgress);
      const cluster = await startCluster(stderrProgress);
      stderrProgress(`test control plane: KUBECONFIG=${cluster.kubeconfig}${cluster.started ? '' : ' (reused)'}`);
      const stop = async () => {
        await stopCluster();
        const left = hostLeftovers(join(runDir(), 'node'));
        if (left.length > 0) throw new Error(`the real node left on the host: ${left.join('; ')}`);
      };
      try {
        await prepareLlama(); // the cluster gateway's test serves at a pod's address with a real llama-server
      } catch (err) {
        if (cluster.started) await stop();
        throw err;
      }
      if (cluster.started) return stop;
    },
  },
};

const asked = process.argv.slice(2);
const unknown = asked.filter((t) => !(t in TIERS));
if (unknown.length > 0) {
  process.stderr.write(`unknown tier(s): ${unknown.join(', ')}; tiers: ${Object.keys(TIERS).join(', ')}\n`);
  process.exit(2);
}
const tiers = asked.length > 0 ? asked : Object.keys(TIERS);

let child: ChildProcess | undefined;
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = true;
    child?.kill(signal);
  });
}

function runChild(command: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    child = spawn(command, args, { stdio: 'inherit', cwd: root });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    child.on('error', (err) => {
      process.stderr.write(`${command}: ${err.message}\n`);
      resolve(1);
    });
  });
}

const results: string[] = [];
let failed = false;
for (const name of tiers) {
  if (interrupted) break;
  const tier = TIERS[name]!;
  const started = Date.now();
  const unavailable = tier.unavailable?.();
  if (unavailable) {
    stderrProgress(`tier ${name} skipped: this machine cannot run it (${unavailable})`);
    results.push(`${name}: skipped (${unavailable})`);
    continue;
  }
  stderrProgress(`tier ${name}`);
  let code: number;
  let cleanup: (() => Promise<void>) | void = undefined;
  try {
    cleanup = await tier.prepare?.();
    if (tier.commands) {
      code = 0;
      for (const [command, args] of tier.commands) if (code === 0) code = await runChild(command, args);
    } else {
      const dir = join(here, name);
      const files = readdirSync(dir)
        .filter((f) => f.endsWith('.test.js'))
        .map((f) => join(dir, f));
      code = await runChild(process.execPath, [
        '--test',
        '--test-reporter=spec',
        '--test-concurrency=2',
        '--test-timeout=600000',
        ...files,
      ]);
    }
  } catch (err) {
    // A missing tool or a failed build: one clear line (a build's own log tail is in its message).
    process.stderr.write(`tier ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    code = 1;
  }
  try {
    await cleanup?.();
  } catch (err) {
    // What a tier leaves behind (processes, the real node's changes to the host) fails it.
    process.stderr.write(`tier ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    code = 1;
  }
  failed ||= code !== 0;
  results.push(`${name}: ${code === 0 ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - started) / 1000)} s`);
}
stderrProgress(`tiers: ${results.join('; ')}${interrupted ? '; interrupted' : ''}`);
process.exit(interrupted ? 130 : failed ? 1 : 0);
