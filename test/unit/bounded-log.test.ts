import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoundedLog } from '../../src/platforms/local/bounded-log.js';

const logPath = () => join(mkdtempSync(join(tmpdir(), 'tandem-log-')), 'sub', 'member.log');

/** A member writing `script`'s output to the log itself, as members do. */
async function member(log: BoundedLog, script: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', log.fd, log.fd] });
  await new Promise((resolve) => child.once('exit', resolve));
}

test("a member's own output reaches its log; past the limit the newest is kept in FILE.1", async () => {
  const path = logPath();
  const log = new BoundedLog(path, 100);
  log.note('--- start\n');
  // 50 lines of 9 bytes, from stdout and stderr alike.
  await member(
    log,
    `for (let i = 0; i < 50; i++) (i % 2 ? process.stderr : process.stdout).write('line ' + String(i).padStart(3, '0') + '\\n')`,
  );
  log.close();
  assert.ok(statSync(path).size <= 100);
  const kept = readFileSync(`${path}.1`, 'utf8');
  assert.equal(kept.length, 100);
  assert.match(kept, /line 049\n$/);
  const next = new BoundedLog(path, 100);
  next.note('last\n');
  next.close();
  assert.match(readFileSync(path, 'utf8'), /last\n$/);
  assert.ok(!existsSync(`${path}.2`));
});

test('a crash-looping member stays within the bound: each life counts from the size it finds', async () => {
  const path = logPath();
  for (let life = 0; life < 20; life++) {
    const log = new BoundedLog(path, 100);
    await member(log, `process.stdout.write('${String(life).padStart(2, '0')} ${'y'.repeat(57)}\\n')`); // 60 bytes a life
    log.close();
  }
  assert.ok(statSync(path).size <= 100, `${statSync(path).size} bytes`);
  assert.ok(statSync(`${path}.1`).size <= 100);
  assert.match(readFileSync(`${path}.1`, 'utf8'), /19 y+\n$/);
});

test('the checks between writes keep the file under the limit, off the event loop, the newest bytes kept', async () => {
  const path = logPath();
  const log = new BoundedLog(path, 1000);
  for (let i = 0; i < 40; i++) {
    writeSync(log.fd, `${String(i).padStart(3, '0')} ${'x'.repeat(95)}\n`); // 100 bytes, as a member writes
    await log.checkSoon();
    assert.ok(statSync(path).size <= 1000, `after line ${i}: ${statSync(path).size} bytes`);
  }
  log.close();
  assert.match(readFileSync(`${path}.1`, 'utf8'), /^\d{3} x+\n/);
  assert.ok(statSync(`${path}.1`).size <= 1000);
  assert.ok(
    readFileSync(path, 'utf8').endsWith(`039 ${'x'.repeat(95)}\n`) ||
      readFileSync(`${path}.1`, 'utf8').endsWith(`039 ${'x'.repeat(95)}\n`),
  );
});
