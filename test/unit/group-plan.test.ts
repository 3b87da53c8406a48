import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKOFF_MAX_MS, planGroup, recordFailure, recordReady } from '../../src/runtime/group-plan.js';
import type { GroupStatus, GroupTemplate, ObservedMember } from '../../src/runtime/types.js';
import type { StartupPolicy, RestartPolicy } from '../../src/spec/schema.js';

function template(
  size: number,
  startupPolicy: StartupPolicy,
  restartPolicy: RestartPolicy = 'RecreateGroupOnPodRestart',
): GroupTemplate {
  return {
    hash: 'h1',
    startupTimeoutMs: 60_000,
    startupPolicy,
    restartPolicy,
    members: Array.from({ length: size }, (_, index) => ({
      index,
      role: index === 0 ? 'leader' : 'worker',
      endpoint: { host: `127.0.0.${index + 1}`, port: 1000 },
      command: 'x',
      args: [],
      env: {},
      readiness: { kind: 'tcp' },
    })),
  };
}
const running = (index: number, ready = false, templateHash = 'h1', createdAt = 0): ObservedMember => ({
  index,
  phase: 'Running',
  ready,
  started: ready,
  createdAt,
  templateHash,
});
const exited = (index: number, exitReason = 'exit code 1'): ObservedMember => ({
  index,
  phase: 'Exited',
  ready: false,
  started: false,
  createdAt: 0,
  templateHash: 'h1',
  exitReason,
});
const creates = (d: ReturnType<typeof planGroup>) =>
  d.steps.filter((s) => s.kind === 'create').map((s) => (s as { index: number }).index);
const fresh = { restarts: 0 };

test('WorkersReady: workers first, the leader only once every worker is ready', () => {
  const t = template(3, 'WorkersReady');
  assert.deepEqual(creates(planGroup(t, [], fresh, 0)), [1, 2]);
  assert.deepEqual(creates(planGroup(t, [running(1), running(2, true)], fresh, 0)), []);
  assert.deepEqual(creates(planGroup(t, [running(1, true), running(2, true)], fresh, 0)), [0]);
  assert.equal(planGroup(t, [running(0), running(1, true), running(2, true)], fresh, 0).phase, 'Starting');
  assert.equal(planGroup(t, [running(0, true), running(1, true), running(2, true)], fresh, 0).phase, 'Ready');
});

test('LeaderCreated: the leader first, workers as soon as it exists', () => {
  const t = template(3, 'LeaderCreated');
  assert.deepEqual(creates(planGroup(t, [], fresh, 0)), [0]);
  assert.deepEqual(creates(planGroup(t, [running(0)], fresh, 0)), [1, 2]);
});

test('LeaderReady: workers only once the leader is ready', () => {
  const t = template(3, 'LeaderReady');
  assert.deepEqual(creates(planGroup(t, [], fresh, 0)), [0]);
  assert.deepEqual(creates(planGroup(t, [running(0)], fresh, 0)), []);
  assert.deepEqual(creates(planGroup(t, [running(0, true)], fresh, 0)), [1, 2]);
});

test('a 1-member group is just its leader', () => {
  assert.deepEqual(creates(planGroup(template(1, 'WorkersReady'), [], fresh, 0)), [0]);
});

test('RecreateGroupOnPodRestart: one exited member deletes the whole group, with the reason', () => {
  const d = planGroup(
    template(3, 'WorkersReady'),
    [running(0, true), exited(1, 'signal SIGKILL'), running(2, true)],
    fresh,
    0,
  );
  assert.equal(d.phase, 'Recreating');
  assert.deepEqual(d.steps, [{ kind: 'delete', indices: [0, 1, 2], failure: 'worker 1 exited (signal SIGKILL)' }]);
});

test('restartPolicy None: only the exited member is deleted', () => {
  const d = planGroup(template(3, 'WorkersReady', 'None'), [running(0, true), exited(2)], fresh, 0);
  assert.deepEqual(d.steps, [{ kind: 'delete', indices: [2], failure: 'worker 2 exited (exit code 1)' }]);
});

test('members of an outdated template are deleted together, without counting a failure', () => {
  const d = planGroup(template(2, 'WorkersReady'), [running(0, true, 'h0'), running(1, true, 'h0')], fresh, 0);
  assert.deepEqual(d.steps, [{ kind: 'delete', indices: [0, 1] }]);
});

test('nothing is created while backing off; creation resumes after', () => {
  const t = template(2, 'WorkersReady');
  const status = recordFailure(fresh, 'worker 1 exited', 10_000);
  assert.equal(status.backoffUntil, 11_000);
  assert.deepEqual(planGroup(t, [], status, 10_500), { phase: 'BackingOff', steps: [] });
  assert.deepEqual(creates(planGroup(t, [], status, 11_000)), [1]);
});

test('back-off doubles with consecutive failures up to a limit, and resets once Ready', () => {
  let status: GroupStatus = { restarts: 0 };
  const delays: number[] = [];
  for (let i = 0; i < 9; i++) {
    status = recordFailure(status, 'x', 0);
    delays.push(status.backoffUntil!);
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, BACKOFF_MAX_MS, BACKOFF_MAX_MS, BACKOFF_MAX_MS]);
  const ready = recordReady(status);
  assert.equal(ready.restarts, 9);
  assert.equal(recordFailure(ready, 'x', 0).backoffUntil, 1000);
});

test('a member not ready startupTimeout after its creation fails the group; one that was ready once never does', () => {
  const t = template(2, 'WorkersReady');
  const fresh: GroupStatus = { restarts: 0 };
  const hung = [running(1, true, 'h1', 0), running(0, false, 'h1', 1000)];
  assert.equal(planGroup(t, hung, fresh, 61_000).phase, 'Starting', 'the leader was created at 1 s: 60 s not yet past');
  const late = planGroup(t, hung, fresh, 61_001);
  assert.equal(late.phase, 'Recreating');
  assert.deepEqual(late.steps, [
    { kind: 'delete', indices: [1, 0], failure: 'leader 0 not ready 1m after it started (spec.startupTimeout)' },
  ]);
  const none = planGroup(template(2, 'WorkersReady', 'None'), hung, fresh, 61_001);
  assert.deepEqual(none.steps[0], {
    kind: 'delete',
    indices: [0],
    failure: late.steps[0]!.kind === 'delete' ? late.steps[0]!.failure : '',
  });
  // Ready once, then not (a slow health check): not a startup failure.
  const wasReady: ObservedMember = { ...running(0, false, 'h1', 0), started: true };
  assert.equal(planGroup(t, [running(1, true), wasReady], fresh, 10_000_000).phase, 'Starting');
});
