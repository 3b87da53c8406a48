// API keys: the pure decisions (401, 403, 429 with a Retry-After from the bucket), the key file
// (hashes only, reloaded on change), and the gateway answering in OpenAI's error shape through the
// official client, never passing the key on. The upstream here is a stub that records what reaches
// it and answers an error: what engines answer is tested against real engines elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { pbkdf2 } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import {
  addKey,
  hashKey,
  isDenied,
  KeyRing,
  readKeyFile,
  watchKeyFile,
  type KeyEntry,
} from '../../src/gateway/keys.js';
import { Gateway } from '../../src/gateway/server.js';

type ApiError = InstanceType<typeof OpenAI.APIError>;

const entry = (name: string, key: string, extra: Partial<KeyEntry> = {}): KeyEntry => ({
  name,
  sha256: hashKey(key),
  ...extra,
});

test('decisions: no key, a wrong key, a model not allowed, a rate that refills', () => {
  const ring = new KeyRing([entry('a', 'ka', { models: ['m1'], requestsPerMinute: 2 }), entry('b', 'kb')]);
  assert.deepEqual(ring.identify(undefined), {
    status: 401,
    code: 'missing_api_key',
    message: 'an API key is required: Authorization: Bearer KEY',
  });
  assert.equal((ring.identify('Bearer nope') as { code: string }).code, 'invalid_api_key');
  const a = ring.identify('Bearer ka') as KeyEntry;
  assert.equal(a.name, 'a');
  assert.equal(ring.admit(a, 'm2', 0)?.status, 403);
  assert.equal(ring.admit(a, 'm1', 0), undefined);
  assert.equal(ring.admit(a, 'm1', 0), undefined);
  assert.deepEqual(ring.admit(a, 'm1', 1000), {
    status: 429,
    code: 'rate_limit_exceeded',
    message: 'this API key may make 2 requests per minute',
    retryAfterS: 29, // one request refills in 30 s; 1 s has passed
  });
  assert.equal(ring.admit(a, 'm1', 31_000), undefined, 'refilled');
  const b = ring.identify('bearer kb') as KeyEntry;
  for (let i = 0; i < 100; i++) assert.equal(ring.admit(b, 'anything', 0), undefined, 'no limits set: none applied');
  // A key known from earlier requests is refused once it leaves the ring, and a new one is taken.
  ring.replace([entry('c', 'kc')]);
  assert.equal((ring.identify('Bearer ka') as { code: string }).code, 'invalid_api_key');
  assert.equal((ring.identify('Bearer kc') as KeyEntry).name, 'c');
  // Known, a key is still read only from a Bearer header: its token alone, or another scheme, is none.
  assert.equal((ring.identify('kc') as { code: string }).code, 'missing_api_key');
  assert.equal((ring.identify('Basic kc') as { code: string }).code, 'missing_api_key');
  assert.equal((ring.identify('Bearer  kc ') as KeyEntry).name, 'c', 'spaces are allowed around the token');
  assert.equal((ring.identify('Bearer kc') as KeyEntry).name, 'c');
});

test('the key file holds hashes only; bad files are refused with the field named; changes are picked up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-keys-'));
  const file = join(dir, 'keys.yaml');
  const key = addKey(file, { name: 'team-a', models: ['m1'], requestsPerMinute: 60 });
  assert.match(key, /^tandem-[A-Za-z0-9_-]{43}$/);
  const text = readFileSync(file, 'utf8');
  assert.ok(!text.includes(key), 'the key itself is not stored');
  assert.ok(text.includes(hashKey(key)));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.throws(() => addKey(file, { name: 'team-a' }), /a key named "team-a" exists already/);
  writeFileSync(join(dir, 'bad.yaml'), 'keys: [{name: x, sha256: abc}]');
  assert.throws(() => readKeyFile(join(dir, 'bad.yaml')), /keys\.0\.sha256: must be a SHA-256 hash in hex/);

  const lines: string[] = [];
  const watched = watchKeyFile(file, (l) => lines.push(l));
  try {
    const later = addKey(file, { name: 'team-b' });
    for (let i = 0; i < 50 && !lines.some((l) => l.includes('keys reloaded')); i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(lines, [`tandem: API keys reloaded from ${file}`], 'read whole: never half a file');
    assert.equal((watched.ring.identify(`Bearer ${later}`) as KeyEntry).name, 'team-b');
    writeFileSync(file, 'keys: {}');
    for (let i = 0; i < 50 && !lines.some((l) => l.includes('not reloaded')); i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(
      (watched.ring.identify(`Bearer ${later}`) as KeyEntry).name,
      'team-b',
      'a broken file keeps the keys in force',
    );
  } finally {
    watched.close();
  }
});

test('the gateway with keys: OpenAI-shaped 401/403/429, models filtered, the key never sent upstream', async () => {
  const seen: IncomingHttpHeaders[] = [];
  const upstream = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end('{"error":{"message":"Loading model","type":"unavailable_error","code":503}}');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const lines: string[] = [];
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    accessLog: { write: (entry) => lines.push(JSON.stringify(entry)) },
    keys: new KeyRing([entry('a', 'ka', { models: ['m1'], requestsPerMinute: 1 }), entry('b', 'kb')]),
    source: {
      backends: () => ['m1', 'm2'].map((model) => ({ id: `${model}/0`, model, url, ready: true })),
      models: () => ['m1', 'm2'].map((id) => ({ id, replicas: 1, readyReplicas: 1 })),
      groups: () => [],
    },
  });
  await gateway.listen();
  const client = (apiKey: string) => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0 });
  const ask = (apiKey: string, model: string) =>
    client(apiKey).completions.create({ model, prompt: 'x', max_tokens: 1 });
  try {
    await assert.rejects(ask('wrong', 'm1'), (e: ApiError) => e.status === 401 && e.code === 'invalid_api_key');
    assert.deepEqual(
      (await client('kb').models.list()).data.map((m) => m.id),
      ['m1', 'm2'],
    );
    assert.deepEqual(
      (await client('ka').models.list()).data.map((m) => m.id),
      ['m1'],
      'only the models the key may use',
    );
    await assert.rejects(ask('ka', 'm2'), (e: ApiError) => e.status === 403 && e.code === 'model_not_allowed');
    // Admitted: the request reaches the upstream (whose 503 comes back), without the key.
    await assert.rejects(ask('ka', 'm1'), (e: ApiError) => e.status === 503);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.authorization, undefined);
    assert.match(String(seen[0]!['x-request-id']), /^[0-9a-f-]{36}$/, 'the request id goes upstream');
    await assert.rejects(
      ask('ka', 'm1'),
      (e: ApiError) =>
        e.status === 429 && e.code === 'rate_limit_exceeded' && Number(e.headers?.get('retry-after')) > 50,
    );
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    assert.match(metrics, /tandem_gateway_key_denials_total\{code="rate_limit_exceeded"\} 1/);
    assert.match(metrics, /tandem_gateway_key_denials_total\{code="invalid_api_key"\} 1/);
    assert.match(metrics, /tandem_gateway_key_requests_total\{key="a"\} 1/);
    // The access log: one JSON line per request, the key's name and never the key.
    const log = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const forwarded = log.find((l) => l.status === 503)!;
    assert.deepEqual(
      { model: forwarded.model, key: forwarded.key, replica: forwarded.replica, path: forwarded.path },
      { model: 'm1', key: 'a', replica: 'm1/0', path: '/v1/completions' },
    );
    assert.equal(forwarded.id, seen[0]!['x-request-id']);
    assert.ok(log.some((l) => l.status === 401 && l.key === undefined));
    assert.ok(!lines.join('\n').includes('ka'), 'no key in the log');
  } finally {
    await gateway.close();
    upstream.close();
  }
});

test('tandem up refuses to serve beyond loopback without keys', () => {
  const cli = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
  assert.throws(
    () => execFileSync(process.execPath, [cli, 'up', 'x.yaml', '--host', '0.0.0.0'], { stdio: 'pipe' }),
    (err: { status: number; stderr: Buffer }) =>
      err.status === 2 &&
      /--host 0\.0\.0\.0 serves beyond this machine: give --api-keys FILE/.test(err.stderr.toString()),
  );
});

test("tokens per minute: an answer's usage is charged to its key, which waits once it is spent", async () => {
  const ring = new KeyRing([entry('t', 'kt', { tokensPerMinute: 120 })]);
  const t = ring.identify('Bearer kt') as KeyEntry;
  assert.equal(ring.admit(t, 'm', 0), undefined);
  ring.charge(t, 150, 0); // a long answer overdraws the bucket
  assert.deepEqual(ring.admit(t, 'm', 1000), {
    status: 429,
    code: 'token_rate_limit_exceeded',
    message: 'this API key may use 120 tokens per minute',
    retryAfterS: 15, // -28 after 1 s: 29 tokens to refill at 2 per second
  });
  assert.equal(ring.admit(t, 'm', 16_000), undefined, 'back above zero');

  // Through the gateway: the charge comes from the usage in the answer.
  const upstream = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"filler":true,"usage":{"prompt_tokens":70,"completion_tokens":60}}');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    keys: new KeyRing([entry('t', 'kt', { tokensPerMinute: 120 })]),
    source: {
      backends: () => [
        { id: 'm/0', model: 'm', url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, ready: true },
      ],
      models: () => [{ id: 'm', replicas: 1, readyReplicas: 1 }],
      groups: () => [],
    },
  });
  await gateway.listen();
  const post = () =>
    fetch(`${gateway.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer kt' },
      body: JSON.stringify({ model: 'm', prompt: 'x' }),
    });
  try {
    assert.equal((await post()).status, 200);
    const spent = await post();
    assert.equal(spent.status, 429);
    assert.equal(((await spent.json()) as { error: { code: string } }).error.code, 'token_rate_limit_exceeded');
    assert.ok(Number(spent.headers.get('retry-after')) >= 1);
  } finally {
    await gateway.close();
    upstream.close();
  }
});

test('a key added right after the watch starts is picked up, even with the thread pool busy (it was missed before)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-keys-'));
  const file = join(dir, 'keys.yaml');
  addKey(file, { name: 'first' });
  // Every thread of libuv's pool busy for a while: a poll that looks from there looks late.
  const busy = Array.from(
    { length: 4 },
    () => new Promise((r) => pbkdf2('x', 'salt', 400_000, 32, 'sha256', () => r(undefined))),
  );
  const lines: string[] = [];
  const watched = watchKeyFile(file, (l) => lines.push(l));
  try {
    const key = addKey(file, { name: 'second' });
    await Promise.all(busy);
    for (let i = 0; i < 50 && isDenied(watched.ring.identify(`Bearer ${key}`)); i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal((watched.ring.identify(`Bearer ${key}`) as KeyEntry).name, 'second');
  } finally {
    watched.close();
  }
});
