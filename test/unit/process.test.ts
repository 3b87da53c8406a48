import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { isRunning, isRunningCommand } from '../../src/util/process.js';

test('a recorded pid counts as ours only while it runs the command we started', async () => {
  const child = spawn('sleep', ['30']);
  const exited = new Promise((r) => child.once('exit', r));
  try {
    assert.equal(isRunningCommand(child.pid!, /sleep/), true);
    assert.equal(isRunningCommand(child.pid!, /kube-apiserver/), false, 'a reused pid is not ours');
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  assert.equal(isRunning(child.pid!), false);
  assert.equal(isRunningCommand(child.pid!, /sleep/), false);
});
