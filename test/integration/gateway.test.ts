// The gateway in front of real groups, driven by the official `openai` client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { freePort } from '../../src/util/net.js';
import { Gateway } from '../../src/gateway/server.js';
import type { Backend, ModelEntry } from '../../src/gateway/backends.js';
import {
  allReady,
  complete,
  isAlive,
  leaderUrl,
  readLog,
  readStream,
  scrape,
  startServices,
  tinySpec,
  BATCH_INVARIANT,
  waitFor,
  type Running,
  localGateway,
  until,
} from '../helpers.js';

let running: Running;
let gateway: Gateway;
let client: OpenAI;
const MODEL = 'pair-model';

before(async () => {
  running = await startServices([
    tinySpec('pair', { parallelism: { nodes: 2 }, replicas: 2, engine: { type: 'llamacpp', args: BATCH_INVARIANT } }),
    tinySpec('emb', {
      model: { servedName: 'emb-model', source: 'tandem://tiny-llama', task: 'embed' },
      parallelism: { nodes: 2 },
    }),
  ]);
  gateway = localGateway(running.reconciler, { host: '127.0.0.1', port: 0, bodyLimit: 64 * 1024 });
  await gateway.listen();
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
});

after(async () => {
  await gateway?.close();
  await running?.stop();
  for (const pid of running?.pids ?? []) assert.equal(isAlive(pid), false);
});

test('models.list shows the served model and its ready replicas', async () => {
  const models = await client.models.list();
  const entry = models.data.find((m) => m.id === MODEL) as unknown as { ready_replicas: number; replicas: number };
  assert.ok(entry, JSON.stringify(models.data));
  assert.equal(entry.replicas, 2);
  assert.equal(entry.ready_replicas, 2);
});

test('chat and completions, plain and streamed: the stream carries the same greedy text', async () => {
  const chat = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 12,
    temperature: 0,
  });
  const chatText = chat.choices[0]!.message.content ?? '';
  assert.ok(chatText.length > 0);
  let streamed = '';
  let chunks = 0;
  for await (const chunk of await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 12,
    temperature: 0,
    stream: true,
  })) {
    streamed += chunk.choices[0]?.delta?.content ?? '';
    chunks++;
  }
  assert.equal(streamed, chatText);
  assert.ok(chunks >= 12, `expected one chunk per token, got ${chunks}`);

  const completion = await client.completions.create({
    model: MODEL,
    prompt: 'Hello world',
    max_tokens: 12,
    temperature: 0,
  });
  let streamedCompletion = '';
  for await (const chunk of await client.completions.create({
    model: MODEL,
    prompt: 'Hello world',
    max_tokens: 12,
    temperature: 0,
    stream: true,
  })) {
    streamedCompletion += chunk.choices[0]?.text ?? '';
  }
  assert.equal(streamedCompletion, completion.choices[0]!.text);
});

test('errors come in the OpenAI shape: unknown model 404, bad JSON 400, oversize body 413', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'Hi' }] }),
    (err: unknown) => {
      assert.ok(err instanceof OpenAI.NotFoundError);
      assert.equal(err.code, 'model_not_found');
      return true;
    },
  );
  await assert.rejects(client.completions.create({ model: MODEL, prompt: 'x'.repeat(100 * 1024) }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.APIError);
    assert.equal(err.status, 413);
    assert.equal(err.code, 'request_too_large');
    return true;
  });
  const res = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"model": ',
  });
  assert.equal(res.status, 400);
  const body = (await res.json()) as { error: { code: string; type: string; message: string; param: null } };
  assert.equal(body.error.code, 'invalid_json');
  assert.equal(body.error.type, 'invalid_request_error');
  const missing = await fetch(`${gateway.url}/v1/completions`, { method: 'POST', body: '{"prompt": "x"}' });
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'model_not_found');
});

test('32 concurrent streaming requests all complete, spread over both replicas', async () => {
  const served = async (replica: string) =>
    (await scrape(gateway.url))[`tandem_gateway_requests_total{model="${MODEL}",replica="${replica}",status="200"}`] ??
    0;
  const before = [await served('pair/0'), await served('pair/1')];
  const texts = await Promise.all(
    Array.from({ length: 32 }, async (_, i) => {
      let text = '';
      for await (const chunk of await client.completions.create({
        model: MODEL,
        prompt: `Request ${i}`,
        max_tokens: 8,
        temperature: 0,
        stream: true,
      })) {
        text += chunk.choices[0]?.text ?? '';
      }
      return text;
    }),
  );
  assert.equal(texts.length, 32);
  for (const t of texts) assert.ok(t.length > 0);
  const counts = [(await served('pair/0')) - before[0]!, (await served('pair/1')) - before[1]!];
  assert.equal(counts[0]! + counts[1]!, 32);
  // Each replica takes up to admitted(4 slots) = 16 at once, least outstanding first: both take a share.
  assert.ok(counts[0]! >= 6 && counts[1]! >= 6, `uneven spread: ${counts}`);
});

test('a worker killed mid-stream: the stream goes on on the other replica, whole, and the group is recreated', async () => {
  const request = { model: MODEL, prompt: 'A long story', max_tokens: 200, temperature: 0 };
  const uninterrupted = (await client.completions.create(request)).choices[0]!.text;
  const failovers = () =>
    scrape(gateway.url).then((m) => m[`tandem_gateway_stream_failovers_total{model="${MODEL}"}`] ?? 0);
  const before = await failovers();
  const { data: stream, response } = await client.completions.create({ ...request, stream: true }).withResponse();
  const backend = response.headers.get('x-tandem-backend')!;
  const replica = Number(backend.split('/')[1]);
  const group = running.reconciler.snapshot()[0]!.groups.find((g) => g.replica === replica)!;
  const { text, finish } = await readStream(stream, (n) => {
    if (n === 0) process.kill(group.members[1]!.pid!, 'SIGKILL');
  });
  assert.equal(finish, 'length');
  assert.equal(text, uninterrupted, 'greedy: the continued stream says what the uninterrupted one does');
  assert.equal(await failovers(), before + 1, 'the stream was continued once');

  await waitFor(running.reconciler, allReady, 60_000);
  assert.equal(running.reconciler.snapshot()[0]!.groups[replica]!.restarts, 1);

  // Chat goes on from its text (the prompt is the engine's rendering of the messages).
  const chat = { model: MODEL, messages: [{ role: 'user' as const, content: 'Tell me' }], max_tokens: 200 };
  const chatStream = await client.chat.completions.create({ ...chat, temperature: 0, stream: true }).withResponse();
  const chatGroup = running.reconciler
    .snapshot()[0]!
    .groups.find((g) => `pair/${g.replica}` === chatStream.response.headers.get('x-tandem-backend'))!;
  const { text: chatText, finish: chatFinish } = await readStream(chatStream.data, (n) => {
    if (n === 1) process.kill(chatGroup.members[1]!.pid!, 'SIGKILL');
  });
  assert.equal(chatFinish, 'length');
  assert.ok(chatText.length > 0);
  assert.equal(await failovers(), before + 2);
  await waitFor(running.reconciler, allReady, 60_000);
});

test('a leader killed mid-stream: the stream goes on on the other replica, whole, and the group is recreated', async () => {
  const request = { model: MODEL, prompt: 'Another long story', max_tokens: 200, temperature: 0 };
  // The uninterrupted answer from each replica's own leader: the stream may start on either.
  const answers = await Promise.all([0, 1].map((r) => complete(leaderUrl(running, 'pair', r), request.prompt, 200)));
  const uninterrupted = answers[0]!;
  assert.equal(answers[1], uninterrupted, 'the replicas agree');
  const { data: stream, response } = await client.completions.create({ ...request, stream: true }).withResponse();
  const replica = Number(response.headers.get('x-tandem-backend')!.split('/')[1]);
  const group = () => running.reconciler.snapshot()[0]!.groups.find((g) => g.replica === replica)!;
  const restarts = group().restarts;
  const { text, finish } = await readStream(stream, (n) => {
    if (n === 1) process.kill(group().members[0]!.pid!, 'SIGKILL');
  });
  assert.equal(finish, 'length');
  assert.equal(text, uninterrupted, 'the continued stream says what the uninterrupted one does');
  await waitFor(running.reconciler, allReady, 60_000);
  assert.equal(group().restarts, restarts + 1, 'recreated whole, once');
});

test('a client that disconnects cancels its generation upstream', async () => {
  const stream = await client.completions.create({
    model: MODEL,
    prompt: 'Cancel me',
    max_tokens: 4000,
    temperature: 0,
    stream: true,
  });
  let chunks = 0;
  for await (const _ of stream) {
    if (++chunks === 3) break; // leaving the loop aborts the HTTP request
  }
  const deadline = Date.now() + 5000;
  let log = '';
  while (Date.now() < deadline) {
    log = [0, 1].map((r) => readLog(running, 'pair', r, 0)).join('\n');
    if (/cancel task/.test(log)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(log, /cancel task/);
  const stopped = [...log.matchAll(/stop processing: n_tokens = (\d+)/g)].map((m) => Number(m[1]));
  assert.ok(
    stopped.every((n) => n < 4000),
    `a generation ran to the end: ${stopped}`,
  );
});

test('a replica that refuses connections is retried once on another; when all fail, 502; none ready, 503', async () => {
  const leader = running.reconciler.snapshot()[0]!.groups[0]!.leader;
  const real: Backend = { id: 'real', model: 'm', url: `http://${leader.host}:${leader.port}`, ready: true };
  const dead = async (id: string): Promise<Backend> => ({
    id,
    model: 'm',
    url: `http://127.0.0.1:${await freePort()}`,
    ready: true,
  });
  const models: ModelEntry[] = [{ id: 'm', replicas: 2, readyReplicas: 2 }];
  const post = (url: string) =>
    fetch(`${url}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'm', prompt: 'Hi', max_tokens: 2 }),
    });

  for (const [backends, status, code] of [
    [[await dead('dead'), real], 200, undefined],
    [[await dead('dead1'), await dead('dead2')], 502, 'upstream_failed'],
    [[{ ...real, ready: false }], 503, 'no_ready_replica'],
  ] as const) {
    const g = new Gateway({
      host: '127.0.0.1',
      port: 0,
      source: { backends: () => [...backends], models: () => models, groups: () => [] },
    });
    await g.listen();
    try {
      const res = await post(g.url);
      assert.equal(res.status, status);
      if (status === 200) assert.equal(res.headers.get('x-tandem-backend'), 'real');
      else assert.equal(((await res.json()) as { error: { code: string } }).error.code, code);
      if (status === 503) assert.equal(res.headers.get('retry-after'), '2');
    } finally {
      await g.close();
    }
  }
});

test('with no replica ready, a request waits while a group is on its way to Ready (a rollout handing over), not when all failed', async () => {
  const leader = running.reconciler.snapshot()[0]!.groups[0]!.leader;
  const backend: Backend = { id: 's/0', model: 'm', url: `http://${leader.host}:${leader.port}`, ready: false };
  const models: ModelEntry[] = [{ id: 'm', replicas: 1, readyReplicas: 0 }];
  let phase = 'Updating';
  const g = new Gateway({
    host: '127.0.0.1',
    port: 0,
    source: {
      backends: () => [backend],
      models: () => models,
      groups: () => [{ service: 's', model: 'm', replica: 0, phase, restarts: 0 }],
    },
  });
  await g.listen();
  try {
    const post = () =>
      fetch(`${g.url}/v1/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', prompt: 'Hi', max_tokens: 2 }),
      });
    let answered = false;
    const waiting = post().finally(() => (answered = true));
    await until('the request queued', 10_000, async () => (g.load('m').queued === 1 || answered ? true : undefined));
    assert.equal(answered, false, 'the request waits for the group, not refused at once');
    backend.ready = true;
    assert.equal((await waiting).status, 200);
    backend.ready = false;
    phase = 'Failed';
    const refused = await post();
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'no_ready_replica');
  } finally {
    await g.close();
  }
});

test('embeddings through the official client: a list of inputs batched, floats and base64 alike, usage counted', async () => {
  const input = ['The capital of France', 'is Paris', 'and of Italy, Rome'];
  const floats = await client.embeddings.create({ model: 'emb-model', input, encoding_format: 'float' });
  assert.deepEqual(
    floats.data.map((d) => d.index),
    [0, 1, 2],
  );
  const width = floats.data[0]!.embedding.length;
  assert.ok(width > 0 && floats.data.every((d) => d.embedding.length === width && d.embedding.every(Number.isFinite)));
  assert.notDeepEqual(floats.data[0]!.embedding, floats.data[1]!.embedding, 'each input its own vector');
  assert.ok(floats.usage.prompt_tokens > 0);
  // The client asks for base64 by default and decodes it: the same vectors, as float32.
  const decoded = await client.embeddings.create({ model: 'emb-model', input });
  for (const [i, d] of decoded.data.entries()) {
    const expected = floats.data[i]!.embedding;
    assert.ok(d.embedding.every((v, j) => Math.abs(v - expected[j]!) < 1e-6));
  }
  const one = await client.embeddings.create({ model: 'emb-model', input: 'is Paris', encoding_format: 'float' });
  assert.ok(
    one.data[0]!.embedding.every((v, j) => Math.abs(v - floats.data[1]!.embedding[j]!) < 1e-4),
    'batched alike',
  );
  const metrics = await scrape(gateway.url);
  assert.ok(
    (metrics['tandem_gateway_tokens_total{model="emb-model",kind="prompt"}'] ?? 0) >= floats.usage.prompt_tokens,
  );
});

test('the OpenAI surface through the official client: JSON mode, tools, logprobs, usage in streams', async () => {
  const messages = [{ role: 'user' as const, content: 'Give me JSON' }];
  const json = await client.chat.completions.create({
    model: MODEL,
    messages,
    max_tokens: 8,
    response_format: { type: 'json_object' },
  });
  assert.match(json.choices[0]!.message.content ?? '', /^\s*\{/, 'JSON mode constrains the output to JSON');

  const tools = await client.chat.completions.create({
    model: MODEL,
    messages,
    max_tokens: 8,
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }],
  });
  assert.ok(tools.choices[0]!.finish_reason, 'a request with tools is served');

  const logprobs = await client.chat.completions.create({
    model: MODEL,
    messages,
    max_tokens: 3,
    logprobs: true,
    top_logprobs: 2,
  });
  const content = logprobs.choices[0]!.logprobs?.content ?? [];
  assert.equal(content.length, 3);
  assert.equal(content[0]!.top_logprobs.length, 2);

  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of await client.chat.completions.create({
    model: MODEL,
    messages,
    max_tokens: 4,
    stream: true,
    stream_options: { include_usage: true },
  })) {
    usage = chunk.usage ?? usage;
  }
  assert.equal(usage?.completion_tokens, 4);

  // A model served for generation refuses embeddings itself (llama-server without --embeddings).
  await assert.rejects(client.embeddings.create({ model: MODEL, input: 'x' }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.APIError && err.status !== undefined && err.status >= 400 && err.status < 600);
    assert.match(err.message, /embedding/i);
    return true;
  });
});

test('request ids are returned and passed on; streams feed the token latency histograms; tokens in and out are counted', async () => {
  const ttft = `tandem_gateway_time_to_first_token_seconds_count{model="${MODEL}"}`;
  const itl = `tandem_gateway_inter_token_latency_seconds_count{model="${MODEL}"}`;
  const before = await scrape(gateway.url);
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${gateway.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': `trace-${i}` },
      body: JSON.stringify({ model: MODEL, prompt: 'Hello', max_tokens: 12, temperature: 0, stream: true }),
    });
    assert.equal(res.headers.get('x-request-id'), `trace-${i}`);
    await res.text();
  }
  const after = await scrape(gateway.url);
  assert.equal((after[ttft] ?? 0) - (before[ttft] ?? 0), 3, 'one first token per stream');
  assert.ok((after[itl] ?? 0) - (before[itl] ?? 0) >= 3 * 11, 'a gap between each of 12 tokens');
  // Each group: one phase series at 1, its restarts.
  for (const replica of ['0', '1']) {
    const phases = Object.entries(after).filter(
      ([k, v]) => k.startsWith(`tandem_group_phase{service="pair",replica="${replica}"`) && v === 1,
    );
    assert.equal(phases.length, 1, JSON.stringify(phases));
    assert.ok(after[`tandem_group_restarts{service="pair",replica="${replica}"}`]! >= 0);
  }
  // Tokens in and out, as the engine's usage reports them: a plain answer, and a stream asking for usage.
  const tokens = (m: Record<string, number>, kind: string) =>
    m[`tandem_gateway_tokens_total{model="${MODEL}",kind="${kind}"}`] ?? 0;
  const plain = await client.completions.create({ model: MODEL, prompt: 'Hello', max_tokens: 5, temperature: 0 });
  let streamedUsage: { prompt_tokens: number; completion_tokens: number } | undefined;
  for await (const chunk of await client.completions.create({
    model: MODEL,
    prompt: 'Hello',
    max_tokens: 7,
    stream: true,
    stream_options: { include_usage: true },
  })) {
    if (chunk.usage) streamedUsage = chunk.usage;
  }
  const counted = await scrape(gateway.url);
  assert.ok(streamedUsage, 'the engine reported usage at the stream end');
  assert.equal(
    tokens(counted, 'completion') - tokens(after, 'completion'),
    plain.usage!.completion_tokens + streamedUsage.completion_tokens,
  );
  assert.equal(
    tokens(counted, 'prompt') - tokens(after, 'prompt'),
    plain.usage!.prompt_tokens + streamedUsage.prompt_tokens,
  );
  const made = await fetch(`${gateway.url}/v1/models`);
  assert.match(made.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, 'one is made when none is given');
});
