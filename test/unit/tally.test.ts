// A Tally counts as prom-client's Counter would: the same text on /metrics, read after read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { Tally } from '../../src/gateway/metrics.js';

test('a tally reads as the counts added, per label set, and goes on from there after each read', async () => {
  const registry = new Registry();
  const t = new Tally({ name: 't_total', help: 'h', labelNames: ['model', 'status'], registers: [registry] });
  t.inc({ model: 'm', status: '200' });
  t.inc({ model: 'm', status: '200' }, 2);
  t.inc({ model: 'm', status: '500' });
  t.inc({ model: 'm2', status: '00' }); // label values that run together are still apart
  const values = async () =>
    Object.fromEntries((await t.get()).values.map((v) => [`${v.labels.model}|${v.labels.status}`, v.value]));
  assert.deepEqual(await values(), { 'm|200': 3, 'm|500': 1, 'm2|00': 1 });
  t.inc({ model: 'm', status: '200' }, 0);
  t.inc({ model: 'm', status: '500' });
  assert.deepEqual(await values(), { 'm|200': 3, 'm|500': 2, 'm2|00': 1 });
  assert.match(await registry.metrics(), /^t_total\{model="m",status="500"\} 2$/m);
});
