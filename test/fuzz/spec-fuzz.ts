// Fuzzes the spec loader: valid InferenceServices mutated (wrong types, huge numbers, unknown
// fields, removed fields), then written as YAML or JSON, sometimes truncated or with bytes flipped.
// Every input must give services or a SpecError; anything else thrown is a crash.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { SpecError, loadServices } from '../../src/spec/load.js';
import { tinySpec } from '../helpers.js';
import { Random } from './random.js';

const ODD_VALUES: unknown[] = [
  null,
  true,
  -1,
  0,
  1e308,
  -1e308,
  2 ** 53 + 1,
  1.5,
  '',
  'x'.repeat(10_000),
  '1e400',
  '9'.repeat(400),
  '-5Gi',
  '2k',
  'NaN',
  [],
  [1, 'a', null],
  {},
  { nodes: 'auto' },
  '\u0000\uffff',
  '__proto__',
];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function paths(value: Json, prefix: string[] = []): string[][] {
  if (value === null || typeof value !== 'object') return [prefix];
  const keys = Array.isArray(value) ? value.map((_, i) => String(i)) : Object.keys(value);
  return [prefix, ...keys.flatMap((k) => paths((value as Record<string, Json>)[k]!, [...prefix, k]))];
}

function mutate(doc: Json, random: Random): Json {
  const copy = structuredClone(doc) as Json;
  for (let n = 1 + random.int(3); n > 0; n--) {
    const path = random.pick(paths(copy));
    if (path.length === 0) continue;
    let parent = copy as Record<string, Json>;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string, Json>;
    const key = path.at(-1)!;
    const op = random.int(3);
    if (op === 0) parent[key] = structuredClone(random.pick(ODD_VALUES)) as Json;
    else if (op === 1) delete parent[key];
    else
      parent[`${key}${random.pick(['x', 'S', '_', ''])}${random.int(9)}`] = structuredClone(
        random.pick(ODD_VALUES),
      ) as Json;
  }
  return copy;
}

function render(doc: Json, random: Random): string {
  let text = random.int(2) === 0 ? stringify(doc) : JSON.stringify(doc, null, random.int(3));
  if (random.int(4) === 0) text = text.slice(0, random.int(text.length + 1)); // truncated
  if (random.int(4) === 0) {
    const bytes = Buffer.from(text);
    for (let i = random.int(4); i >= 0 && bytes.length > 0; i--) bytes[random.int(bytes.length)] = random.int(256);
    text = bytes.toString('latin1');
  }
  if (random.int(8) === 0) text = `${text}\n---\n${text}`;
  return text;
}

export interface FuzzResult {
  cases: number;
  crashes: string[];
  accepted: number;
}

export function fuzzSpecs(seed: number, count: number): FuzzResult {
  const random = new Random(seed);
  const dir = mkdtempSync(join(tmpdir(), 'tandem-fuzz-spec-'));
  const bases = [
    tinySpec('a', { parallelism: { nodes: 2 }, replicas: 2 }),
    tinySpec('b', {
      parallelism: { nodes: 'auto' },
      resources: { cpu: '500m', memory: '64Mi' },
      startupTimeout: '90s',
    }),
    tinySpec('c', { engine: { type: 'llamacpp', args: ['--ctx-size', '512'], env: { A: '1' } } }),
  ] as unknown as Json[];
  const result: FuzzResult = { cases: 0, crashes: [], accepted: 0 };
  try {
    for (let i = 0; i < count; i++) {
      const text = render(mutate(random.pick(bases), random), random);
      const file = join(dir, `case.${random.int(2) === 0 ? 'yaml' : 'json'}`);
      writeFileSync(file, text);
      result.cases++;
      try {
        result.accepted += loadServices([file]).length;
      } catch (err) {
        if (err instanceof SpecError && err.problems.length > 0) continue;
        result.crashes.push(`case ${i} (seed ${seed}): ${err instanceof Error ? err.stack : String(err)}\n${text}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}
