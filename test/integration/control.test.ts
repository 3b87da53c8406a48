// Changing a running `tandem up` through its control API, as a user does: `tandem apply` and
// `tandem delete` against real llama.cpp groups, under streaming load through the official client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { stringify } from 'yaml';
import { addKey } from '../../src/gateway/keys.js';
import { scrape, streamingLoad, tinySpec, until } from '../helpers.js';
import type { ServiceRecord } from '../../src/core/control.js';
import { cli, controlApi, openApiChecker, service, specFile, tandem, up } from '../tandem-up.js';

const PROMPT = 'The capital of France is';

const allReady = (s: ServiceRecord | undefined, replicas: number) =>
  s?.status?.groups.length === replicas && s.status.groups.every((g) => g.phase === 'Ready');

test('tandem apply on a running tandem up: a new service starts; changed engine args roll its groups one at a time, each drained first, under streaming load: no request failed, no stream cut', async () => {
  const u = await up();
  try {
    const file = specFile(u, 'chat', { replicas: 2 });
    const created = cli(u, ['apply', file]);
    assert.equal(created.status, 0, created.stderr);
    assert.equal(created.stdout, 'chat: created\n');
    await until(
      '2 Ready groups',
      60_000,
      async () => (allReady(await service(u, 'chat'), 2) ? true : undefined),
      u.log,
    );
    const before = (await service(u, 'chat'))!.status!;

    // Two clients streaming back to back for as long as the rollout lasts (bounded in time and count).
    const client = new OpenAI({ baseURL: `${u.gateway}/v1`, apiKey: 'none', maxRetries: 0 });
    const load = streamingLoad(client, 'chat-model');
    let outcomes: string[];
    let minReady = 2;
    try {
      writeFileSync(
        file,
        stringify(
          tinySpec('chat', { replicas: 2, engine: { type: 'llamacpp', args: ['--ctx-size', '512'] } } as never),
        ),
      );
      const rolled = cli(u, ['apply', file]);
      assert.equal(rolled.status, 0, rolled.stderr);
      assert.equal(rolled.stdout, 'chat: rolling\n');
      await until(
        'both groups on the new template and Ready',
        120_000,
        async () => {
          const s = await service(u, 'chat');
          minReady = Math.min(minReady, s?.status?.groups.filter((g) => g.phase === 'Ready').length ?? 0);
          const current = s?.status?.groups.every((g) => g.templateHash === s.status!.templateHash);
          return current && allReady(s, 2) ? s : undefined;
        },
        u.log,
      );
    } finally {
      outcomes = await load.stop();
    }
    const after = (await service(u, 'chat'))!.status!;
    assert.notEqual(after.templateHash, before.templateHash);
    assert.ok(minReady >= 1, 'one group at a time (spec.rollout.maxUnavailable 1)');
    const failed = outcomes.filter((o) => o !== 'ok');
    assert.ok(outcomes.length > 0);
    assert.deepEqual(failed, [], `${failed.length} of ${outcomes.length} requests failed`);
    // Drained first: every stream finished on the group it started on, none was continued elsewhere.
    const metrics = await scrape(u.gateway);
    const continued = Object.entries(metrics).filter(([k]) => k.startsWith('tandem_gateway_stream_failovers_total'));
    assert.deepEqual(
      continued.filter(([, v]) => v > 0),
      [],
      'no stream had to continue on another replica',
    );
    const events = (await (await fetch(`${u.gateway}/api/v1/events`)).json()) as {
      items: { reason: string; replica?: number }[];
    };
    const rolls = events.items.filter((e) => e.reason === 'GroupRolling').map((e) => e.replica);
    assert.deepEqual([...new Set(rolls)].sort(), [0, 1], 'each group rolled');

    // A change outside the template recreates nothing.
    writeFileSync(
      file,
      stringify(
        tinySpec('chat', {
          replicas: 2,
          engine: { type: 'llamacpp', args: ['--ctx-size', '512'] },
          startupTimeout: '7m',
        } as never),
      ),
    );
    const policy = cli(u, ['apply', file]);
    assert.equal(policy.stdout, 'chat: updated\n', policy.stderr);
    const pids = (s: typeof after) => s.groups.flatMap((g) => g.members.map((m) => m.pid)).sort();
    assert.deepEqual(pids((await service(u, 'chat'))!.status!), pids(after));
  } finally {
    await u.stop();
  }
});

test('an invalid spec is refused whole, with the messages of validate, and nothing running changes', async () => {
  const u = await up();
  try {
    const good = specFile(u, 'keep', {});
    assert.equal(cli(u, ['apply', good]).status, 0);
    await until('keep Ready', 60_000, async () => (allReady(await service(u, 'keep'), 1) ? true : undefined), u.log);
    const before = (await service(u, 'keep'))!;
    // One good document and one bad one in the same apply: neither is taken.
    const both = join(u.state, 'both.yaml');
    writeFileSync(
      both,
      `${stringify(tinySpec('keep', { replicas: 3 } as never))}---\n${stringify(tinySpec('other', { replicas: -1 } as never))}`,
    );
    const refused = cli(u, ['apply', both]);
    const validate = cli(u, ['validate', both]);
    assert.equal(refused.status, 2);
    assert.equal(refused.stderr, validate.stderr);
    assert.match(refused.stderr, /spec\.replicas: must be an integer from 0 to 1000/);
    // Through the API directly, problems come back as a 422 listing each.
    const res = await fetch(`${u.gateway}/api/v1/services`, {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: readFileSync(both),
    });
    assert.equal(res.status, 422);
    const body = (await res.json()) as { error: { problems: string[] } };
    assert.deepEqual(body.error.problems, ['[1]: spec.replicas: must be an integer from 0 to 1000']);
    const after = (await service(u, 'keep'))!;
    assert.equal(after.status!.replicas, 1);
    assert.deepEqual(after.spec, before.spec);
    assert.equal(await service(u, 'other'), undefined);
  } finally {
    await u.stop();
  }
});

test('with API keys, the control API takes only an admin key; tandem delete drains a stream, then stops the service', async () => {
  const keys = join(mkdtempSync(join(tmpdir(), 'tandem-control-keys-')), 'keys.yaml');
  const user = addKey(keys, { name: 'user' });
  const admin = addKey(keys, { name: 'ops', admin: true });
  // The drain waits as long as the stream takes: on a busy machine 2,000 tokens took longer than
  // the default 30 s, and the drain cut the stream this test requires whole. (There, past 10 s of
  // draining, it was also cut as unresponsive: its engine was no longer asked once the replica left
  // the list, and what it had last said aged; unit test in gateway.test.ts.)
  const u = await up(['--api-keys', keys, '--drain-timeout', '10m']);
  try {
    const file = specFile(u, 'chat', {});
    const anonymous = await fetch(`${u.gateway}/api/v1/services`);
    assert.equal(anonymous.status, 401);
    const notAdmin = cli(u, ['apply', file], user);
    assert.equal(notAdmin.status, 1);
    assert.match(notAdmin.stderr, /HTTP 403.*needs the admin scope/);
    assert.equal(cli(u, ['apply', file], admin).status, 0);
    await until(
      'chat Ready',
      60_000,
      async () => (allReady(await service(u, 'chat', admin), 1) ? true : undefined),
      u.log,
    );

    // A stream in flight when the service is deleted finishes whole; a new request finds no model.
    const client = new OpenAI({ baseURL: `${u.gateway}/v1`, apiKey: user, maxRetries: 0 });
    let started!: () => void;
    const first = new Promise<void>((r) => (started = r));
    let streamDone = false;
    const streaming = (async () => {
      const stream = await client.completions.create({
        model: 'chat-model',
        prompt: PROMPT,
        // Long enough that the deletion below is still draining it when `tandem delete` asks.
        max_tokens: 2000,
        temperature: 0,
        stream: true,
        ignore_eos: true,
      } as OpenAI.CompletionCreateParamsStreaming);
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        started();
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      streamDone = true;
      return { finish };
    })();
    // The deletion starts at the stream's first token, while its engine is still generating.
    await first;
    const accepted = await fetch(`${u.gateway}/api/v1/services/chat`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(accepted.status, 202);
    assert.equal(streamDone, false, 'the stream is still in flight when the deletion begins');
    // `tandem delete` of a service being deleted waits for it to be gone.
    let cliErr = '';
    let accepting!: () => void;
    const acceptedByCli = new Promise<void>((resolve) => (accepting = resolve));
    const deleting = new Promise<ReturnType<typeof cli>>((resolve) => {
      const child = spawn(process.execPath, [tandem, 'delete', 'chat'], {
        env: { ...process.env, TANDEM_STATE: u.state, TANDEM_API_KEY: admin },
      });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => {
        cliErr += d.toString();
        if (cliErr.includes('taking no new request')) accepting();
      });
      child.on('exit', (status) => {
        accepting();
        resolve({ status, stdout } as ReturnType<typeof cli>);
      });
    });
    await acceptedByCli;
    assert.equal(streamDone, false, `the stream is still draining when tandem delete asks\n${cliErr}`);
    assert.deepEqual((await client.models.list()).data, [], 'the model is gone from /v1/models at once');
    await assert.rejects(
      client.completions.create({ model: 'chat-model', prompt: PROMPT, max_tokens: 4 }),
      (err: { status?: number }) => err.status === 404,
    );
    const { finish } = await streaming;
    assert.equal(finish, 'length', 'the stream in flight finished whole');
    const deleted = await deleting;
    assert.equal(deleted.status, 0, cliErr);
    assert.equal(deleted.stdout, 'chat: deleted\n');
    assert.equal(await service(u, 'chat', admin), undefined);
  } finally {
    await u.stop();
  }
});

test("the OpenAPI description (from the validator's schema) describes the API's own answers", async () => {
  const u = await up();
  try {
    const api = controlApi(u.gateway);
    const { check, checked, doc } = await openApiChecker(api);
    const spec = tinySpec('chat', {});
    check('/services', 'post', await api('POST', '/services', spec));
    check(
      '/services',
      'post',
      await api('POST', '/services', stringify(tinySpec('bad', { replicas: -1 } as never)), 'application/yaml'),
    );
    check('/services', 'post', await api('POST', '/services', 'a: [', 'application/yaml'));
    await until('chat Ready', 60_000, async () => (allReady(await service(u, 'chat'), 1) ? true : undefined), u.log);
    check('/services', 'get', await api('GET', '/services'));
    check('/services/{name}', 'get', await api('GET', '/services/chat'));
    check('/services/{name}', 'get', await api('GET', '/services/nope'));
    check('/services/{name}/scale', 'put', await api('PUT', '/services/chat/scale', { replicas: 2 }));
    check('/services/{name}/scale', 'put', await api('PUT', '/services/chat/scale', { replicas: 'two' }));
    check('/events', 'get', await api('GET', '/events'));
    const history = await until('a point of history', 10_000, async () => {
      const answer = await api('GET', '/history');
      return (answer.body as { models: Record<string, unknown[]> }).models['chat-model']?.length ? answer : undefined;
    });
    check('/history', 'get', history);
    check('/services/{name}/logs', 'get', await api('GET', '/services/chat/logs?member=5'));
    check('/services/{name}', 'delete', await api('DELETE', '/services/chat'));
    check('/openapi.json', 'get', await api('GET', '/openapi.json'));
    assert.equal(checked.length, 13);
    // The body's schema is the validator's own: the CRD's and `tandem schema`'s.
    const schema = JSON.parse(spawnSync(process.execPath, [tandem, 'schema'], { encoding: 'utf8' }).stdout) as Record<
      string,
      unknown
    >;
    delete schema.$schema;
    assert.deepEqual(
      doc.components.schemas && (doc.components.schemas as Record<string, unknown>).InferenceService,
      schema,
    );
  } finally {
    await u.stop();
  }
});

test("a member's log through the control API: its last lines, then each new one as it is written", async () => {
  const u = await up();
  try {
    assert.equal(cli(u, ['apply', specFile(u, 'chat', {})]).status, 0);
    await until('chat Ready', 60_000, async () => (allReady(await service(u, 'chat'), 1) ? true : undefined), u.log);
    const events = (text: string) =>
      text
        .split('\n\n')
        .filter(Boolean)
        .map((e) => e.replace(/^data: /, ''));
    const tail = await fetch(`${u.gateway}/api/v1/services/chat/logs?tail=3`);
    assert.equal(tail.status, 200);
    assert.equal(tail.headers.get('content-type'), 'text/event-stream');
    assert.equal(events(await tail.text()).length, 3);

    // Following: a request the leader serves shows up in its log while the stream is open.
    const gone = new AbortController();
    const follow = await fetch(`${u.gateway}/api/v1/services/chat/logs?tail=0&follow=true`, {
      signal: AbortSignal.any([gone.signal, AbortSignal.timeout(20_000)]), // a read never waits past it
    });
    const reader = follow.body!.getReader();
    let seen = '';
    const served = fetch(`${u.gateway}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat-model', prompt: PROMPT, max_tokens: 4 }),
    });
    assert.equal((await served).status, 200);
    // llama-server logs each task it serves ("slot ... | task N | ...").
    while (!/\| task \d+ \|/.test(seen)) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) break;
      seen += Buffer.from(value!).toString('utf8');
    }
    assert.match(seen, /^data: .*\| task \d+ \|/m, `the request never showed in the followed log:\n${seen}`);
    gone.abort();
    const missing = await fetch(`${u.gateway}/api/v1/services/chat/logs?replica=7`);
    assert.equal(missing.status, 404);
  } finally {
    await u.stop();
  }
});
