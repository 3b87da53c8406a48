// The access log is written a few KiB at a time: it reaches its file within a second, and all of
// it on close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accessLog } from '../../src/cli/gateway.js';

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

test('access log lines reach the file within a second, and every one on close', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'tandem-access-')), 'access.log');
  const access = accessLog(file);
  access.log.info({ id: 'a' });
  for (let i = 0; i < 30 && lines(file).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(
    lines(file).map((l) => (JSON.parse(l) as { id: string }).id),
    ['a'],
  );
  for (let i = 0; i < 5; i++) access.log.info({ id: `b${i}` });
  access.close();
  assert.equal(lines(file).length, 6, 'everything logged is in the file once closed');
});

test('a full disk loses access log lines, not the gateway', async () => {
  // /dev/full answers every write with ENOSPC, as a full log disk does.
  const access = accessLog('/dev/full');
  const failed = new Promise<Error>((resolve) => access.onWriteError(resolve));
  for (let i = 0; i < 200; i++) access.log.info({ id: `line ${i}`, padding: 'x'.repeat(100) });
  assert.match((await failed).message, /ENOSPC/);
  access.log.info({ id: 'after' });
  access.close();
});
