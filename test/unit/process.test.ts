import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { isRunning, isRunningCommand } from '../../src/util/process.js';

test('a recorded pid counts as ours only while it runs the command we started', async () => {
  // The child says it is up from its own code, so its exec has happened: right after spawn() the
  // pid may still show the parent's command line (a fresh clone's run on a busy machine saw that).
  const child = spawn(process.execPath, ['-e', 'console.log("up"); setTimeout(() => {}, 30_000)'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  try {
    await once(child.stdout, 'data');
    assert.equal(isRunningCommand(child.pid!, /setTimeout/), true);
    assert.equal(isRunningCommand(child.pid!, /kube-apiserver/), false, 'a reused pid is not ours');
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  assert.equal(isRunning(child.pid!), false);
  assert.equal(isRunningCommand(child.pid!, /setTimeout/), false);
});
