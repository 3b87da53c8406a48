import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pickBackend, type Backend } from '../../src/gateway/backends.js';
import { backendsFrom, modelsFrom } from '../../src/platforms/local/backend-source.js';
import type { ServiceSnapshot } from '../../src/core/snapshot.js';

const b = (id: string, ready = true): Backend => ({ id, model: 'm', url: `http://${id}`, ready });

test('least outstanding requests first', () => {
  const pick = pickBackend(
    [b('a'), b('b'), b('c')],
    new Map([
      ['a', 3],
      ['b', 1],
      ['c', 2],
    ]),
    new Map(),
    new Set(),
  );
  assert.equal(pick?.id, 'b');
});

test('ties go to the backend picked longest ago', () => {
  assert.equal(
    pickBackend(
      [b('a'), b('b')],
      new Map(),
      new Map([
        ['a', 5],
        ['b', 4],
      ]),
      new Set(),
    )?.id,
    'b',
  );
  assert.equal(pickBackend([b('a'), b('b')], new Map(), new Map([['a', 1]]), new Set())?.id, 'b');
});

test('backends that are not ready, or already tried, are never picked', () => {
  assert.equal(pickBackend([b('a', false), b('b')], new Map([['b', 9]]), new Map(), new Set())?.id, 'b');
  assert.equal(pickBackend([b('a'), b('b')], new Map(), new Map(), new Set(['a', 'b'])), undefined);
  assert.equal(pickBackend([], new Map(), new Map(), new Set()), undefined);
  const full = { ...b('a'), slots: 2 };
  assert.equal(pickBackend([full], new Map([['a', 2]]), new Map(), new Set()), undefined, 'at its slots');
  assert.equal(pickBackend([full], new Map([['a', 1]]), new Map(), new Set()), full);
});

test('a snapshot becomes backends (one per group leader) and models with ready counts', () => {
  const snapshot: ServiceSnapshot[] = [
    {
      name: 'svc',
      servedName: 'm',
      replicas: 3,
      slots: 4,
      templateHash: 'h',
      groups: [
        { replica: 0, phase: 'Ready', leader: { host: '127.1.1.1', port: 9 }, restarts: 0, members: [] },
        { replica: 1, phase: 'Starting', leader: { host: '127.1.2.1', port: 8 }, restarts: 0, members: [] },
      ],
    },
  ];
  assert.deepEqual(backendsFrom(snapshot), [
    { id: 'svc/0', model: 'm', url: 'http://127.1.1.1:9', ready: true, slots: 16, engineSlots: 4 }, // 4 slots + 12 waiting at the engine
    { id: 'svc/1', model: 'm', url: 'http://127.1.2.1:8', ready: false, slots: 16, engineSlots: 4 },
  ]);
  assert.deepEqual(modelsFrom(snapshot), [{ id: 'm', replicas: 3, readyReplicas: 1 }]);
  assert.equal(backendsFrom([{ ...snapshot[0]!, accelerated: true }])[0]!.accelerated, true, 'on GPUs');
  assert.equal(backendsFrom([{ ...snapshot[0]!, exclusiveCache: true }])[0]!.exclusiveCache, true);
});

test('with no replica ready, a model says when the first should be: its oldest start plus the measured startup time', () => {
  const group = (replica: number, createdAt: number, extra = {}) => ({
    replica,
    phase: 'Starting' as const,
    leader: { host: '127.1.1.1', port: 9 },
    restarts: 0,
    members: [],
    createdAt,
    ...extra,
  });
  const svc = (groups: ServiceSnapshot['groups'], startupMs?: number): ServiceSnapshot[] => [
    {
      name: 's',
      servedName: 'm',
      replicas: 2,
      slots: 4,
      templateHash: 'h',
      groups,
      ...(startupMs ? { startupMs } : {}),
    },
  ];
  assert.equal(modelsFrom(svc([group(0, 5_000), group(1, 3_000)], 40_000))[0]!.readyAt, 43_000);
  assert.equal(modelsFrom(svc([group(0, 5_000)]))[0]!.readyAt, undefined, 'no start measured yet');
  assert.equal(
    modelsFrom(svc([group(0, 5_000, { failed: 'past its budget' })], 40_000))[0]!.readyAt,
    undefined,
    'a Failed group is not coming',
  );
  assert.equal(
    modelsFrom(svc([{ ...group(0, 5_000), phase: 'Ready' }, group(1, 3_000)], 40_000))[0]!.readyAt,
    undefined,
    'one is ready',
  );
});
