// A replica is unresponsive when its flowing streams get nothing from it for the bound; a stream
// still waiting for its first byte (a long prefill) is not judged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Liveness, slotsProgress } from '../../src/gateway/liveness.js';

test('silent with streams flowing: unresponsive after the bound, not before; prefill and idle are not judged', () => {
  const l = new Liveness(10_000);
  assert.deepEqual(l.unresponsive(1_000_000), [], 'nothing in flight');
  l.flowing('a', 0);
  l.flowing('b', 0);
  l.progressed('a', 5_000);
  assert.deepEqual(l.unresponsive(9_999), []);
  assert.deepEqual(l.unresponsive(10_000), [{ id: 'b', silentMs: 10_000 }]);
  assert.deepEqual(l.unresponsive(15_000), [
    { id: 'a', silentMs: 10_000 },
    { id: 'b', silentMs: 15_000 },
  ]);
  l.ended('a');
  l.ended('b');
  assert.deepEqual(l.unresponsive(60_000), [], 'streams ended: nothing to judge');
  l.progressed('c', 0); // a byte of a replica with no flowing stream (a whole answer): not tracked
  assert.deepEqual(l.unresponsive(60_000), []);
});

test('a replica flowing again after a quiet spell is judged from its new first byte', () => {
  const l = new Liveness(10_000);
  l.flowing('a', 0);
  l.ended('a');
  l.flowing('a', 50_000);
  assert.deepEqual(l.unresponsive(55_000), []);
  l.flowing('a', 56_000); // a second stream: both ended before it is quiet again
  l.ended('a');
  assert.deepEqual(l.unresponsive(66_000), [{ id: 'a', silentMs: 10_000 }]);
});

test("an engine working on requests whose progress has not moved for the bound: llama-server's slots", () => {
  const l = new Liveness(10_000);
  const slot = (prompt: number, decoded: number, processing = true) => ({
    id: 3,
    is_processing: processing,
    n_prompt_tokens_processed: prompt,
    next_token: [{ n_decoded: decoded }],
  });
  assert.equal(slotsProgress([slot(0, 0, false)]), undefined, 'idle');
  assert.equal(slotsProgress({ error: 'x' }), undefined);
  l.engineSays('a', slotsProgress([slot(0, 0)]), 0);
  l.engineSays('a', slotsProgress([slot(2048, 0)]), 6_000); // a long prefill moves, batch by batch
  l.engineSays('a', slotsProgress([slot(2048, 0)]), 15_000);
  assert.deepEqual(l.unresponsive(15_000), []);
  assert.deepEqual(l.unresponsive(16_000), [{ id: 'a', silentMs: 10_000 }], 'stuck for the bound');
  l.engineSays('a', undefined, 16_500); // done: nothing to judge
  assert.deepEqual(l.unresponsive(60_000), []);
});

test('the next look is due when the first judged replica reaches the bound: none while nothing is judged', () => {
  const l = new Liveness(10_000);
  assert.equal(l.nextDue(0), undefined);
  l.flowing('a', 1_000);
  l.flowing('b', 0);
  l.progressed('b', 3_000);
  assert.equal(l.nextDue(9_900), 1_100, 'a: its first byte at 1 s, due at 11 s');
  l.engineSays('c', 'busy', 500);
  assert.equal(l.nextDue(9_900), 600, 'c: its engine stuck since 0.5 s');
  assert.equal(l.nextDue(20_000), 0, 'past due: now');
  l.ended('a');
  l.ended('b');
  l.engineSays('c', undefined, 20_000);
  assert.equal(l.nextDue(20_000), undefined);
});

test('an answer that ends is progress: its engine need not be asked until a look passes without one', () => {
  const l = new Liveness(10_000);
  l.engineSays('a', slotsProgress([{ id: 0, is_processing: true, n_prompt_tokens_processed: 4 }]), 0);
  assert.equal(l.movedAfter('a', 0), false, 'nothing new since the look at 0: ask');
  l.answered('a', 250);
  assert.equal(l.movedAfter('a', 0), true, 'an answer ended after the look at 0: no need to ask');
  assert.equal(l.movedAfter('a', 250), false, 'none since the look at 250: ask');
  assert.deepEqual(l.unresponsive(10_249), [], 'judged from the answer, not from what the engine said at 0');
  l.engineSays('a', slotsProgress([{ id: 0, is_processing: true, n_prompt_tokens_processed: 4 }]), 10_249);
  assert.deepEqual(l.unresponsive(20_250), [{ id: 'a', silentMs: 10_001 }], 'asked since, and stuck for the bound');
  assert.equal(l.movedAfter('b', 0), false, 'never seen: ask');
});
