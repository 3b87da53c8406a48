// What a machine without the build tools sees: one line naming what to install.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '../../../..');

/** An environment whose PATH holds node and nothing else; fresh caches so nothing is found built. */
function bare(): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bare-'));
  symlinkSync(process.execPath, join(dir, 'node'));
  return {
    PATH: dir,
    HOME: dir,
    TANDEM_CACHE: join(dir, 'cache'),
    TANDEM_K8S_DIR: join(dir, 'k8s'),
    TANDEM_STATE: dir,
  };
}

test('without git, cmake or a compiler, building llama.cpp is one line that names what to install', () => {
  const run = spawnSync(process.execPath, [join(root, 'bin', 'tandem.js'), 'prepare'], {
    env: bare(),
    encoding: 'utf8',
  });
  assert.equal(run.status, 1);
  assert.equal(run.stderr, 'tandem: git not found on PATH: install git (Debian/Ubuntu: apt install git)\n');
});

test('without Go, the k8s tier fails with one line that names it; nothing else starts', () => {
  const run = spawnSync(process.execPath, [join(root, 'dist', 'test', 'run.js'), 'k8s'], {
    env: bare(),
    encoding: 'utf8',
  });
  assert.equal(run.status, 1);
  const lines = run.stderr.trim().split('\n');
  assert.ok(
    lines.includes('tier k8s: go not found on PATH: install Go ≥ 1.26 (https://go.dev/doc/install)'),
    run.stderr,
  );
  assert.ok(!/^\s+at /m.test(run.stderr), `a stack trace:\n${run.stderr}`);
});
