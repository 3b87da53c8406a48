// The usage an engine reports at an answer's end, found without parsing the whole answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageTail } from '../../src/gateway/usage.js';

const tailOf = (...chunks: string[]) => {
  const tail = new UsageTail();
  for (const c of chunks) tail.push(Buffer.from(c));
  return tail;
};

test("a JSON body's usage, nested details and all", () => {
  const body = JSON.stringify({
    choices: [{ text: 'the "usage" of words: {"prompt_tokens": 99}' }],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } },
    timings: { n: 1 },
  });
  assert.deepEqual(tailOf(body).usage(), { prompt_tokens: 5, completion_tokens: 2 });
});

test("a stream's last event with usage, split across chunks, past events whose usage is null", () => {
  const event = (usage: unknown) => `data: ${JSON.stringify({ choices: [{ delta: { content: 'x' } }], usage })}\n\n`;
  const last = event({ prompt_tokens: 3, completion_tokens: 4 });
  const tail = tailOf(event(null), event(null), last.slice(0, 40), last.slice(40), event(null), 'data: [DONE]\n\n');
  assert.deepEqual(tail.usage(), { prompt_tokens: 3, completion_tokens: 4 });
});

test('embeddings: prompt tokens only; no usage, or a broken one, is none', () => {
  assert.deepEqual(tailOf('{"data":[],"usage" : {"prompt_tokens":8,"total_tokens":8}}').usage(), { prompt_tokens: 8 });
  assert.equal(tailOf('{"choices":[]}').usage(), undefined);
  assert.equal(tailOf('{"usage":{"prompt_tokens":"8"}}').usage(), undefined);
  assert.equal(tailOf('{"usage":{"prompt_tokens":8').usage(), undefined);
  assert.equal(tailOf('{"usage":{"prompt_tokens":8,"completion_tokens":null}}').usage(), undefined);
});

test('counts are read as JSON writes them: whitespace around the colon; a fraction, a sign or an exponent is none', () => {
  const pretty = JSON.stringify({ usage: { prompt_tokens: 12, completion_tokens: 30 } }, null, 2);
  assert.deepEqual(tailOf(pretty).usage(), { prompt_tokens: 12, completion_tokens: 30 });
  assert.deepEqual(tailOf('{"usage":{"prompt_tokens" :\t7 ,"completion_tokens":0}}').usage(), {
    prompt_tokens: 7,
    completion_tokens: 0,
  });
  for (const bad of ['1.5', '-1', '1e3', '"1"', 'true'])
    assert.equal(tailOf(`{"usage":{"prompt_tokens":${bad},"completion_tokens":1}}`).usage(), undefined, bad);
  // A key's name inside a string of the usage is not the key.
  const quoted = JSON.stringify({ usage: { note: '"prompt_tokens":99', prompt_tokens: 4, completion_tokens: 1 } });
  assert.deepEqual(tailOf(quoted).usage(), { prompt_tokens: 4, completion_tokens: 1 });
});

test('only the last 64 KiB are kept', () => {
  const tail = tailOf('{"usage":{"prompt_tokens":1}}', 'x'.repeat(70 * 1024));
  assert.equal(tail.usage(), undefined);
});

test('a usage with braces in a string is read whole, and its end found past them', () => {
  const usage = { note: 'a } and a { and }}', prompt_tokens: 5, completion_tokens: 2 };
  assert.deepEqual(tailOf(JSON.stringify({ usage, timings: { n: 1 } })).usage(), {
    prompt_tokens: 5,
    completion_tokens: 2,
  });
  const unbalanced = { note: '{{', prompt_tokens: 6, completion_tokens: 1 };
  assert.deepEqual(tailOf(JSON.stringify({ usage: unbalanced, id: 'x' })).usage(), {
    prompt_tokens: 6,
    completion_tokens: 1,
  });
  // A count past the usage object (in the answer's next member) is not the usage's.
  assert.equal(tailOf('{"usage":{"total_tokens":3},"timings":{"prompt_tokens":3}}').usage(), undefined);
});
