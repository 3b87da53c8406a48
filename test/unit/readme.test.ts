// The README's quickstart must be what CI runs, and its example must be valid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadServices } from '../../src/spec/load.js';

const root = join(fileURLToPath(import.meta.url), '../../../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const quickstart = readme.slice(readme.indexOf('## Quickstart'), readme.indexOf('## Concepts'));
const shellBlocks = [...quickstart.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());

test("the README's two commands are the ones CI runs", () => {
  const [main] = shellBlocks;
  const testCommand = shellBlocks.at(-1);
  assert.equal(main, 'npm install && npx tandem up examples/tiny-2node.yaml');
  assert.equal(testCommand, 'npm test');
  const ci = readFileSync(join(root, '.ci', 'run'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#') && !/^(set|cd) /.test(l));
  assert.deepEqual(ci, ['npm install --no-audit --no-fund', testCommand]);
  assert.ok(main!.startsWith('npm install && '), 'CI installs as the quickstart does');
});

test("the quickstart's example is valid and serves the model the README's calls name", () => {
  const [loaded] = loadServices([join(root, 'examples', 'tiny-2node.yaml')]);
  const { spec } = loaded!.service;
  assert.equal(spec.replicas, 2);
  assert.deepEqual(spec.parallelism, { nodes: 2 });
  for (const call of quickstart.matchAll(/"model": "([^"]+)"|model: '([^']+)'/g))
    assert.equal(call[1] ?? call[2], spec.model.servedName);
  assert.match(quickstart, /http:\/\/127\.0\.0\.1:8080\/v1/);
});

test("the spec reference's example is valid, every field it shows included", () => {
  const reference = readme.slice(readme.indexOf('## Spec reference'));
  const block = /```yaml\n([\s\S]*?)```/.exec(reference)![1]!;
  const dir = mkdtempSync(join(tmpdir(), 'tandem-readme-'));
  writeFileSync(join(dir, 'reference.yaml'), block);
  const [loaded] = loadServices([join(dir, 'reference.yaml')]);
  assert.equal(loaded!.service.spec.rollout.maxUnavailable, 1);
});
