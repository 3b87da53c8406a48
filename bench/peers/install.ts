// The gateways bench:peers compares with, at pinned versions, installed into the cache once:
// nginx from Debian's package (unpacked, not installed), the Python ones from PyPI in a virtualenv.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
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

export function ensurePythonPeers(progress: Progress): Promise<Venv> {
  const pins = Object.entries(PYTHON_PEERS).map(([name, version]) => `${name}==${version}`);
  const dir = join(cacheDir(), `peers-python-${createHash('sha256').update(pins.join()).digest('hex').slice(0, 12)}`);
  return ensureVenv(dir, `the benchmark's Python peers (${pins.join(', ')})`, progress, ({ pip }) => pip(pins));
}

/** nginx from Debian's package, unpacked into the cache: the path of its binary. */
export function ensureNginx(progress: Progress): string {
  const dir = join(cacheDir(), `peers-nginx-${NGINX}`);
  const binary = join(dir, 'root', 'usr', 'sbin', 'nginx');
  if (existsSync(binary)) return binary;
  progress(`installing nginx ${NGINX} (once): Debian's package, unpacked into ${dir}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const candidate = execFileSync('apt-cache', ['policy', 'nginx'], { encoding: 'utf8' });
  const version = /Candidate:\s*(\S+)/.exec(candidate)?.[1];
  if (!version?.startsWith(`${NGINX}-`)) {
    throw new Error(`Debian offers nginx ${version ?? '(none: run apt-get update)'}, not ${NGINX}`);
  }
  execFileSync('apt-get', ['download', `nginx=${version}`], { cwd: dir, stdio: 'ignore' });
  const deb = readdirSync(dir).find((f) => f.endsWith('.deb'))!;
  execFileSync('dpkg', ['-x', deb, 'root'], { cwd: dir });
  return binary;
}
