// The executor against an in-memory platform: discovery, persisted status, stop vs teardown,
// spec changes, and isolation between services. Real processes are the integration tier's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reconciler, type ReconcilerOptions } from '../../src/controller/reconciler.js';
import type { ServiceTemplate } from '../../src/core/service.js';
import type { ServiceSnapshot } from '../../src/core/snapshot.js';
import type {
  Endpoint,
  GroupRef,
  GroupShape,
  GroupStatus,
  MemberTemplate,
  ObservedMember,
  Platform,
  ServiceEvent,
  StatusStore,
} from '../../src/core/group.js';
import { MemoryStatusStore } from '../../src/platforms/local/status-store.js';

/** A reconciler over these ports, its events collected. */
function reconciler(
  platform: Platform,
  store: StatusStore = new MemoryStatusStore(),
  options: ReconcilerOptions = {},
): Reconciler & { recorded: ServiceEvent[] } {
  const events: ServiceEvent[] = [];
  const r = new Reconciler({ platform, store, events: { record: (e) => events.push(e) } }, options);
  return Object.assign(r, { recorded: events });
}

/** Members are records; they become ready at once; a delete finishes a few ms after it starts. */
class MemoryPlatform implements Platform {
  readonly members = new Map<string, ObservedMember & { service: string }>();
  creates = 0;
  failObserve = new Set<string>();
  /** Groups whose group-level objects exist. */
  readonly groupObjects = new Set<string>();
  /** The clock members' creation times come from. */
  now = () => Date.now();
  private listeners: ((s: string) => void)[] = [];
  private uids = 0;
  async ensureGroup(group: GroupRef, { size }: GroupShape): Promise<Endpoint[]> {
    this.groupObjects.add(`${group.service}/${group.replica}`);
    return Array.from({ length: size }, (_, i) => ({ host: `${group.service}-${group.replica}-${i}`, port: 1 }));
  }
  async releaseGroup(group: GroupRef): Promise<void> {
    this.groupObjects.delete(`${group.service}/${group.replica}`);
  }
  async create(group: GroupRef, member: MemberTemplate, templateHash: string): Promise<void> {
    const key = `${group.service}/${group.replica}/${member.index}`;
    if (this.members.has(key)) return;
    this.creates++;
    this.members.set(key, {
      service: group.service,
      replica: group.replica,
      index: member.index,
      uid: `uid-${++this.uids}`,
      phase: 'Running',
      ready: true,
      started: true,
      terminating: false,
      scheduled: true,
      createdAt: this.now(),
      templateHash,
    });
    this.changed(group.service);
  }
  async delete(group: GroupRef, index: number): Promise<void> {
    const key = `${group.service}/${group.replica}/${index}`;
    const m = this.members.get(key);
    if (!m || m.terminating) return;
    m.terminating = true;
    this.changed(group.service);
    setTimeout(() => {
      if (this.members.get(key) === m) this.members.delete(key);
      this.changed(group.service);
    }, 5);
  }
  async observe(service: string): Promise<ObservedMember[]> {
    if (this.failObserve.has(service)) throw new Error(`API unavailable for ${service}`);
    return [...this.members.values()].filter((m) => m.service === service).map((m) => ({ ...m }));
  }
  onChange(listener: (service: string) => void): void {
    this.listeners.push(listener);
  }
  changed(service: string): void {
    setImmediate(() => this.listeners.forEach((l) => l(service)));
  }
}

function service(name: string, replicas: number, hash = 'h1', size = 2): ServiceTemplate {
  return {
    name,
    servedName: name,
    replicas,
    size,
    hash,
    rollout: { maxUnavailable: 1, maxSurge: 0 },
    slots: 1,
    render: (_g, endpoints) => ({
      hash,
      startupPolicy: 'LeaderCreated',
      restartPolicy: 'RecreateGroupOnPodRestart',
      startupTimeoutMs: 60_000,
      placementTimeoutMs: 60_000,
      failurePolicy: { maxRestarts: 10, windowMs: 60_000 },
      members: endpoints.map((endpoint, index) => ({
        index,
        role: index === 0 ? 'leader' : 'worker',
        endpoint,
        command: 'x',
        args: [],
        env: {},
        readiness: { kind: 'tcp' },
      })),
    }),
  };
}

function until(r: Reconciler, done: (s: ServiceSnapshot[]) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out: ${JSON.stringify(r.snapshot())}`)), 5000);
    const check = () => {
      if (!done(r.snapshot())) return;
      clearTimeout(timer);
      r.off('tick', check);
      resolve();
    };
    r.on('tick', check);
    check();
  });
}
const ready = (name: string, groups: number) => (s: ServiceSnapshot[]) => {
  const svc = s.find((x) => x.name === name);
  return svc?.groups.length === groups && svc.groups.every((g) => g.phase === 'Ready');
};

test('a new reconciler picks up running groups and their statuses without recreating anything', async () => {
  const platform = new MemoryPlatform();
  const store = new MemoryStatusStore();
  const first = reconciler(platform, store, { resyncMs: 50 });
  first.apply(service('a', 2));
  first.start();
  await until(first, ready('a', 2));
  await first.stop();
  assert.equal(platform.members.size, 4, 'stop() leaves every member running');
  await store.save('a', { ...(await store.load('a')), 1: { ...(await store.load('a'))[1]!, restarts: 7 } });

  const created = platform.creates;
  const second = reconciler(platform, store, { resyncMs: 50 });
  second.apply(service('a', 2));
  second.start();
  await until(second, ready('a', 2));
  assert.equal(platform.creates, created, 'nothing recreated');
  assert.equal(second.snapshot()[0]!.groups[1]!.restarts, 7, 'the persisted status is carried on');
  await second.teardown();
  assert.equal(platform.members.size, 0);
});

test("the snapshot says which services run on GPUs (the gateway's prefix routing differs there)", async () => {
  const r = reconciler(new MemoryPlatform(), new MemoryStatusStore(), { resyncMs: 50 });
  r.apply({ ...service('gpu', 1), accelerated: true, exclusiveCache: true });
  r.apply(service('cpu', 1));
  r.start();
  await until(r, (s) => ready('gpu', 1)(s) && ready('cpu', 1)(s));
  const byName = new Map(r.snapshot().map((s) => [s.name, s]));
  assert.equal(byName.get('gpu')!.accelerated, true);
  assert.equal(byName.get('cpu')!.accelerated, undefined);
  assert.equal(byName.get('gpu')!.exclusiveCache, true, 'its engine keeps a cached prompt for one request at a time');
  assert.equal(byName.get('cpu')!.exclusiveCache, undefined);
  await r.teardown();
});

test('a member removed behind its back recreates its whole group, once', async () => {
  const platform = new MemoryPlatform();
  const r = reconciler(platform, new MemoryStatusStore(), { resyncMs: 50 });
  r.apply(service('a', 2));
  r.start();
  await until(r, ready('a', 2));
  const leaderUid = platform.members.get('a/1/0')!.uid;
  platform.members.delete('a/1/1');
  platform.changed('a');
  await until(r, (s) => s[0]!.groups[1]!.restarts === 1 && s[0]!.groups[1]!.phase === 'Ready');
  assert.notEqual(platform.members.get('a/1/0')!.uid, leaderUid, 'the leader was recreated with its worker');
  assert.match(r.snapshot()[0]!.groups[1]!.lastFailure!.reason, /^worker 1 disappeared$/);
  assert.equal(r.snapshot()[0]!.groups[0]!.restarts, 0, 'the other group untouched');
  await r.teardown();
});

test('a spec change at any time rolls the groups; scaling changes the count', async () => {
  const platform = new MemoryPlatform();
  const r = reconciler(platform, new MemoryStatusStore(), { resyncMs: 50 });
  r.apply(service('a', 2));
  r.start();
  await until(r, ready('a', 2));
  const startupMs = r.snapshot()[0]!.startupMs;
  assert.ok(startupMs !== undefined && startupMs >= 0 && startupMs < 5_000, `measured startup: ${startupMs}`);
  r.apply(service('a', 3, 'h2'));
  await until(r, (s) => ready('a', 3)(s) && [...platform.members.values()].every((m) => m.templateHash === 'h2'));
  r.apply(service('a', 1, 'h2'));
  await until(r, (s) => ready('a', 1)(s) && platform.members.size === 2);
  await r.teardown();
});

test("one service's failing pass does not hold up another's", async () => {
  const platform = new MemoryPlatform();
  platform.failObserve.add('a');
  const r = reconciler(platform, new MemoryStatusStore(), { resyncMs: 50, retryBaseMs: 20 });
  r.apply(service('a', 1));
  r.apply(service('b', 1));
  r.start();
  await until(r, ready('b', 1));
  const errors = r.recorded.filter((e) => e.warning).map((e) => e.message);
  assert.match(errors[0]!, /^reconcile failed \(retrying in \d+ ms\): API unavailable for a$/);
  platform.failObserve.clear();
  await until(r, ready('a', 1));
  await r.teardown();
});

test('every pass ensures the group-level objects: one removed behind its back is made again', async () => {
  const platform = new MemoryPlatform();
  const r = reconciler(platform, new MemoryStatusStore(), { resyncMs: 50 });
  r.apply(service('a', 2));
  r.start();
  await until(r, ready('a', 2));
  platform.groupObjects.delete('a/1');
  platform.changed('a');
  await until(r, () => platform.groupObjects.has('a/1'));
  assert.equal(r.snapshot()[0]!.groups[1]!.restarts, 0, 'its members were left as they are');
  await r.teardown();
  assert.equal(platform.groupObjects.size, 0, 'released with their groups');
});

test("a readiness flap is not a start: only an incarnation's first Ready is measured", async () => {
  const platform = new MemoryPlatform();
  let clock = 1_000_000;
  platform.now = () => clock;
  const r = reconciler(platform, new MemoryStatusStore(), { resyncMs: 50, now: () => clock });
  r.apply(service('a', 1));
  r.start();
  await until(r, ready('a', 1));
  assert.equal(r.snapshot()[0]!.startupMs, 0, 'created and Ready at the same instant');
  clock += 3 * 3_600_000; // three hours Ready, then one probe missed
  const leader = platform.members.get('a/0/0')!;
  leader.ready = false;
  platform.changed('a');
  await until(r, (s) => s[0]!.groups[0]!.phase !== 'Ready');
  leader.ready = true;
  platform.changed('a');
  await until(r, ready('a', 1));
  assert.equal(r.snapshot()[0]!.startupMs, 0, "not the group's whole age");
  await r.teardown();
});

test('the store is read on every pass, and a write refused as stale is retried on a fresh read', async () => {
  const platform = new MemoryPlatform();
  const saved = new MemoryStatusStore();
  let refused = 0;
  const store: StatusStore = {
    load: (name) => saved.load(name),
    save: async (name, groups: Record<number, GroupStatus>) => {
      if (refused++ < 2) throw Object.assign(new Error('changed since read'), { conflict: true });
      await saved.save(name, groups);
    },
  };
  const r = reconciler(platform, store, { resyncMs: 50 });
  r.apply(service('a', 1));
  r.start();
  await until(r, ready('a', 1));
  assert.ok(refused > 2, 'written after two refusals');
  assert.deepEqual(
    r.recorded.filter((e) => e.warning),
    [],
    'a stale read is not an error',
  );
  // Another writer's state (a restarted operator's, say) is what the next pass acts on.
  await saved.save('a', { 0: { ...(await saved.load('a'))[0]!, restarts: 4 } });
  platform.changed('a');
  await until(r, (s) => s[0]!.groups[0]!.restarts === 4);
  await r.teardown();
});

test('a Ready group rolls only once the drain port says it serves nothing; the others wait their turn', async () => {
  const platform = new MemoryPlatform();
  const asked: string[] = [];
  let busy = new Set(['a/0']);
  const r = new Reconciler(
    {
      platform,
      store: new MemoryStatusStore(),
      events: { record: () => {} },
      drain: {
        drained: (group) => {
          asked.push(group);
          return !busy.has(group);
        },
      },
    },
    { resyncMs: 50 },
  );
  r.apply(service('a', 2));
  r.start();
  await until(r, ready('a', 2));
  const before = [...platform.members.values()].map((m) => m.uid);
  r.apply(service('a', 2, 'h2'));
  await until(r, () => asked.filter((g) => g === 'a/0').length >= 3);
  assert.deepEqual(
    [...platform.members.values()].map((m) => m.uid),
    before,
    'nothing is taken down while group 0 still serves',
  );
  assert.ok(!asked.includes('a/1'), 'group 1 waits: maxUnavailable 1');
  busy = new Set();
  await until(r, (s) => ready('a', 2)(s) && [...platform.members.values()].every((m) => m.templateHash === 'h2'));
  assert.ok(asked.includes('a/1'), 'group 1 was drained in its turn');
  await r.teardown();
});
