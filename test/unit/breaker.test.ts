// The circuit breaker: a replica failing in a row leaves the rotation for a cooldown, one probe
// brings it back; in front of a real listener that is first down, then up. The upstream that works
// is a stub answering filler: which replica gets which request is what is checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Breakers } from '../../src/gateway/breaker.js';
import { Gateway } from '../../src/gateway/server.js';
import { freePort } from '../../src/util/net.js';
import { until } from '../helpers.js';

test('decisions: open after 3 failures, one probe after the cooldown, twice as long after a failed probe', () => {
  const b = new Breakers({ failures: 3, cooldownMs: 1000, maxCooldownMs: 3000 });
  b.failed('a', 0);
  b.failed('a', 0);
  assert.ok(b.allows('a', 0));
  b.failed('a', 0);
  assert.ok(!b.allows('a', 999));
  assert.deepEqual(b.open(), ['a']);
  assert.ok(b.allows('a', 1000), 'due for a probe');
  b.taken('a');
  assert.ok(!b.allows('a', 1000), 'one probe at a time');
  b.failed('a', 1000);
  assert.ok(!b.allows('a', 2999) && b.allows('a', 3000), 'open for 2 s now');
  b.taken('a');
  b.failed('a', 3000);
  assert.ok(!b.allows('a', 5999) && b.allows('a', 6000), 'at most maxCooldownMs');
  b.taken('a');
  b.succeeded('a');
  assert.ok(b.allows('a', 6000));
  assert.deepEqual(b.open(), []);
});

test('the gateway cuts a refusing replica out of rotation and probes it back once it listens', async () => {
  const hits = { a: 0, b: 0 };
  const stub = (name: 'a' | 'b') =>
    createServer((req, res) => {
      hits[name]++;
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"filler":true}');
    });
  const bServer = stub('b');
  await new Promise<void>((r) => bServer.listen(0, '127.0.0.1', r));
  const aPort = await freePort();
  // The breakers' time is the test's: it passes only when the test says so, however slow the machine.
  let now = 0;
  const backends = [
    { id: 'm/a', model: 'm', url: `http://127.0.0.1:${aPort}`, ready: true },
    { id: 'm/b', model: 'm', url: `http://127.0.0.1:${(bServer.address() as AddressInfo).port}`, ready: true },
  ];
  let listed = backends;
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    clock: () => now,
    breaker: { failures: 3, cooldownMs: 300, maxCooldownMs: 1000 },
    source: {
      backends: () => listed,
      models: () => [{ id: 'm', replicas: 2, readyReplicas: 2 }],
      groups: () => [],
    },
  });
  await gateway.listen();
  const ask = async () =>
    (
      await fetch(`${gateway.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', prompt: 'x' }),
      })
    ).status;
  let aServer: Server | undefined;
  try {
    for (let i = 0; i < 10; i++) assert.equal(await ask(), 200, 'every request is served (retried on b)');
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    assert.match(metrics, /tandem_gateway_retries_total\{model="m"\} 3\n/, 'a was tried 3 times, then left alone');
    assert.match(metrics, /tandem_gateway_circuit_open\{replica="m\/a"\} 1/);
    aServer = stub('a');
    await new Promise<void>((r) => aServer!.listen(aPort, '127.0.0.1', r));
    now += 300;
    for (let i = 0; i < 6; i++) assert.equal(await ask(), 200);
    assert.ok(hits.a >= 2, `a is back in rotation (${hits.a} requests)`);
    assert.doesNotMatch(await (await fetch(`${gateway.url}/metrics`)).text(), /tandem_gateway_circuit_open\{/);

    // A replica that goes from the source takes its breaker with it (it was reported open forever,
    // and one re-created under the same id started out of rotation).
    aServer.close();
    aServer.closeAllConnections();
    for (let i = 0; i < 10; i++) assert.equal(await ask(), 200);
    assert.match(
      await (await fetch(`${gateway.url}/metrics`)).text(),
      /tandem_gateway_circuit_open\{replica="m\/a"\} 1/,
    );
    listed = [backends[1]!];
    await until('m/a forgotten', 10_000, async () =>
      /circuit_open\{replica="m\/a"/.test(await (await fetch(`${gateway.url}/metrics`)).text()) ? undefined : true,
    );
    aServer = stub('a');
    await new Promise<void>((r) => aServer!.listen(aPort, '127.0.0.1', r));
    listed = backends;
    const before = hits.a;
    for (let i = 0; i < 4; i++) assert.equal(await ask(), 200);
    assert.ok(hits.a > before, 'the re-created m/a takes requests at once');
  } finally {
    await gateway.close();
    bServer.close();
    aServer?.close();
  }
});
