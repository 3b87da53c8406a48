import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoundedLog } from '../../src/runtime/local/bounded-log.js';

test('a member log never holds more than twice its limit, and keeps the newest output', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'tandem-log-')), 'sub', 'member.log');
  const log = new BoundedLog(path, 100);
  for (let i = 0; i < 50; i++) log.write(`line ${String(i).padStart(3, '0')}\n`); // 9 bytes each
  log.write('x'.repeat(250)); // one chunk over the limit keeps its tail
  log.write('last\n');
  log.close();
  assert.ok(statSync(path).size <= 100);
  assert.ok(statSync(`${path}.1`).size <= 100);
  assert.match(readFileSync(path, 'utf8'), /last\n$/);
  assert.equal(readFileSync(`${path}.1`, 'utf8'), 'x'.repeat(100));
  assert.ok(!existsSync(`${path}.2`));
});
