// The gateways bench:peers compares with, at pinned versions, installed into the cache once:
// nginx and wrk from Debian's packages (unpacked, not installed), the Python ones from PyPI in a
// virtualenv.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../src/util/paths.js';
import type { Progress } from '../../src/util/progress.js';
import { ensureVenv, type Venv } from '../../src/util/venv.js';

export const PYTHON_PEERS = {
  'sglang-router': '0.3.2',
  smg: '1.13.0',
  'vllm-router': '0.1.17',
  'litellm[proxy]': '1.108.5',
} as const;
export const NGINX = '1.22.1';
export const WRK = '4.1.0';

export function ensurePythonPeers(progress: Progress): Promise<Venv> {
  const pins = Object.entries(PYTHON_PEERS).map(([name, version]) => `${name}==${version}`);
  const dir = join(cacheDir(), `peers-python-${createHash('sha256').update(pins.join()).digest('hex').slice(0, 12)}`);
  return ensureVenv(dir, `the benchmark's Python peers (${pins.join(', ')})`, progress, ({ pip }) => pip(pins));
}

/** nginx from Debian's package, unpacked into the cache: the path of its binary. */
export function ensureNginx(progress: Progress): string {
  return join(debianPackages(`nginx-${NGINX}`, [['nginx', NGINX]], progress), 'usr', 'sbin', 'nginx');
}

/** wrk, the load generator the figures were measured with, and the LuaJIT it links. */
export interface Wrk {
  binary: string;
  env: NodeJS.ProcessEnv;
}

export function ensureWrk(progress: Progress): Wrk {
  const root = debianPackages(
    `wrk-${WRK}`,
    [
      ['wrk', WRK],
      ['libluajit2-5.1-2', ''],
    ],
    progress,
  );
  return {
    binary: join(root, 'usr', 'bin', 'wrk'),
    env: { ...process.env, LD_LIBRARY_PATH: join(root, 'usr', 'lib', 'x86_64-linux-gnu') },
  };
}

/**
 * Debian packages unpacked (never installed) into one folder of the cache: its root. Each package
 * is [name, version prefix]; an empty prefix takes the candidate Debian offers.
 */
function debianPackages(name: string, packages: [string, string][], progress: Progress): string {
  const dir = join(cacheDir(), `peers-${name}`);
  const root = join(dir, 'root');
  if (existsSync(join(dir, 'done'))) return root;
  progress(`installing ${name} (once): Debian's packages, unpacked into ${dir}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [pkg, wanted] of packages) {
    const policy = execFileSync('apt-cache', ['policy', pkg], { encoding: 'utf8' });
    const version = /Candidate:\s*(\S+)/.exec(policy)?.[1];
    if (!version || version === '(none)' || !version.startsWith(wanted)) {
      throw new Error(`Debian offers ${pkg} ${version ?? '(none: run apt-get update)'}, not ${wanted || 'any'}`);
    }
    execFileSync('apt-get', ['download', `${pkg}=${version}`], { cwd: dir, stdio: 'ignore' });
  }
  for (const deb of readdirSync(dir).filter((f) => f.endsWith('.deb'))) {
    execFileSync('dpkg', ['-x', deb, 'root'], { cwd: dir });
  }
  writeFileSync(join(dir, 'done'), '');
  return root;
}
