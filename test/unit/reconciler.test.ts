// The executor against an in-memory platform: discovery, persisted status, stop vs teardown,
// spec changes, and isolation between services. Real processes are the integration tier's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStatusStore, Reconciler, type ServiceSnapshot } from '../../src/controller/reconciler.js';
import type { ServiceTemplate } from '../../src/core/service.js';
import type { Endpoint, GroupRef, MemberTemplate, ObservedMember, Platform } from '../../src/core/group.js';

/** Members are records; they become ready at once; a delete finishes a few ms after it starts. */
class MemoryPlatform implements Platform {
  readonly members = new Map<string, ObservedMember & { service: string }>();
  creates = 0;
  failObserve = new Set<string>();
  private listeners: ((s: string) => void)[] = [];
  private uids = 0;
  async endpoints(group: GroupRef, size: number): Promise<Endpoint[]> {
    return Array.from({ length: size }, (_, i) => ({ host: `${group.service}-${group.replica}-${i}`, port: 1 }));
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
      createdAt: Date.now(),
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
  async release(): Promise<void> {}
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
    const check = (s: ServiceSnapshot[]) => {
      if (!done(s)) return;
      clearTimeout(timer);
      r.off('tick', check);
      resolve();
    };
    r.on('tick', check);
    check(r.snapshot());
  });
}
const ready = (name: string, groups: number) => (s: ServiceSnapshot[]) => {
  const svc = s.find((x) => x.name === name);
  return svc?.groups.length === groups && svc.groups.every((g) => g.phase === 'Ready');
};

test('a new reconciler picks up running groups and their statuses without recreating anything', async () => {
  const platform = new MemoryPlatform();
  const store = new MemoryStatusStore();
  const first = new Reconciler(platform, store, { resyncMs: 50 });
  first.apply(service('a', 2));
  first.start();
  await until(first, ready('a', 2));
  await first.stop();
  assert.equal(platform.members.size, 4, 'stop() leaves every member running');
  await store.save('a', { ...(await store.load('a')), 1: { ...(await store.load('a'))[1]!, restarts: 7 } });

  const created = platform.creates;
  const second = new Reconciler(platform, store, { resyncMs: 50 });
  second.apply(service('a', 2));
  second.start();
  await until(second, ready('a', 2));
  assert.equal(platform.creates, created, 'nothing recreated');
  assert.equal(second.snapshot()[0]!.groups[1]!.restarts, 7, 'the persisted status is carried on');
  await second.teardown();
  assert.equal(platform.members.size, 0);
});

test('a member removed behind its back recreates its whole group, once', async () => {
  const platform = new MemoryPlatform();
  const r = new Reconciler(platform, new MemoryStatusStore(), { resyncMs: 50 });
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
  const r = new Reconciler(platform, new MemoryStatusStore(), { resyncMs: 50 });
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
  const r = new Reconciler(platform, new MemoryStatusStore(), { resyncMs: 50, retryBaseMs: 20 });
  const errors: string[] = [];
  r.on('event', (e) => e.warning && errors.push(e.message));
  r.apply(service('a', 1));
  r.apply(service('b', 1));
  r.start();
  await until(r, ready('b', 1));
  assert.match(errors[0]!, /^reconcile failed \(retrying in \d+ ms\): API unavailable for a$/);
  platform.failObserve.clear();
  await until(r, ready('a', 1));
  await r.teardown();
});
