import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatusWriter } from '../../src/platforms/kubernetes/status-writer.js';
import { serviceStatus } from '../../src/platforms/kubernetes/service-status.js';
import type { ClusterCache } from '../../src/platforms/kubernetes/cluster-cache.js';
import type { RawApi } from '../../src/platforms/kubernetes/raw.js';
import type { InferenceServiceObject } from '../../src/platforms/kubernetes/inference-services.js';
import type { MemberSnapshot, ServiceSnapshot } from '../../src/core/snapshot.js';

const member = (index: number, state: MemberSnapshot['state']): MemberSnapshot => ({
  index,
  role: index === 0 ? 'leader' : 'worker',
  address: `10.0.0.${index}`,
  state,
});
const view = (phase: 'Starting' | 'Ready', members: MemberSnapshot[]): ServiceSnapshot => ({
  name: 'x',
  servedName: 'x',
  replicas: 1,
  slots: 1,
  templateHash: 'h',
  groups: [{ replica: 0, phase, leader: { host: '10.0.0.0', port: 8080 }, restarts: 0, members }],
});

/** Keys sorted at every level, as the API server returns an object. */
function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, sorted(v)]),
    );
  return value;
}

/** A writer over one object whose status is what the API server last stored; patches are counted. */
function harness(initial: ServiceSnapshot) {
  let now = 1_000_000;
  let current = initial;
  const object: InferenceServiceObject = {
    metadata: { name: 'x', uid: 'u', generation: 1 },
    spec: {},
  } as InferenceServiceObject;
  object.status = sorted(serviceStatus(1, initial, 1, [], new Date(now))) as InferenceServiceObject['status'];
  const patches: unknown[] = [];
  const cache = {
    namespace: 'ns',
    objects: { get: () => object, wrote: () => undefined },
    spec: () => undefined,
  } as unknown as ClusterCache;
  const api = {
    patch: async (_path: string, body: { status: InferenceServiceObject['status'] }) => {
      patches.push(body);
      object.status = sorted(body.status) as InferenceServiceObject['status'];
      return object;
    },
  } as unknown as RawApi;
  const writer = new StatusWriter(
    api,
    cache,
    () => current,
    () => undefined,
    () => now,
  );
  return {
    writer,
    patches,
    set: (v: ServiceSnapshot) => (current = v),
    advance: (ms: number) => (now += ms),
  };
}

const settle = () => new Promise((r) => setImmediate(r));

test('a status the API server holds with its keys sorted is not written again (it was, on every pass)', async () => {
  const h = harness(view('Ready', [member(0, 'Ready'), member(1, 'Ready')]));
  h.writer.request('x');
  await settle();
  assert.equal(h.patches.length, 0);
  h.writer.stop();
});

test("a change of readiness goes out at once; members' progress a moment later and at most every 5 s, as one write", async () => {
  const h = harness(view('Starting', [member(0, 'Starting'), member(1, 'Starting')]));
  h.set(view('Starting', [member(0, 'Ready'), member(1, 'Starting')]));
  h.writer.request('x');
  await settle();
  assert.equal(h.patches.length, 0, 'progress waits (a readiness change tends to follow)');
  h.advance(500);
  h.set(view('Ready', [member(0, 'Ready'), member(1, 'Ready')]));
  h.writer.request('x');
  await settle();
  assert.equal(h.patches.length, 1, 'Ready goes out at once, with the progress put off before it');
  assert.equal((h.patches[0] as { status: { readyGroups: string } }).status.readyGroups, '1/1');
  h.advance(1000);
  h.set(view('Ready', [member(0, 'Ready'), member(1, 'Ready')]));
  h.writer.request('x');
  await settle();
  assert.equal(h.patches.length, 1, 'nothing changed: nothing written');
  h.writer.stop();
});
