// The gateway's failure paths, each against a peer scripted to fail that way (test/fixtures).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Gateway, DEFAULT_TIMEOUTS, type UpstreamTimeouts } from '../../src/gateway/server.js';
import type { Backend } from '../../src/gateway/backends.js';
import type { GroupMetric } from '../../src/core/serving.js';
import { scriptedUpstream, type Script } from '../fixtures/scripted-upstream.js';
import { scrape } from '../helpers.js';

const MODEL = 'm';

async function gatewayOver(
  scripts: [string, Script][],
  timeouts: UpstreamTimeouts = DEFAULT_TIMEOUTS,
  clock?: () => number,
) {
  const upstreams = await Promise.all(scripts.map(([, script]) => scriptedUpstream(script)));
  const backends: Backend[] = upstreams.map((u, i) => ({ id: scripts[i]![0], model: MODEL, url: u.url, ready: true }));
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    bodyLimit: 64 * 1024,
    timeouts,
    ...(clock ? { clock } : {}),
    source: {
      backends: () => backends,
      models: () => [{ id: MODEL, replicas: backends.length, readyReplicas: backends.length }],
      groups: () => [],
    },
  });
  await gateway.listen();
  return {
    gateway,
    upstreams,
    backends,
    close: async () => {
      await gateway.close();
      await Promise.all(upstreams.map((u) => u.close()));
    },
  };
}

const post = (url: string, body: unknown = { model: MODEL, prompt: 'Hi', stream: true }) =>
  fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a streaming client that stops reading and then disconnects is no longer outstanding', async () => {
  const { gateway, upstreams, close } = await gatewayOver([['flood', { kind: 'flood', maxBytes: 256 * 2 ** 20 }]]);
  const outstanding = async () => (await scrape(gateway.url))['tandem_gateway_outstanding_requests{replica="flood"}'];
  try {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(gateway.url).port) });
    socket.pause(); // never reads
    const body = JSON.stringify({ model: MODEL, prompt: 'Hi', stream: true });
    socket.write(
      `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    await until('the request to be in flight', async () => (await outstanding()) === 1);
    // Buffers fill: the relay waits for the client, and so the engine's writes are held back.
    await until('the engine held back', async () => upstreams[0]!.heldBack() > 0);
    socket.destroy();
    await until('the request to be released', async () => (await outstanding()) === 0);
    await until('the upstream request to be cancelled', async () => upstreams[0]!.open() === 0);
  } finally {
    await close();
  }
});

test('a streaming client that stops reading, then reads on, gets the whole answer: the engine is held back meanwhile, not dropped', async () => {
  const maxBytes = 64 * 2 ** 20; // more than the sockets between them hold, wherever autotuning sets them
  const { gateway, upstreams, close } = await gatewayOver([['flood', { kind: 'flood', maxBytes }]]);
  try {
    const res = await post(gateway.url); // its body not read yet
    assert.equal(res.status, 200);
    await until('the engine held back', async () => upstreams[0]!.heldBack() > 0);
    const text = await res.text();
    const event = `data: ${JSON.stringify({ filler: 'x'.repeat(64 * 1024) })}\n\n`;
    assert.equal(text.length, Math.ceil(maxBytes / event.length) * event.length, 'every event, once');
    await until('the upstream request to end', async () => upstreams[0]!.open() === 0);
  } finally {
    await close();
  }
});

test('a kept-alive connection the engine closed as it was reused is not a failure: the request goes again on a new one', async () => {
  const { gateway, close } = await gatewayOver([['closer', { kind: 'drop-reused' }]]);
  try {
    for (let i = 0; i < 3; i++) {
      const res = await post(gateway.url, { model: MODEL, prompt: 'Hi' });
      assert.equal(res.status, 200, await res.clone().text());
      assert.deepEqual(await res.json(), { filler: true });
    }
    assert.equal((await scrape(gateway.url))['tandem_gateway_circuit_open{replica="closer"}'], undefined);
  } finally {
    await close();
  }
});

test("with no replica ready, the 503's Retry-After is when the first should be, from the measured startup time", async () => {
  const readyAt = Date.now() + 7_000;
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    source: {
      backends: () => [{ id: 'm/0', model: MODEL, url: 'http://127.0.0.1:9', ready: false }],
      models: () => [{ id: MODEL, replicas: 1, readyReplicas: 0, readyAt }],
      groups: () => [],
    },
  });
  await gateway.listen();
  try {
    const res = await post(gateway.url, { model: MODEL, prompt: 'Hi' });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '7');
  } finally {
    await gateway.close();
  }
});

test('a group recreated past its expected start is expected a whole start from now: 503 at once, its Retry-After that start (it waited)', async () => {
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    source: {
      backends: () => [{ id: 'm/0', model: MODEL, url: 'http://127.0.0.1:9', ready: false }],
      // The group's members were made 10 minutes ago; it takes a minute to start.
      models: () => [{ id: MODEL, replicas: 1, readyReplicas: 0, readyAt: Date.now() - 540_000, startupMs: 60_000 }],
      groups: () => [{ service: 's', model: MODEL, replica: 0, phase: 'Recreating', restarts: 1 }],
    },
  });
  await gateway.listen();
  try {
    const res = await post(gateway.url, { model: MODEL, prompt: 'Hi' });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '60');
  } finally {
    await gateway.close();
  }
});

test("a lone replica's 503 reaches the client as the engine sent it, Retry-After included", async () => {
  const { gateway, close } = await gatewayOver([['loading', { kind: 'loading', retryAfter: '7' }]]);
  try {
    const res = await post(gateway.url);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '7');
    assert.equal(res.headers.get('x-tandem-backend'), 'loading');
    assert.deepEqual(await res.json(), { error: { message: 'Loading model', type: 'unavailable_error', code: 503 } });
  } finally {
    await close();
  }
});

test("a lone replica's 503 passes through even when the other replica takes no new request (retiring; it became a 502)", async () => {
  const { gateway, close } = await gatewayOver([
    ['loading', { kind: 'loading', retryAfter: '7' }],
    ['retiring', { kind: 'hang' }],
  ]);
  try {
    gateway.retire(['retiring']);
    const res = await post(gateway.url, { model: MODEL, prompt: 'Hi' });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '7');
  } finally {
    await close();
  }
});

test('a drain still serves a request queued before it, when a replica comes in its time (it was left waiting)', async () => {
  const upstream = await scriptedUpstream({ kind: 'drop-reused' });
  const backend: Backend = { id: 'm/0', model: MODEL, url: upstream.url, ready: false };
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    source: {
      backends: () => [backend],
      models: () => [{ id: MODEL, replicas: 1, readyReplicas: 0 }],
      groups: () => [{ service: 's', model: MODEL, replica: 0, phase: 'Starting', restarts: 0 }],
    },
  });
  await gateway.listen();
  try {
    const answer = post(gateway.url, { model: MODEL, prompt: 'Hi' });
    await until('the request queued', async () => gateway.load(MODEL).queued === 1);
    const closed = gateway.close(60_000);
    backend.ready = true;
    const res = await answer;
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { filler: true });
    assert.equal(await closed, 0, 'nothing cut');
  } finally {
    await gateway.close();
    await upstream.close();
  }
});

test('a replica that does not answer in time is retried elsewhere; with none left, 504 upstream_timeout', async () => {
  const timeouts = { connectMs: 1000, firstByteMs: 300, idleMs: 1000, unresponsiveMs: 10_000 };
  const hungOnly = await gatewayOver([['hung', { kind: 'hang' }]], timeouts);
  try {
    const res = await post(hungOnly.gateway.url);
    assert.equal(res.status, 504);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'upstream_timeout');
    assert.match(body.error.message, /hung: no response within 300 ms/);
  } finally {
    await hungOnly.close();
  }
  const pair = await gatewayOver(
    [
      ['hung', { kind: 'hang' }],
      ['loading', { kind: 'loading', retryAfter: '3' }],
    ],
    timeouts,
  );
  try {
    const res = await post(pair.gateway.url);
    assert.equal(res.status, 503, 'the second replica answered');
    assert.equal(res.headers.get('x-tandem-backend'), 'loading');
    assert.equal((await scrape(pair.gateway.url))[`tandem_gateway_retries_total{model="${MODEL}"}`], 1);
  } finally {
    await pair.close();
  }
});

test('a stream whose replica goes silent mid-way ends after the idle timeout with an error event, not never', async () => {
  const timeouts = { connectMs: 1000, firstByteMs: 1000, idleMs: 500, unresponsiveMs: 600_000 };
  const { gateway, upstreams, close } = await gatewayOver([['stalled', { kind: 'stall', events: 2 }]], timeouts);
  try {
    const res = await post(gateway.url);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /"filler":1/);
    assert.match(text, /nothing received for 500 ms.*upstream_failed/);
    await until('the upstream request to be closed', async () => upstreams[0]!.open() === 0);
  } finally {
    await close();
  }
});

test('a replica silent with its streams flowing is unresponsive: its requests cut, out of rotation, its platform told', async () => {
  let now = 0;
  const timeouts = { ...DEFAULT_TIMEOUTS, unresponsiveMs: 10_000 };
  const { gateway, upstreams, backends, close } = await gatewayOver(
    [
      ['stalled', { kind: 'stall', events: 2 }],
      ['spare', { kind: 'drop-reused' }],
    ],
    timeouts,
    () => now,
  );
  backends[1]!.ready = false; // the stream goes to the replica that will stall
  try {
    const told = new Promise<[string, number]>((resolve) => gateway.onUnresponsive((...a) => resolve(a)));
    const res = await post(gateway.url);
    assert.equal(res.headers.get('x-tandem-backend'), 'stalled');
    const reader = res.body!.getReader();
    await reader.read(); // flowing
    assert.equal(upstreams[0]!.open(), 1, 'serving');
    now += 10_000; // the bound itself (below it is liveness.test.ts's)
    assert.deepEqual(await told, ['stalled', 10_000]);
    await until('its request to be cut', async () => upstreams[0]!.open() === 0);
    void reader.cancel();
    const metrics = await scrape(gateway.url);
    assert.equal(metrics[`tandem_gateway_unresponsive_total{model="${MODEL}",replica="stalled"}`], 1);
    assert.equal(metrics[`tandem_gateway_unresponsive_detection_seconds_sum{model="${MODEL}"}`], 10);
    // The process's footprint, under the names Node dashboards know.
    for (const name of ['process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'process_open_fds'])
      assert.ok(metrics[name]! > 0, `${name}: ${metrics[name]}`);
    assert.ok(metrics.nodejs_heap_size_total_bytes! >= metrics.nodejs_heap_size_used_bytes!);
    backends[1]!.ready = true;
    const next = await post(gateway.url, { model: MODEL, prompt: 'Hi' });
    assert.equal(next.headers.get('x-tandem-backend'), 'spare', 'the unresponsive replica takes no new request');
    await next.text();
  } finally {
    await close();
  }
});

test('a replica out of the list (its service deleting, draining) is judged by its streams: what its engine last said does not age', async () => {
  let now = 0;
  const timeouts = { ...DEFAULT_TIMEOUTS, unresponsiveMs: 10_000 };
  const { gateway, upstreams, backends, close } = await gatewayOver(
    [['draining', { kind: 'trickle', events: 30, everyMs: 50 }]],
    timeouts,
    () => now,
  );
  backends[0]!.tokenIds = 'llama-server'; // its /slots is asked while it has requests
  try {
    let told: string | undefined;
    gateway.onUnresponsive((id) => (told = id));
    const res = await post(gateway.url);
    const reader = res.body!.getReader();
    await reader.read(); // flowing
    await until('its engine asked', async () => upstreams[0]!.slotsAsked() > 0);
    // The service is deleted: its replica leaves the list while its stream drains, past the bound.
    backends.length = 0;
    now += 10_000;
    let text = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
    assert.match(text, /"filler":29[^]*\[DONE\]/, 'the stream drained whole');
    assert.equal(told, undefined, 'not judged unresponsive');
  } finally {
    await close();
  }
});

test('/readyz: an autoscaled model at zero is ready (a request starts a group), not when every group it has failed', async () => {
  const groups: GroupMetric[] = [];
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    source: {
      backends: () => [],
      models: () => [{ id: MODEL, replicas: groups.length, readyReplicas: 0, autoscaled: true }],
      groups: () => groups,
    },
  });
  await gateway.listen();
  try {
    assert.equal((await fetch(`${gateway.url}/readyz`)).status, 200, 'scaled to zero');
    groups.push({ service: 's', model: MODEL, replica: 0, phase: 'Failed', restarts: 5 });
    assert.equal((await fetch(`${gateway.url}/readyz`)).status, 503, 'its only group failed');
    groups.push({ service: 's', model: MODEL, replica: 1, phase: 'Starting', restarts: 0 });
    assert.equal((await fetch(`${gateway.url}/readyz`)).status, 200, 'another is on its way');
  } finally {
    await gateway.close();
  }
});

test('a chunked body over the limit gets 413 and the connection is closed, not read to its end', async () => {
  const { gateway, close } = await gatewayOver([]);
  try {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(gateway.url).port) });
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
    socket.write('POST /v1/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n');
    const chunk = `10000\r\n${'x'.repeat(0x10000)}\r\n`;
    let sent = 0;
    const LIMIT = 64 * 2 ** 20;
    while (sent < LIMIT && !socket.destroyed && socket.writable) {
      sent += chunk.length;
      if (!socket.write(chunk)) {
        const drained = await Promise.race([
          new Promise((r) => socket.once('drain', () => r(true))),
          closed.then(() => false),
          new Promise((r) => setTimeout(() => r(false), 2000)),
        ]);
        if (!drained) break;
      }
    }
    await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /request_too_large/);
    assert.ok(socket.destroyed || !socket.writable, 'the connection is still open');
    assert.ok(sent < 32 * 2 ** 20, `the gateway read ${sent} bytes of a refused body`);
  } finally {
    await close();
  }
});

test("every answer carries its request id: relayed, refused on a relayed path, and the gateway's own", async () => {
  const { gateway, close } = await gatewayOver([['a', { kind: 'drop-reused' }]]);
  try {
    const ask = (path: string, body: unknown, id?: string) =>
      fetch(`${gateway.url}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json', ...(id ? { 'x-request-id': id } : {}) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const relayed = await ask('/v1/completions', { model: MODEL, prompt: 'Hi' }, 'given-1');
    assert.equal(relayed.status, 200);
    assert.equal(relayed.headers.get('x-request-id'), 'given-1');
    const refused = await ask('/v1/completions', { model: 'no-such-model', prompt: 'Hi' }, 'given-2');
    assert.equal(refused.status, 404);
    assert.equal(refused.headers.get('x-request-id'), 'given-2');
    const own = await ask('/healthz', undefined);
    assert.match(
      own.headers.get('x-request-id') ?? '',
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    const next = await ask('/healthz', undefined);
    assert.notEqual(next.headers.get('x-request-id'), own.headers.get('x-request-id'), 'one of its own per request');
    await Promise.all([relayed.text(), refused.text(), own.text(), next.text()]);
  } finally {
    await close();
  }
});
