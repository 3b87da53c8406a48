// The access log is written a batch of lines at a time, as pino's JSON lines: it reaches its file
// within a second, and all of it on close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accessLog } from '../../src/cli/gateway.js';
import type { AccessEntry } from '../../src/gateway/server.js';

const entry = (id: string): AccessEntry => ({
  id,
  method: 'POST',
  path: '/v1/completions',
  status: 200,
  complete: true,
  ms: 3,
  model: 'm',
  key: undefined,
  replica: 'm/0',
  failovers: undefined,
});
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

test('access log lines reach the file within a second, and every one on close', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'tandem-access-')), 'access.log');
  const access = accessLog(file);
  access.log.write(entry('a'));
  for (let i = 0; i < 30 && lines(file).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  const [line] = lines(file).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(typeof line?.time === 'number' && Math.abs(line.time - Date.now()) < 60_000, `time: ${line?.time}`);
  // A pino line: level 30 (info) and the time in ms, then the entry (no member for what is undefined).
  const { key, failovers, ...defined } = entry('a');
  assert.deepEqual([key, failovers], [undefined, undefined]);
  assert.deepEqual({ ...line, time: 0 }, { level: 30, time: 0, ...defined });
  for (let i = 0; i < 5; i++) access.log.write(entry(`b${i}`));
  access.close();
  assert.equal(lines(file).length, 6, 'everything logged is in the file once closed');
});

test('a full disk loses access log lines, not the gateway', async () => {
  // /dev/full answers every write with ENOSPC, as a full log disk does.
  const access = accessLog('/dev/full');
  const failed = new Promise<Error>((resolve) => access.onWriteError(resolve));
  for (let i = 0; i < 200; i++) access.log.write(entry(`line ${i} ${'x'.repeat(100)}`));
  assert.match((await failed).message, /ENOSPC/);
  access.log.write(entry('after'));
  access.close();
});
