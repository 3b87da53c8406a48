import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKOFF_MAX_MS, planGroup, recordFailure, recordReady } from '../../src/controller/group-plan.js';
import type { GroupStatus, GroupTemplate, ObservedMember } from '../../src/core/group.js';
import type { StartupPolicy, RestartPolicy } from '../../src/spec/schema.js';

function template(
  size: number,
  startupPolicy: StartupPolicy,
  restartPolicy: RestartPolicy = 'RecreateGroupOnPodRestart',
): GroupTemplate {
  return {
    hash: 'h1',
    startupTimeoutMs: 60_000,
    placementTimeoutMs: 30_000,
    failurePolicy: { maxRestarts: 3, windowMs: 600_000 },
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
  replica: 0,
  index,
  uid: `u${index}`,
  terminating: false,
  scheduled: true,
  phase: 'Running',
  ready,
  started: ready,
  createdAt,
  templateHash,
});
const exited = (index: number, exitReason = 'exit code 1'): ObservedMember => ({
  replica: 0,
  index,
  uid: `u${index}`,
  terminating: false,
  scheduled: true,
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

test('LeaderCreated: the leader first, workers as soon as it exists (in one step: the executor orders them)', () => {
  const t = template(3, 'LeaderCreated');
  assert.deepEqual(creates(planGroup(t, [], fresh, 0)), [0, 1, 2]);
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
  assert.deepEqual(d.steps, [{ kind: 'delete', indices: [0, 1, 2] }]);
  assert.equal(d.failure, 'worker 1 exited (signal SIGKILL)');
  assert.equal(d.status.restarts, 1);
  assert.deepEqual(d.status.members, {}, 'a new incarnation: the deleted members are not "lost"');
});

test('restartPolicy None: only the exited member is deleted', () => {
  const d = planGroup(template(3, 'WorkersReady', 'None'), [running(0, true), exited(2)], fresh, 0);
  assert.deepEqual(d.steps, [{ kind: 'delete', indices: [2] }]);
  assert.equal(d.failure, 'worker 2 exited (exit code 1)');
});

test('an outdated group is kept until it may roll, then deleted whole without counting a failure', () => {
  const old = [running(0, true, 'h0'), running(1, true, 'h0')];
  assert.deepEqual(planGroup(template(2, 'WorkersReady'), old, fresh, 0), { phase: 'Ready', steps: [], status: fresh });
  const d = planGroup(template(2, 'WorkersReady'), old, fresh, 0, true);
  assert.equal(d.phase, 'Updating');
  assert.deepEqual(d.steps, [{ kind: 'delete', indices: [0, 1] }]);
  assert.equal(d.status.restarts, 0);
  // Incomplete, it serves nothing: it goes at once.
  assert.equal(planGroup(template(2, 'WorkersReady'), [running(1, true, 'h0')], fresh, 0).phase, 'Updating');
});

test('nothing is created while backing off; creation resumes after', () => {
  const t = template(2, 'WorkersReady');
  const status = recordFailure(fresh, t, 'worker 1 exited', ['u1'], 10_000);
  assert.equal(status.backoffUntil, 11_000);
  assert.deepEqual(planGroup(t, [], status, 10_500), { phase: 'BackingOff', steps: [], status });
  assert.deepEqual(creates(planGroup(t, [], status, 11_000)), [1]);
});

test('members are recorded once every one is present: one write per group; a member lost before then is created again, one lost after recreates the group', () => {
  const t = template(2, 'LeaderCreated');
  const leaderOnly = planGroup(t, [running(0)], fresh, 0);
  assert.equal(leaderOnly.status, fresh, 'nothing to write while the group is incomplete');
  assert.deepEqual(creates(leaderOnly), [1]);
  assert.deepEqual(
    creates(planGroup(t, [running(1)], fresh, 0)),
    [0],
    'a leader lost before the group was complete is created again',
  );
  const complete = planGroup(t, [running(0), running(1)], fresh, 0).status;
  assert.deepEqual(complete.members, { 0: 'u0', 1: 'u1' });
  assert.equal(
    planGroup(t, [running(0, true), running(1, true)], complete, 0).status,
    complete,
    'Ready writes nothing',
  );
  const lost = planGroup(t, [running(0)], complete, 0);
  assert.equal(lost.phase, 'Recreating');
  assert.deepEqual(lost.steps, [{ kind: 'delete', indices: [0] }]);
  assert.match(lost.failure!, /worker 1 disappeared/);
});

test('back-off doubles with consecutive failures up to a limit, and resets once Ready', () => {
  let status: GroupStatus = { restarts: 0 };
  const delays: number[] = [];
  const t = { hash: 'h1', failurePolicy: { maxRestarts: 100, windowMs: 1000 } };
  for (let i = 0; i < 9; i++) {
    status = recordFailure(status, t, 'x', [`u${i}`], 0);
    delays.push(status.backoffUntil!);
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, BACKOFF_MAX_MS, BACKOFF_MAX_MS, BACKOFF_MAX_MS]);
  const ready = recordReady(status);
  assert.equal(ready.restarts, 9);
  assert.equal(recordFailure(ready, t, 'x', ['v'], 0).backoffUntil, 1000);
});

test('a member not ready startupTimeout after its creation fails the group; one that was ready once never does', () => {
  const t = template(2, 'WorkersReady');
  const fresh: GroupStatus = { restarts: 0 };
  const hung = [running(1, true, 'h1', 0), running(0, false, 'h1', 1000)];
  assert.equal(planGroup(t, hung, fresh, 61_000).phase, 'Starting', 'the leader was created at 1 s: 60 s not yet past');
  const late = planGroup(t, hung, fresh, 61_001);
  assert.equal(late.phase, 'Recreating');
  assert.deepEqual(late.steps, [{ kind: 'delete', indices: [1, 0] }]);
  assert.equal(late.failure, 'leader 0 not ready 1m after it started (spec.startupTimeout)');
  const none = planGroup(template(2, 'WorkersReady', 'None'), hung, fresh, 61_001);
  assert.deepEqual(none.steps, [{ kind: 'delete', indices: [0] }]);
  // Ready once, then not (a slow health check): not a startup failure.
  const wasReady: ObservedMember = { ...running(0, false, 'h1', 0), started: true };
  assert.equal(planGroup(t, [running(1, true), wasReady], fresh, 10_000_000).phase, 'Starting');
});

test('one exit is counted once, however often a stale cache shows it', () => {
  const t = template(2, 'WorkersReady');
  const first = planGroup(t, [running(0, true), exited(1)], fresh, 0);
  assert.equal(first.status.restarts, 1);
  const again = planGroup(t, [running(0, true), exited(1)], first.status, 50);
  assert.equal(again.status.restarts, 1, 'the same uid: not a second failure');
  assert.equal(again.failure, undefined);
  assert.deepEqual(again.steps, [{ kind: 'delete', indices: [0, 1] }], 'the deletes are asked for again (idempotent)');
});

test('a member of a started group that disappears, or is deleted by someone else, fails the whole group', () => {
  const t = template(3, 'WorkersReady');
  const whole = [running(0, true), running(1, true), running(2, true)];
  const ready = planGroup(t, whole, fresh, 0);
  assert.deepEqual(ready.status.members, { 0: 'u0', 1: 'u1', 2: 'u2' });
  const gone = planGroup(t, [running(0, true), running(2, true)], ready.status, 10);
  assert.equal(gone.failure, 'worker 1 disappeared');
  assert.deepEqual(gone.steps, [{ kind: 'delete', indices: [0, 2] }], 'not recreated alone');
  const evicted = planGroup(
    t,
    [running(0, true), { ...running(1, true), terminating: true }, running(2, true)],
    ready.status,
    10,
  );
  assert.equal(evicted.failure, 'worker 1 was deleted by someone else');
  assert.equal(evicted.phase, 'Recreating');
});

test('nothing is created while members are terminating: their names are reused', () => {
  const t = template(2, 'WorkersReady');
  const d = planGroup(t, [{ ...running(1), terminating: true }], fresh, 0);
  assert.deepEqual([d.phase, d.steps], ['Recreating', []]);
});

test("a member not placed within placementTimeout fails the group, with the scheduler's reason", () => {
  const t = template(2, 'WorkersReady');
  const pending = { ...running(1, false, 'h1', 0), scheduled: false, pendingReason: '0/4 nodes are available' };
  assert.equal(planGroup(t, [pending], fresh, 30_000).failure, undefined);
  const d = planGroup(t, [running(0), pending], fresh, 30_001);
  assert.match(d.failure!, /^worker 1 not placed on a node 30s after .*: 0\/4 nodes are available$/);
  assert.deepEqual(d.steps, [{ kind: 'delete', indices: [0, 1] }], 'the placed member gives its node back too');
});

test('past failurePolicy.maxRestarts within the window the group is Failed until the template changes', () => {
  const t = template(2, 'WorkersReady'); // at most 3 restarts in 10 min
  let status: GroupStatus = fresh;
  const phases: string[] = [];
  for (let i = 0; i < 4; i++) {
    const d = planGroup(t, [{ ...exited(1), uid: `x${i}` }], status, i * 1000);
    phases.push(d.phase);
    status = d.status;
  }
  assert.deepEqual(phases, ['Recreating', 'Recreating', 'Recreating', 'Failed']);
  assert.match(status.failed!.reason, /^4 failures within 10m, more than spec.failurePolicy.maxRestarts \(3\)/);
  assert.deepEqual(planGroup(t, [], status, 10_000_000), { phase: 'Failed', steps: [], status });
  const changed = planGroup({ ...t, hash: 'h2' }, [], status, 10_000_000);
  assert.deepEqual([changed.phase, creates(changed)], ['Pending', [1]]);
  // Failures spread wider than the window never add up.
  let spread: GroupStatus = fresh;
  for (let i = 0; i < 6; i++) spread = recordFailure(spread, t, 'x', [`s${i}`], i * 600_000);
  assert.equal(spread.failed, undefined);
});

test('a member this group deleted is neither lost nor re-adopted while a stale cache still shows it (found on the k8s tier)', () => {
  const t = template(2, 'WorkersReady');
  const failed = planGroup(t, [running(0, true), exited(1)], fresh, 0);
  // The worker is gone, the leader's deletion not yet seen: it looks alive.
  const stale = planGroup(t, [running(0, true)], failed.status, 10);
  assert.equal(stale.failure, undefined);
  assert.deepEqual(stale.status.members, {});
  const seen = planGroup(t, [{ ...running(0, true), terminating: true }], stale.status, 20);
  assert.equal(seen.failure, undefined, 'not "leader 0 disappeared"');
  assert.equal(seen.status.restarts, 1);
});
