// Admission: slots per replica, a FIFO queue per model with a bound and a deadline, and a
// Retry-After from the measured rate. The upstream is a stub that holds each request until the test
// lets it go and answers filler: the order requests reach it is what is checked, not what it says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SlotQueues } from '../../src/gateway/admission.js';
import { Cancel, Cancelled } from '../../src/gateway/cancel.js';
import { Gateway } from '../../src/gateway/server.js';

test('a cancelled request leaves the queue: the next slot goes to the one behind it', async () => {
  const q = new SlotQueues({ queueLimit: 10, queueTimeoutMs: 60_000 });
  const first = new Cancel();
  const second = new Cancel();
  const a = q.wait('m', new Set(), first);
  const b = q.wait('m', new Set(), second);
  assert.equal(q.queued('m'), 2);
  first.cancel();
  await assert.rejects(a, Cancelled);
  assert.equal(q.queued('m'), 1);
  const backend = { id: 'm/0', model: 'm', url: 'http://127.0.0.1:1', ready: true };
  q.wake('m', () => backend);
  assert.equal(await b, backend);
  second.cancel(); // after the grant: nothing left to leave
  assert.equal(q.queued('m'), 0);
});

test("a waiter is picked a slot with its prompt's prefix keys, as a newcomer is", async () => {
  const q = new SlotQueues({ queueLimit: 10, queueTimeoutMs: 60_000 });
  const cancel = new Cancel();
  const waiting = q.wait('m', new Set(), cancel, [7, 8]);
  const backend = { id: 'm/1', model: 'm', url: 'http://127.0.0.1:1', ready: true };
  const asked: (readonly number[])[] = [];
  q.wake('m', (_tried, keys) => (asked.push(keys), backend));
  assert.equal(await waiting, backend);
  assert.deepEqual(asked, [[7, 8]]);
});

test('the Retry-After is the time the queue ahead takes to drain at the measured rate', async () => {
  const q = new SlotQueues({ queueLimit: 10, queueTimeoutMs: 60_000 });
  assert.equal(q.retryAfterS('m'), 1, 'no rate measured yet');
  for (let i = 0; i <= 10; i++) q.done('m', i * 2000); // one request finished every 2 s
  const cancels = [0, 1, 2].map(() => new Cancel());
  const waits = cancels.map((c) => q.wait('m', new Set(), c).catch(() => undefined));
  assert.equal(q.queued('m'), 3);
  assert.equal(q.retryAfterS('m'), 8, '(3 waiting + 1) requests at 0.5 per second');
  cancels.forEach((c) => c.cancel());
  await Promise.all(waits);
});

/** A stub holding every request until the test ends it, behind a gateway with one slot. */
async function oneSlot(queueTimeoutMs: number) {
  const arrived: string[] = [];
  const held: ServerResponse[] = [];
  const upstream = createServer((req, res) => {
    arrived.push(String(req.headers['x-request-id']));
    req.resume();
    held.push(res);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    admission: { queueLimit: 3, queueTimeoutMs },
    source: {
      backends: () => [{ id: 'm/0', model: 'm', url, ready: true, slots: 1 }],
      models: () => [{ id: 'm', replicas: 1, readyReplicas: 1 }],
      groups: () => [],
    },
  });
  await gateway.listen();
  const send = (id?: string) =>
    fetch(`${gateway.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(id ? { 'x-request-id': id } : {}) },
      body: JSON.stringify({ model: 'm', prompt: 'x' }),
    });
  const close = async () => {
    for (const r of held) r.end();
    await gateway.close();
    upstream.close();
  };
  return { arrived, held, gateway, send, close };
}

test('a burst beyond every slot waits in order, nothing dropped; past the bound, 429 with Retry-After', async () => {
  const { arrived, held, gateway, send, close } = await oneSlot(10_000);
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(cond());
  };
  try {
    const answers: Promise<Response>[] = [];
    // Each sent once the one before it is in the gateway's hands: they reach it in this order.
    answers.push(send('r0'));
    await until(() => arrived.length === 1);
    for (const [i, id] of ['r1', 'r2', 'r3'].entries()) {
      answers.push(send(id));
      await until(() => gateway.load('m').queued === i + 1);
    }
    const full = await send('r4');
    assert.equal(full.status, 429);
    assert.equal(((await full.json()) as { error: { code: string } }).error.code, 'queue_full');
    assert.ok(Number(full.headers.get('retry-after')) >= 1);
    for (let served = 1; served <= 4; served++) {
      held.shift()!.end('{"filler":true}');
      if (served < 4) await until(() => arrived.length === served + 1);
    }
    assert.deepEqual(arrived, ['r0', 'r1', 'r2', 'r3'], 'first in, first out, one at a time');
    for (const a of answers) assert.equal((await a).status, 200);
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    assert.match(metrics, /tandem_gateway_queue_wait_seconds_count\{model="m"\} 3/);
  } finally {
    await close();
  }
});

test('a request that waits past the deadline gets 429 queue_timeout', async () => {
  const { held, send: post, close } = await oneSlot(300);
  try {
    const first = post();
    for (let i = 0; i < 100 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const waited = await post();
    assert.equal(waited.status, 429);
    assert.equal(((await waited.json()) as { error: { code: string } }).error.code, 'queue_timeout');
    held.shift()!.end('{}');
    assert.equal((await first).status, 200);
  } finally {
    await close();
  }
});
