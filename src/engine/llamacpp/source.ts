// The llama.cpp source: the git bundle that the `node-llama-cpp` npm package ships, checked out
// once into the cache. Never committed, never downloaded from anywhere else.
import { execFileSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../../util/paths.js';
import { withLock } from '../../util/lock.js';
import type { Progress } from '../../util/progress.js';
import { GIT, requireTools } from '../../util/toolchain.js';

export interface LlamaSource {
  /** Commit of the bundle's HEAD: the RPC protocol requires leader and workers built from one commit. */
  commit: string;
  dir: string;
}

/** Finds node_modules/node-llama-cpp/llama/gitRelease.bundle from this file upwards. */
export function findBundle(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(
        'node-llama-cpp is not installed (its llama/gitRelease.bundle holds the llama.cpp source): run `npm install`',
      );
    }
    dir = parent;
  }
}

export function bundleCommit(bundle: string): string {
  const heads = execFileSync('git', ['bundle', 'list-heads', bundle], { encoding: 'utf8' });
  const commit = heads.split(/\s+/)[0];
  if (!commit || !/^[0-9a-f]{40}$/.test(commit)) throw new Error(`${bundle}: no commit in git bundle`);
  return commit;
}

export async function ensureLlamaSource(progress: Progress): Promise<LlamaSource> {
  const bundle = findBundle();
  requireTools(GIT);
  const commit = bundleCommit(bundle);
  const root = join(cacheDir(), 'llama.cpp');
  const dir = join(root, `src-${commit.slice(0, 12)}`);
  if (existsSync(join(dir, 'CMakeLists.txt'))) return { commit, dir };
  return withLock(root, async () => {
    if (existsSync(join(dir, 'CMakeLists.txt'))) return { commit, dir };
    progress(`checking out llama.cpp ${commit.slice(0, 12)} from node-llama-cpp's source bundle`);
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    execFileSync('git', ['clone', '--quiet', bundle, tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('git', ['-C', tmp, 'checkout', '--quiet', commit], { stdio: ['ignore', 'ignore', 'pipe'] });
    renameSync(tmp, dir);
    return { commit, dir };
  });
}
