// Python virtualenvs in the cache (vLLM; the benchmarks' Python peers): made once, in place (a
// virtualenv cannot move: its scripts name their own path), marked when whole, pip's progress shown.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cacheDir } from './paths.js';
import { withLock } from './lock.js';
import type { Progress } from './progress.js';
import { runLogged } from './run-logged.js';

export interface Venv {
  dir: string;
  bin(name: string): string;
  /** `pip install ARGS…` into it. */
  pip(args: string[]): Promise<void>;
}

const python = () => process.env.TANDEM_PYTHON ?? 'python3';

/**
 * The virtualenv at `dir`, made and filled by `fill` unless a whole one is there. `what` names it
 * in progress lines; `step` passes fill's own steps on the same way.
 */
export async function ensureVenv(
  dir: string,
  what: string,
  progress: Progress,
  fill: (venv: Venv, step: (line: string) => void) => Promise<void>,
): Promise<Venv> {
  const log = join(dir, 'install.log');
  const step = (line: string) => progress(`installing ${what} (once): ${line}`);
  const bin = (name: string) => join(dir, 'bin', name);
  const venv: Venv = {
    dir,
    bin,
    pip: (args) =>
      runLogged(
        bin('python3'),
        ['-m', 'pip', 'install', '--no-input', '--disable-pip-version-check', ...args],
        log,
        (line) => {
          const m = /^(Collecting|Downloading|Installing collected packages)\s*:?\s*(\S+)?/.exec(line);
          if (m) step(`${m[1]!.toLowerCase()} ${m[2] ?? ''}`.trim());
        },
      ),
  };
  const done = join(dir, '.tandem-installed');
  if (existsSync(done)) return venv;
  return withLock(join(cacheDir(), 'locks', basename(dir)), async () => {
    if (existsSync(done)) return venv;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const started = Date.now();
    step(`a virtualenv in ${dir}`);
    await runLogged(python(), ['-m', 'venv', dir], log, () => {});
    await fill(venv, step);
    const seconds = Math.round((Date.now() - started) / 1000);
    writeFileSync(done, JSON.stringify({ seconds }));
    step(`done in ${seconds} s`);
    return venv;
  });
}
