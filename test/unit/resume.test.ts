// Continuing a stream on another replica: what is asked of the engine, what the client sees, and
// the request that goes on from where the dead replica stopped. Events are shaped as llama-server
// (tools/server/server-task.cpp) and vLLM send them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResumableStream } from '../../src/gateway/resume.js';

const sse = (...events: unknown[]) => events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('');
const body = (b: Buffer) => JSON.parse(b.toString()) as Record<string, unknown>;
/** The events a client parses out of what it was sent. */
const parsed = (text: string) =>
  text
    .split('\n\n')
    .filter((e) => e.startsWith('data: {'))
    .map((e) => JSON.parse(e.slice(6)) as Record<string, unknown>);

const llamaEvent = (text: string, tokens: number[], predicted: number, finish: string | null = null) => ({
  __verbose: { content: text, tokens, tokens_predicted: predicted, tokens_evaluated: 3 },
  choices: [{ text, index: 0, logprobs: null, finish_reason: finish }],
  created: 100,
  id: 'cmpl-first',
  object: 'text_completion',
});

test('llama-server completions: ids asked for and hidden from the client; the continuation appends them to the prompt', () => {
  const s = ResumableStream.for(
    '/v1/completions',
    { model: 'm', prompt: 'Once', max_tokens: 10, stream: true },
    'llama-server',
  )!;
  assert.deepEqual(body(s.body), {
    model: 'm',
    prompt: 'Once',
    max_tokens: 10,
    stream: true,
    return_tokens: true,
    verbose: true,
  });
  const out = s.relay(Buffer.from(sse(llamaEvent(' up', [701], 1), llamaEvent('on', [265], 2))), false);
  assert.deepEqual(
    parsed(out).map((e) => e.__verbose),
    [undefined, undefined],
  );
  assert.equal(parsed(out)[1]!.id, 'cmpl-first');

  const next = body(s.continuation()!);
  assert.deepEqual(next.prompt, ['Once', 701, 265]);
  assert.equal(next.max_tokens, 8);

  // The continuation's events: the first stream's id; usage counts the appended tokens as completion.
  const second = {
    ...llamaEvent(' a', [263], 1, 'length'),
    id: 'cmpl-second',
    created: 200,
    usage: { prompt_tokens: 5, completion_tokens: 8, total_tokens: 13 },
  };
  second.__verbose.tokens_evaluated = 5;
  const rest = parsed(s.relay(sse(second) + 'data: [DONE]\n\n', true));
  assert.equal(rest[0]!.id, 'cmpl-first');
  assert.equal(rest[0]!.created, 100);
  assert.deepEqual(rest[0]!.usage, { prompt_tokens: 3, completion_tokens: 10, total_tokens: 13 });
  assert.equal(s.continuation(), undefined, 'a finished stream has nothing to continue');
});

test('llama-server: a token whose id was never sent (an incomplete UTF-8 character) turns the rest into text', () => {
  const s = ResumableStream.for('/v1/completions', { prompt: [1, 2], max_tokens: 10, stream: true }, 'llama-server')!;
  s.relay(sse(llamaEvent('a', [97], 1), llamaEvent('é', [0xa9], 3), llamaEvent('b', [98], 4)), false);
  const next = body(s.continuation()!);
  assert.deepEqual(next.prompt, [1, 2, 97, 'éb']);
  assert.equal(next.max_tokens, 6);
});

test('vLLM completions: the prompt ids from the first event and each event’s ids make the continuation’s prompt', () => {
  const s = ResumableStream.for('/v1/completions', { prompt: 'Hi', max_tokens: 5, stream: true }, 'vllm')!;
  assert.equal(body(s.body).return_token_ids, true);
  const out = s.relay(
    sse(
      { id: 'c1', created: 1, prompt_token_ids: [9, 8], choices: [{ index: 0, text: 'x', token_ids: [120] }] },
      { id: 'c1', created: 1, choices: [{ index: 0, text: 'yz', token_ids: [121, 122] }] },
    ),
    false,
  );
  for (const e of parsed(out)) {
    assert.equal(e.prompt_token_ids, undefined);
    assert.equal((e.choices as Record<string, unknown>[])[0]!.token_ids, undefined);
  }
  const next = body(s.continuation()!);
  assert.deepEqual(next.prompt, [9, 8, 120, 121, 122]);
  assert.equal(next.max_tokens, 2);
});

// Found on a fresh clone: vLLM holds back the text of a token that ends inside a UTF-8 character
// (an event with ids and no text). A continuation whose prompt ended on such an id had vLLM's
// detokenizer start over and stream the whole prompt's text again.
test('vLLM: ids whose text was held back are left out of the continuation, which generates them again', () => {
  const s = ResumableStream.for('/v1/completions', { prompt: 'Hi', max_tokens: 6, stream: true }, 'vllm')!;
  s.relay(
    sse(
      { id: 'c1', created: 1, prompt_token_ids: [9, 8], choices: [{ index: 0, text: '', token_ids: [242] }] },
      { id: 'c1', created: 1, choices: [{ index: 0, text: '\ufffde', token_ids: [101] }] },
      { id: 'c1', created: 1, choices: [{ index: 0, text: '', token_ids: [147] }] },
      { id: 'c1', created: 1, choices: [{ index: 0, text: '', token_ids: [194] }] },
    ),
    false,
  );
  const next = body(s.continuation()!);
  assert.deepEqual(next.prompt, [9, 8, 242, 101]);
  assert.equal(next.max_tokens, 4);
});

test('the events go out as the engine wrote them, less only what the gateway asked for: nothing is re-serialized', () => {
  const llama = ResumableStream.for('/v1/completions', { prompt: 'Once', stream: true }, 'llama-server')!;
  // As llama-server writes them: its own number formats and member order (JSON.stringify would write 0.8 and 1).
  const event =
    '{"choices":[{"text":" up","index":0,"logprobs":null,"finish_reason":null}],"created":1,"temperature":0.800000011920929,"x":1.0,"id":"c"';
  const verbose =
    ',"__verbose":{"index":0,"content":" up \\"}{,\\"__verbose\\":","tokens":[701],"stop":false,"tokens_predicted":1,"tokens_evaluated":3}';
  assert.equal(llama.relay(`data: ${event}${verbose}}\n\n`, false), `data: ${event}}\n\n`);
  const vllm = ResumableStream.for('/v1/completions', { prompt: 'Hi', stream: true }, 'vllm')!;
  assert.equal(
    vllm.relay(
      'data: {"id":"c1","prompt_token_ids":[9,8],"choices":[{"index":0,"text":"x","token_ids":[120],"logprobs":null}],"n":1.0}\n\n',
      false,
    ),
    'data: {"id":"c1","choices":[{"index":0,"text":"x","logprobs":null}],"n":1.0}\n\n',
  );
  assert.equal(
    vllm.relay('data: {"choices":[{"token_ids":[121],"index":0,"text":"y"}],"id":"c1"}\n\n', false),
    'data: {"choices":[{"index":0,"text":"y"}],"id":"c1"}\n\n',
    'a first member goes with the comma after it',
  );
});

test('a client that asked for token ids itself keeps them', () => {
  const s = ResumableStream.for('/v1/completions', { prompt: 'Hi', stream: true, return_token_ids: true }, 'vllm')!;
  const [e] = parsed(s.relay(sse({ id: 'c', choices: [{ index: 0, text: 'x', token_ids: [1] }] }), false));
  assert.deepEqual((e!.choices as Record<string, unknown>[])[0]!.token_ids, [1]);
});

test('chat: the text so far becomes the assistant message to continue; the continuation does not repeat the role', () => {
  const messages = [{ role: 'user', content: 'Hi' }];
  const s = ResumableStream.for('/v1/chat/completions', { messages, max_completion_tokens: 9, stream: true })!;
  const delta = (d: Record<string, unknown>, id = 'chat-1') => ({ id, created: 5, choices: [{ index: 0, delta: d }] });
  s.relay(sse(delta({ role: 'assistant', content: null }), delta({ content: 'Hel' }), delta({ content: 'lo' })), false);
  const next = body(s.continuation()!);
  assert.deepEqual(next.messages, [...messages, { role: 'assistant', content: 'Hello' }]);
  assert.equal(next.continue_final_message, true);
  assert.equal(next.add_generation_prompt, false);
  assert.equal(next.max_completion_tokens, 7);
  const rest = parsed(
    s.relay(sse(delta({ role: 'assistant', content: null }, 'chat-2'), delta({ content: '!' }, 'chat-2')), true),
  );
  assert.deepEqual(
    rest.map((e) => [e.id, (e.choices as { delta: unknown }[])[0]!.delta]),
    [['chat-1', { content: '!' }]],
  );
});

test("chat: a client's own assistant prefix is continued as one message; a last line without its newline is rewritten too", () => {
  const messages = [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Well,' },
  ];
  const s = ResumableStream.for('/v1/chat/completions', { messages, stream: true }, 'llama-server')!;
  s.relay(sse({ id: 'c', choices: [{ index: 0, delta: { content: ' yes' } }], __verbose: { tokens: [1] } }), false);
  assert.deepEqual(body(s.continuation()!).messages, [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Well, yes' },
  ]);
  s.relay(
    `data: ${JSON.stringify({ id: 'd', choices: [{ index: 0, delta: { content: '!' } }], __verbose: {} })}`,
    true,
  );
  assert.deepEqual(JSON.parse(s.flush(true).slice(6)), { id: 'c', choices: [{ index: 0, delta: { content: '!' } }] });
});

test('what a dead replica left half-sent: a partial line is dropped, an open event is closed first', () => {
  const s = ResumableStream.for('/v1/completions', { prompt: 'p', stream: true })!;
  const event = JSON.stringify({ id: 'a', choices: [{ index: 0, text: 'x', finish_reason: null }] });
  const first = s.relay(`data: ${event}\ndata: {"id":"a","choi`, false);
  assert.equal(first, `data: ${event}\n`);
  assert.deepEqual(body(s.continuation()!).prompt, 'px');
  const second = s.relay(`data: ${event.replace('"a"', '"b"')}\n\n`, true);
  assert.ok(second.startsWith('\ndata: {"id":"a"'), JSON.stringify(second));
  assert.equal(parsed(first + second).length, 2);
});

test('only single-choice streams of completions or chat are resumable; a spent max_tokens is not continued', () => {
  const stream = { prompt: 'p', stream: true };
  assert.equal(ResumableStream.for('/v1/completions', { ...stream, stream: false }), undefined);
  assert.equal(ResumableStream.for('/v1/completions', { ...stream, n: 2 }), undefined);
  assert.equal(ResumableStream.for('/v1/completions', { ...stream, echo: true }), undefined);
  assert.equal(ResumableStream.for('/v1/completions', { ...stream, prompt: ['a', 'b'] }), undefined);
  assert.equal(ResumableStream.for('/v1/embeddings', stream), undefined);
  const s = ResumableStream.for('/v1/completions', { ...stream, max_tokens: 1 })!;
  s.relay(sse({ id: 'a', choices: [{ index: 0, text: 'x', finish_reason: null }] }), false);
  assert.equal(s.continuation(), undefined);
});
