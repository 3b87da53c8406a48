// Builds `llama-server` and `ggml-rpc-server` from one llama.cpp commit, once, into the cache.
// The cache key covers everything that changes the binaries: source commit, cmake flags, the CPU
// (GGML_NATIVE compiles for this processor) and the compiler.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { cacheDir } from '../../util/paths.js';
import { withLock } from '../../util/lock.js';
import type { Progress } from '../../util/progress.js';
import { ensureLlamaSource } from './source.js';
import { runLogged } from '../../util/run-logged.js';
import { CMAKE, CXX, requireTools } from '../../util/toolchain.js';

export interface LlamaBinaries {
  commit: string;
  llamaServer: string;
  rpcServer: string;
}

export const CMAKE_FLAGS = [
  '-DCMAKE_BUILD_TYPE=Release',
  '-DBUILD_SHARED_LIBS=OFF', // self-contained binaries: nothing to find at run time
  '-DGGML_NATIVE=ON',
  '-DGGML_RPC=ON',
  '-DLLAMA_USE_PREBUILT_UI=OFF', // would download the web UI
  '-DLLAMA_OPENSSL=OFF',
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_EXAMPLES=OFF',
];
const TARGETS = ['llama-server', 'ggml-rpc-server'];

function cpuSignature(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string) => info.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1] ?? '';
    return `${process.arch} ${field('model name')} ${field('flags')}`;
  } catch {
    return process.arch;
  }
}

function compilerVersion(): string {
  try {
    return execFileSync('c++', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
  } catch {
    return 'unknown';
  }
}

function hasNinja(): boolean {
  try {
    execFileSync('ninja', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function buildKey(commit: string, generator: string): string {
  return createHash('sha256')
    .update([commit, ...CMAKE_FLAGS, generator, cpuSignature(), compilerVersion()].join('\n'))
    .digest('hex')
    .slice(0, 16);
}

export async function ensureLlamaBinaries(progress: Progress): Promise<LlamaBinaries> {
  const source = await ensureLlamaSource(progress);
  const generator = hasNinja() ? 'Ninja' : 'Unix Makefiles';
  const dir = join(cacheDir(), 'llama.cpp', `build-${buildKey(source.commit, generator)}`);
  const binaries: LlamaBinaries = {
    commit: source.commit,
    llamaServer: join(dir, 'bin', 'llama-server'),
    rpcServer: join(dir, 'bin', 'ggml-rpc-server'),
  };
  const done = join(dir, 'built.json');
  if (existsSync(done)) return binaries;
  requireTools(CMAKE, CXX);
  return withLock(dir, async () => {
    if (existsSync(done)) return binaries;
    const log = join(dir, 'build.log');
    rmSync(log, { force: true });
    progress(
      `building llama.cpp ${source.commit.slice(0, 12)} (${TARGETS.join(', ')}); once, cached in ${dir}; log: ${log}`,
    );
    const started = Date.now();
    await runLogged('cmake', ['-S', source.dir, '-B', dir, '-G', generator, ...CMAKE_FLAGS], log, () => {});
    const jobs = String(availableParallelism());
    let shown = -1;
    await runLogged('cmake', ['--build', dir, '--target', ...TARGETS, '-j', jobs], log, (line) => {
      // Ninja prints "[12/209] …", make prints "[ 42%] …".
      const step = line.match(/^\[(\d+)\/(\d+)\]/);
      const pct = step
        ? Math.floor((100 * Number(step[1])) / Number(step[2]))
        : Number(line.match(/^\[\s*(\d+)%\]/)?.[1] ?? -1);
      if (pct >= 0 && pct >= shown + 10) {
        shown = pct - (pct % 10);
        progress(`building llama.cpp: ${shown}% (${Math.round((Date.now() - started) / 1000)} s)`);
      }
    });
    for (const bin of [binaries.llamaServer, binaries.rpcServer]) {
      if (!existsSync(bin)) throw new Error(`llama.cpp build finished without ${bin}; see ${log}`);
    }
    const seconds = Math.round((Date.now() - started) / 1000);
    writeFileSync(done, JSON.stringify({ commit: source.commit, flags: CMAKE_FLAGS, generator, seconds }, null, 2));
    progress(`built llama.cpp in ${seconds} s`);
    return binaries;
  });
}
