import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoundedLog } from '../../src/runtime/local/bounded-log.js';

const logPath = () => join(mkdtempSync(join(tmpdir(), 'tandem-log-')), 'sub', 'member.log');

test('a member log never holds more than twice its limit, and keeps the newest output', async () => {
  const path = logPath();
  const log = new BoundedLog(path, 100);
  for (let i = 0; i < 50; i++) log.write(`line ${String(i).padStart(3, '0')}\n`); // 9 bytes each
  log.write('x'.repeat(250)); // one chunk over the limit keeps its tail
  log.write('last\n');
  await log.close();
  assert.ok(statSync(path).size <= 100);
  assert.ok(statSync(`${path}.1`).size <= 100);
  assert.match(readFileSync(path, 'utf8'), /last\n$/);
  assert.equal(readFileSync(`${path}.1`, 'utf8'), 'x'.repeat(100));
  assert.ok(!existsSync(`${path}.2`));
});

test('a crash-looping member stays within the bound: each life counts from the size it finds', async () => {
  const path = logPath();
  for (let life = 0; life < 20; life++) {
    const log = new BoundedLog(path, 100);
    log.write(`${String(life).padStart(2, '0')} ${'y'.repeat(57)}\n`); // 60 bytes a life
    await log.close();
  }
  assert.ok(statSync(path).size <= 100, `${statSync(path).size} bytes`);
  assert.ok(statSync(`${path}.1`).size <= 100);
  assert.match(readFileSync(path, 'utf8'), /^19 /);
});
