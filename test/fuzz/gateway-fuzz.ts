// Fuzzes the gateway's HTTP surface over raw sockets: malformed and oversize JSON, wrong methods
// and content types, header floods, headers sent byte by byte, pipelined requests, chunked bodies
// over the limit, and clients that abort at every stage (mid-headers, mid-body, before the answer,
// mid-stream). Bounded: a fixed number of cases, each with a deadline. Afterwards nothing may be
// outstanding and the gateway's open file descriptors must be back where they started.
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Random } from './random.js';

const CASE_DEADLINE_MS = 2000;
/** An answer is complete once nothing more arrives for this long (the connection stays open). */
const ANSWER_QUIET_MS = 300;

type Case = (random: Random) => { send: (Buffer | string)[]; abortAfter?: number; slow?: boolean; readFor?: number };

function request(path: string, headers: Record<string, string>, body: string, method = 'POST'): string {
  const lines = Object.entries({ host: 'fuzz', ...headers }).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`;
}
const withLength = (path: string, body: string, headers: Record<string, string> = {}) =>
  request(
    path,
    { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
    body,
  );

export function cases(model: string): Record<string, Case> {
  const valid = (stream: boolean, max = 4) => JSON.stringify({ model, prompt: 'Fuzz', max_tokens: max, stream });
  return {
    malformedJson: (r) => ({
      send: [withLength('/v1/completions', r.pick(['{', '{"model":', '[]', 'null', '"x"', '{"model":1}', '\u0000']))],
    }),
    // Valid JSON of the wrong shapes, where routing reads the prompt (prefix keys, continuation).
    oddShapes: (r) => ({
      send: [
        withLength(
          r.pick(['/v1/chat/completions', '/v1/completions']),
          JSON.stringify({
            model,
            max_tokens: 2,
            stream: r.pick([true, false]),
            ...r.pick<Record<string, unknown>>([
              { messages: [null] },
              { messages: [{ role: 'user', content: [null, 3, { text: 7 }] }] },
              { messages: 'hi' },
              { messages: [[]] },
              { prompt: [null, 1, ['a']] },
              { prompt: { text: 'x' } },
              { messages: [{ role: null, content: null }], prompt: 5 },
            ]),
          }),
        ),
      ],
    }),
    wrongContentType: (r) => ({
      send: [
        withLength('/v1/chat/completions', valid(false), {
          'content-type': r.pick(['text/plain', 'multipart/form-data', '', 'application/x-www-form-urlencoded']),
        }),
      ],
    }),
    wrongMethod: (r) => ({
      send: [
        request(
          r.pick(['/v1/completions', '/v1/models', '/metrics', '/nope', '/../etc']),
          {},
          '',
          r.pick(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']),
        ),
      ],
    }),
    headerFlood: (r) => {
      const headers: Record<string, string> = {};
      for (let i = 0; i < 50 + r.int(3000); i++) headers[`x-h${i}`] = 'v'.repeat(r.int(200));
      return { send: [withLength('/v1/completions', valid(false), headers)] };
    },
    hugeHeader: () => ({ send: [withLength('/v1/completions', valid(false), { 'x-big': 'y'.repeat(100_000) })] }),
    slowHeaders: () => ({
      send: [...withLength('/v1/completions', valid(false)).slice(0, 80)],
      slow: true,
      abortAfter: 80,
    }),
    pipelined: (r) => ({
      send: [Array.from({ length: 2 + r.int(6) }, () => withLength('/v1/completions', valid(false, 1))).join('')],
      readFor: 3000,
    }),
    chunkedOverLimit: (r) => {
      const chunks = Array.from({ length: 20 + r.int(60) }, () => `10000\r\n${'z'.repeat(0x10000)}\r\n`);
      return { send: [request('/v1/completions', { 'transfer-encoding': 'chunked' }, ''), ...chunks] };
    },
    declaredOverLimit: () => ({
      send: [request('/v1/completions', { 'content-length': String(2 ** 40) }, '{"model":')],
    }),
    badChunked: (r) => ({
      send: [
        request(
          '/v1/completions',
          { 'transfer-encoding': 'chunked' },
          r.pick(['zz\r\nabc\r\n', '5\r\nabc', '-1\r\n\r\n', 'ffffffffffff\r\n']),
        ),
      ],
    }),
    abortMidHeaders: (r) => {
      const text = withLength('/v1/completions', valid(true));
      return { send: [text], abortAfter: r.int(text.indexOf('\r\n\r\n')) };
    },
    abortMidBody: (r) => {
      const text = withLength('/v1/completions', valid(true, 64));
      return { send: [text], abortAfter: text.indexOf('\r\n\r\n') + 4 + r.int(10) };
    },
    abortBeforeAnswer: () => ({ send: [withLength('/v1/completions', valid(false, 64))], readFor: 0 }),
    abortMidStream: (r) => ({
      send: [
        withLength(
          '/v1/chat/completions',
          JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 200, stream: true }),
        ),
      ],
      readFor: 20 + r.int(300),
    }),
    garbage: (r) => ({ send: [Buffer.from(Array.from({ length: 1 + r.int(2000) }, () => r.int(256)))] }),
  };
}

async function runCase(port: number, c: ReturnType<Case>): Promise<void> {
  const socket: Socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  let received = 0;
  let lastData = 0;
  socket.on('data', () => {
    received++;
    lastData = Date.now();
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await Promise.race([new Promise((r) => socket.once('connect', r)), closed]);
  let sent = 0;
  for (const part of c.send) {
    const bytes = typeof part === 'string' ? Buffer.from(part) : part;
    const pieces = c.slow ? [...bytes].map((b) => Buffer.from([b])) : [bytes];
    for (const piece of pieces) {
      if (socket.destroyed) break;
      const room = c.abortAfter === undefined ? piece.length : Math.max(0, c.abortAfter - sent);
      if (room === 0) break;
      socket.write(piece.subarray(0, room));
      sent += Math.min(room, piece.length);
      if (c.slow) await sleep(5);
    }
    if (c.abortAfter !== undefined && sent >= c.abortAfter) break;
  }
  if (c.abortAfter !== undefined) socket.destroy();
  else if (c.readFor !== undefined) await Promise.race([sleep(c.readFor), closed]).then(() => socket.destroy());
  // Done when the gateway closes, or once it has answered and gone quiet (keep-alive), or at the deadline.
  const deadline = Date.now() + CASE_DEADLINE_MS;
  while (!socket.destroyed && Date.now() < deadline && !(received > 0 && Date.now() - lastData > ANSWER_QUIET_MS)) {
    await Promise.race([closed, sleep(25)]);
  }
  socket.destroy();
}

export interface GatewayFuzzResult {
  cases: number;
  byKind: Record<string, number>;
}

export async function fuzzGateway(
  port: number,
  model: string,
  seed: number,
  count: number,
): Promise<GatewayFuzzResult> {
  const random = new Random(seed);
  const all = cases(model);
  const kinds = Object.keys(all);
  const byKind: Record<string, number> = {};
  // A few at a time, as real clients come: bounded concurrency, bounded count.
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < count) {
        next++;
        const kind = random.pick(kinds);
        byKind[kind] = (byKind[kind] ?? 0) + 1;
        await runCase(port, all[kind]!(random));
      }
    }),
  );
  return { cases: count, byKind };
}
