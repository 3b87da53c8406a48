import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GgmlType, GgufType, readGgufHeader, writeGguf, type GgufValue } from '../../src/model/gguf.js';

test('GGUF round trip keeps every value type, and tensor data lands aligned', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'tandem-gguf-')), 'm.gguf');
  const kv = new Map<string, GgufValue>([
    ['general.architecture', { type: GgufType.STRING, value: 'llama' }],
    ['u32', { type: GgufType.UINT32, value: 7 }],
    ['i32', { type: GgufType.INT32, value: -7 }],
    ['f32', { type: GgufType.FLOAT32, value: 0.5 }],
    ['bool', { type: GgufType.BOOL, value: true }],
    ['u64', { type: GgufType.UINT64, value: 1n << 40n }],
    ['strings', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: ['a', 'é', ''] }],
    ['floats', { type: GgufType.ARRAY, itemType: GgufType.FLOAT32, value: [1, -2.5] }],
  ]);
  const a = new Float32Array([1, 2, 3, 4, 5, 6]);
  const b = new Float32Array([7]);
  writeGguf(path, kv, [
    { name: 'a', dims: [3, 2], type: GgmlType.F32, data: () => new Uint8Array(a.buffer) },
    { name: 'b', dims: [1], type: GgmlType.F32, data: () => new Uint8Array(b.buffer) },
  ]);
  const header = readGgufHeader(path);
  assert.equal(header.version, 3);
  assert.deepEqual([...header.kv.entries()], [...kv.entries()]);
  assert.deepEqual(
    header.tensors.map((t) => [t.name, t.dims, t.offset]),
    [
      ['a', [3, 2], 0n],
      ['b', [1], 32n],
    ],
  );
  assert.equal(header.dataOffset % 32, 0);
  const file = readFileSync(path);
  const at = (offset: number, n: number) => [
    ...new Float32Array(file.buffer.slice(file.byteOffset + offset, file.byteOffset + offset + 4 * n)),
  ];
  assert.deepEqual(at(header.dataOffset, 6), [...a]);
  assert.deepEqual(at(header.dataOffset + 32, 1), [...b]);
  assert.equal(statSync(path).size, header.dataOffset + 64);
});

test('a tensor whose data does not match its shape is refused', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'tandem-gguf-')), 'bad.gguf');
  assert.throws(
    () => writeGguf(path, new Map(), [{ name: 'x', dims: [4], type: GgmlType.F32, data: () => new Uint8Array(8) }]),
    /tensor x: 8 bytes of data, its shape needs 16/,
  );
});

test('a file that is not GGUF is refused', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'tandem-gguf-')), 'not.gguf');
  writeGguf(path, new Map(), []);
  const bytes = readFileSync(path);
  bytes.write('XXXX', 0);
  writeFileSync(path, bytes);
  assert.throws(() => readGgufHeader(path), /not a GGUF file/);
});
