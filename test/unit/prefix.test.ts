// Prefix-aware routing: prompt blocks keyed as a chain, the longest known prefix found, the load
// bound, and the gateway sending requests that share a long prefix to one replica. The upstreams
// are stubs answering filler: which replica gets which request is what is checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrefixIndex, prefixKeys, promptText } from '../../src/gateway/prefix.js';
import { pickBackend, type Backend } from '../../src/gateway/backends.js';
import { Gateway, type RoutingPolicy } from '../../src/gateway/server.js';

test('prompt blocks are keyed as a chain: a shared prefix shares its keys, and only those', () => {
  const system = 'You are a careful assistant. '.repeat(20); // 580 characters: 4 whole blocks of 128
  const a = prefixKeys(`${system}Question one?`);
  const b = prefixKeys(`${system}Another, longer question that goes on and on?`);
  assert.deepEqual(a.slice(0, 4), b.slice(0, 4));
  assert.notDeepEqual(prefixKeys(`x${system}`).slice(0, 1), a.slice(0, 1), 'a different start shares nothing');
  assert.equal(prefixKeys('short').length, 0, 'no whole block, no key');
  assert.equal(
    promptText({
      messages: [
        { role: 'system', content: 'S' },
        { role: 'user', content: [{ type: 'text', text: 'U' }] },
      ],
    }),
    'system:S\nuser:U\n',
  );
});

test('prompts of any JSON shape have a text (a null message failed a request with 500 when prefix routing read it)', () => {
  for (const body of [
    null,
    7,
    { messages: [null] },
    { messages: [{ role: 'user', content: [null, 3, { text: 7 }] }] },
    { messages: 'hi' },
    { prompt: [null, 1, ['a']] },
  ]) {
    assert.equal(typeof promptText(body), 'string', JSON.stringify(body));
  }
  assert.equal(promptText({ messages: [null, { role: 'user', content: 'U' }] }), 'user:U\n');
  assert.deepEqual(prefixKeys('x'.repeat(256)).length, 2);
  assert.ok(prefixKeys('x'.repeat(256)).every((k) => Number.isSafeInteger(k)));
});

test('the index finds the longest known prefix and forgets the least recently used past its capacity', () => {
  const index = new PrefixIndex(3);
  index.record('m', [1, 2], 'a');
  index.record('m', [1, 2, 3], 'b');
  assert.equal(index.lookup('m', [1, 2, 3, 4])?.replica, 'b');
  assert.equal(index.lookup('other', [1])?.replica, undefined, 'per model');
  index.record('m', [9], 'c'); // 1 is the oldest: gone
  assert.equal(index.lookup('m', [1])?.replica, undefined);
  assert.equal(index.lookup('m', [9])?.replica, 'c');
  assert.deepEqual(
    [...index.held('m')],
    [
      ['a', 0],
      ['b', 2],
      ['c', 1],
    ],
  );
  assert.equal(index.held('other').size, 0);
});

test('a prefix its owner keeps stays its own when another replica serves it too; new keys go to that one', () => {
  const index = new PrefixIndex();
  index.record('m', [1, 2], 'a');
  index.record('m', [1, 2, 3], 'b', 'a');
  assert.equal(index.lookup('m', [1, 2, 9])?.replica, 'a', 'the shared prefix stays with its owner');
  assert.equal(index.lookup('m', [1, 2, 3])?.replica, 'b', "the longer prefix only b has seen is b's");
  index.record('m', [1, 2], 'b');
  assert.equal(index.lookup('m', [1, 2])?.replica, 'b', 'nobody to keep it: it moves');
});

test('on GPUs a preferred replica wins until it is more than the bound busier than the least busy', () => {
  const b = (id: string): Backend => ({ id, model: 'm', url: '', ready: true, accelerated: true });
  const [a, other] = [b('a'), b('b')];
  const pick = (loadA: number) =>
    pickBackend([a, other], new Map([['a', loadA]]), new Map(), new Set(), {
      holder: a,
      held: new Map(),
      balance: 4,
    })?.id;
  assert.equal(pick(4), 'a');
  assert.equal(pick(5), 'b', 'a hot prefix does not pile onto one replica');
});

test("a prefix no replica holds goes to the one keeping fewest, within the bound of the least busy: placement decides each cache's share", () => {
  const b = (id: string): Backend => ({ id, model: 'm', url: '', ready: true, slots: 16 });
  const held = new Map([['a', 30]]);
  const pick = (loadA: number, loadB: number) =>
    pickBackend(
      [b('a'), b('b')],
      new Map([
        ['a', loadA],
        ['b', loadB],
      ]),
      new Map(),
      new Set(),
      { holder: undefined, held, balance: 4 },
    )?.id;
  assert.equal(pick(0, 0), 'b');
  assert.equal(pick(0, 4), 'b', 'busier by the bound: still where fewer prefixes are');
  assert.equal(pick(0, 5), 'a', 'past the bound: the least busy');
  assert.equal(
    pickBackend([b('a'), b('b')], new Map(), new Map(), new Set(['b']), { holder: undefined, held, balance: 4 })?.id,
    'a',
    'not one already tried',
  );
});

/** Which of replicas a and b (a holding the prefix) takes a request at these loads. */
function pickAB(backend: Omit<Backend, 'id'>, loadA: number, loadB: number): string | undefined {
  const loads = new Map([
    ['a', loadA],
    ['b', loadB],
  ]);
  const [a, b] = [
    { ...backend, id: 'a' },
    { ...backend, id: 'b' },
  ];
  return pickBackend([a, b], loads, new Map(), new Set(), { holder: a, held: new Map(), balance: 4 })?.id;
}

test('on CPUs a preferred replica wins only where it has at most one more in flight than the least busy: a request in a free slot slows the others', () => {
  const pick = (loadA: number, loadB: number) =>
    pickAB({ model: 'm', url: '', ready: true, slots: 16, engineSlots: 4 }, loadA, loadB);
  assert.equal(pick(0, 0), 'a');
  assert.equal(pick(2, 2), 'a');
  assert.equal(pick(1, 0), 'a', 'one more in flight: a cold prefill elsewhere costs more');
  assert.equal(pick(2, 0), 'b', 'a slot free on a, but its work would share the CPU with the running two');
});

test("on GPUs a preferred replica whose engine has no slot free loses to a less busy one: its request would wait in the engine's queue", () => {
  const pick = (loadA: number, loadB: number) =>
    pickAB({ model: 'm', url: '', ready: true, slots: 16, engineSlots: 2, accelerated: true }, loadA, loadB);
  assert.equal(pick(1, 0), 'a', 'a slot free: the cached prefix wins');
  assert.equal(pick(2, 0), 'b', 'both slots busy: the least busy replica starts it at once');
  assert.equal(pick(3, 1), 'b', 'busy engines both: the shorter queue');
  assert.equal(pick(3, 3), 'a', 'as busy as the least busy: the cached prefix still wins');
});

/** A gateway over two stub replicas that answer with `handle`; `close` ends all three. */
async function overTwo(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  routing: RoutingPolicy,
  backend: Partial<Backend> = {},
) {
  const upstreams = await Promise.all(
    [0, 1].map(async () => {
      const s = createServer(handle);
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return s;
    }),
  );
  const gateway = new Gateway({
    host: '127.0.0.1',
    port: 0,
    routing,
    source: {
      backends: () =>
        upstreams.map((s, i) => ({
          id: `m/${i}`,
          model: 'm',
          url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
          ready: true,
          ...backend,
        })),
      models: () => [{ id: 'm', replicas: 2, readyReplicas: 2 }],
      groups: () => [],
    },
  });
  await gateway.listen();
  const close = async () => {
    await gateway.close();
    upstreams.forEach((s) => s.close());
  };
  return { gateway, close };
}

/** A chat completion of model m: a tenant's system prompt, then a question. */
function chat(url: string, system: string, question: string): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'm',
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: question },
      ],
    }),
  });
}

async function route(routing: RoutingPolicy): Promise<string[]> {
  const { gateway, close } = await overTwo((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"filler":true}');
  }, routing);
  const system = 'Tenant 7 system prompt: answer in French, cite sources. '.repeat(10);
  const served: string[] = [];
  try {
    for (let i = 0; i < 8; i++) {
      const res = await chat(gateway.url, system, `q${i}`);
      served.push(res.headers.get('x-tandem-backend')!);
      await res.text();
    }
  } finally {
    await close();
  }
  return served;
}

test('the gateway sends requests with a shared prefix to one replica; least-outstanding spreads them', async () => {
  const prefix = await route('prefix');
  assert.equal(new Set(prefix).size, 1, prefix.join(' '));
  const spread = await route('least-outstanding');
  assert.equal(new Set(spread).size, 2, spread.join(' '));
});

/** Two stub replicas whose answers are held until `release(n)` (once `n` are held) answers them all. */
async function holding(backend: Partial<Backend>) {
  const held: ServerResponse[] = [];
  const over = await overTwo(
    (req, res) => {
      req.resume();
      held.push(res);
    },
    'prefix',
    backend,
  );
  const release = async (n: number) => {
    while (held.length < n) await new Promise((r) => setImmediate(r));
    for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  };
  return { ...over, held, release };
}

test("a request sent off its prefix's replica for balance does not move the prefix: the next one goes back", async () => {
  // Answers held until released: with two of a tenant's requests running on its replica, the third
  // goes to the other; the next, with both idle again, goes back to the first replica.
  const { gateway, close, held, release } = await holding({});
  const system = 'Tenant 9: answer in Welsh, briefly, and never in lists. '.repeat(10);
  const ask = (q: string) => chat(gateway.url, system, q);
  try {
    const first = ask('one');
    await release(1);
    const answered = await first;
    const owner = answered.headers.get('x-tandem-backend');
    await answered.text(); // its slot free again
    const busy = [ask('two')]; // held on the owner
    while (held.length < 1) await new Promise((r) => setImmediate(r));
    busy.push(ask('two more')); // one more than the other replica: still the owner
    while (held.length < 2) await new Promise((r) => setImmediate(r));
    const elsewhere = ask('three');
    await release(3);
    const [b, b2, c] = await Promise.all([...busy, elsewhere]);
    await Promise.all([b.text(), b2.text(), c.text()]);
    assert.equal(b.headers.get('x-tandem-backend'), owner);
    assert.equal(b2.headers.get('x-tandem-backend'), owner);
    assert.notEqual(c.headers.get('x-tandem-backend'), owner, 'its engine busy: the other replica');
    const back = ask('four');
    await release(1);
    assert.equal((await back).headers.get('x-tandem-backend'), owner);
  } finally {
    await release(0);
    await close();
  }
});

test("where an engine's cached prompt serves one request at a time, a request whose prefix is running on its replica goes to the least busy", async () => {
  const { gateway, close, held, release } = await holding({ exclusiveCache: true });
  const p = 'Tenant P: answer in Basque, with one example each time. '.repeat(10);
  const q = 'Tenant Q: answer in Latin, in verse where it can be done. '.repeat(10);
  const backend = async (res: Promise<Response>) => {
    const r = await res;
    await r.text();
    return r.headers.get('x-tandem-backend');
  };
  try {
    const first = [chat(gateway.url, q, 'one')];
    while (held.length < 1) await new Promise((r) => setImmediate(r));
    first.push(chat(gateway.url, p, 'one'));
    while (held.length < 2) await new Promise((r) => setImmediate(r));
    const again = chat(gateway.url, p, 'two'); // both replicas as busy; P's own has P running
    await release(3);
    const [qAt, pAt, againAt] = await Promise.all([...first, again].map(backend));
    assert.notEqual(qAt, pAt);
    assert.equal(againAt, qAt, "P's copy in use on its replica: the other one, picked longer ago");
    const idle = chat(gateway.url, p, 'three');
    await release(1);
    assert.equal(await backend(idle), pAt, 'nothing of P running: back to the replica that keeps it');
  } finally {
    await release(0);
    await close();
  }
});
