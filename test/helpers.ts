// Shared by the tests: specs built in code, the embedded default started on real processes.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { get } from 'node:http';
import { join } from 'node:path';
import type OpenAI from 'openai';
import { validateDocument } from '../src/spec/load.js';
import type { InferenceServiceInput } from '../src/spec/schema.js';
import { prepareServices } from '../src/engine/prepare.js';
import { LocalPlatform } from '../src/platforms/local/platform.js';
import { Reconciler } from '../src/controller/reconciler.js';
import type { ServiceSnapshot } from '../src/core/snapshot.js';
import { LocalEvents } from '../src/platforms/local/events.js';
import { MemoryStatusStore } from '../src/platforms/local/status-store.js';
import { silentProgress } from '../src/util/progress.js';
import type { ServiceTemplate } from '../src/core/service.js';
import { Gateway, type GatewayOptions } from '../src/gateway/server.js';
import { LocalBackends } from '../src/platforms/local/backend-source.js';

/** A gateway in front of a reconciler's groups, as `tandem up` wires one. */
export function localGateway(reconciler: Reconciler, options: Omit<GatewayOptions, 'source'>): Gateway {
  return new Gateway({ ...options, source: new LocalBackends(reconciler) });
}

/**
 * llama-server args under which a greedy answer does not depend on what else the engine decodes at
 * the same time. Its flash attention on CPU takes another path for a batch of several sequences, and
 * on the random tiny model that rounds near ties the other way: measured beside 3 other streams, 11
 * of 36 greedy answers and continuations left the lone answer's text; 0 of 36 with it off. For tests
 * that compare greedy text under concurrent load.
 */
export const BATCH_INVARIANT = ['--flash-attn', 'off'];

export function tinySpec(name: string, spec: Partial<InferenceServiceInput['spec']> = {}): InferenceServiceInput {
  return {
    apiVersion: 'tandem.dev/v1alpha1',
    kind: 'InferenceService',
    metadata: { name },
    spec: {
      model: { servedName: `${name}-model`, source: 'tandem://tiny-llama' },
      engine: { type: 'llamacpp' },
      resources: { cpu: 1 },
      ...spec,
    },
  };
}

export interface Running {
  reconciler: Reconciler;
  platform: LocalPlatform;
  events: LocalEvents;
  logDir: string;
  /** Every member pid seen so far, for checks that nothing is left behind. */
  pids: Set<number>;
  stop(): Promise<void>;
}

/** Specs validated and prepared for the embedded default, as `tandem up` does. */
export async function templatesFor(specs: InferenceServiceInput[]): Promise<ServiceTemplate[]> {
  const loaded = specs.map((doc) => {
    const { service, problems } = validateDocument(doc);
    if (!service) throw new Error(problems.join('\n'));
    return { service, file: '(test)' };
  });
  return prepareServices(loaded, silentProgress);
}

/** Starts services on the local platform and waits until every group is Ready (unless readyTimeoutMs is 0). */
export async function startServices(specs: InferenceServiceInput[], readyTimeoutMs = 60_000): Promise<Running> {
  const templates = await templatesFor(specs);
  const logDir = mkdtempSync(join(tmpdir(), 'tandem-test-logs-'));
  const platform = new LocalPlatform({ logDir });
  const events = new LocalEvents();
  const reconciler = new Reconciler({ platform, store: new MemoryStatusStore(), events });
  for (const template of templates) reconciler.apply(template);
  const pids = new Set<number>();
  reconciler.on('tick', (name) => {
    for (const m of reconciler.service(name)?.groups.flatMap((g) => g.members) ?? []) if (m.pid) pids.add(m.pid);
  });
  reconciler.start();
  const running: Running = { reconciler, platform, events, logDir, pids, stop: () => reconciler.teardown() };
  if (readyTimeoutMs === 0) return running; // the caller watches the groups start (or not)
  try {
    await waitFor(reconciler, allReady, readyTimeoutMs);
  } catch (err) {
    await running.stop();
    throw err;
  }
  return running;
}

/** Resolves once `predicate` holds for a snapshot; rejects after `timeoutMs`. */
export function waitFor(
  reconciler: Reconciler,
  predicate: (services: ServiceSnapshot[]) => boolean,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!predicate(reconciler.snapshot())) return;
      clearTimeout(timer);
      reconciler.off('tick', check);
      resolve();
    };
    const timer = setTimeout(() => {
      reconciler.off('tick', check);
      reject(new Error(`timed out after ${timeoutMs} ms; state: ${JSON.stringify(reconciler.snapshot())}`));
    }, timeoutMs);
    reconciler.on('tick', check);
    check();
  });
}

export function allReady(services: ServiceSnapshot[]): boolean {
  return services.every((s) => s.groups.length === s.replicas && s.groups.every((g) => g.phase === 'Ready'));
}

export function leaderUrl(running: Running, service: string, replica = 0): string {
  const group = running.reconciler
    .snapshot()
    .find((s) => s.name === service)
    ?.groups.find((g) => g.replica === replica);
  if (!group) throw new Error(`no group ${service}/${replica}`);
  return `http://${group.leader.host}:${group.leader.port}`;
}

/** Greedy completion straight from a leader's llama-server. */
export async function complete(baseUrl: string, prompt: string, maxTokens = 24): Promise<string> {
  const res = await fetch(`${baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, seed: 1 }),
    signal: AbortSignal.timeout(30_000),
  });
  if (res.status !== 200) throw new Error(`${baseUrl}: HTTP ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { choices: { text: string }[] };
  return body.choices[0]!.text;
}

export function readLog(running: Running, service: string, replica: number, member: number): string {
  return readFileSync(running.platform.logPath({ service, replica }, member), 'utf8');
}

export { isRunning as isAlive } from '../src/util/process.js';

/** GET /metrics, as `name{labels}` → value (labels as Prometheus prints them). */
export async function scrape(baseUrl: string): Promise<Record<string, number>> {
  // Its own connection, closed after the answer: a scrape leaves nothing open behind it.
  const text = await new Promise<string>((resolve, reject) => {
    get(`${baseUrl}/metrics`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
}

interface StreamedChunk {
  choices: { text?: string; delta?: { content?: string | null }; finish_reason?: string | null }[];
}

/**
 * Reads a streamed completion or chat to its end, handing each event to `atEvent` with its number:
 * the text it carried and its last finish_reason.
 */
export async function readStream<C extends StreamedChunk>(
  stream: AsyncIterable<C>,
  atEvent: (n: number, chunk: C) => void = () => {},
): Promise<{ text: string; finish?: string }> {
  let text = '';
  let finish: string | undefined;
  let n = 0;
  for await (const chunk of stream) {
    atEvent(n++, chunk);
    const choice = chunk.choices[0];
    text += choice?.text ?? choice?.delta?.content ?? '';
    finish = choice?.finish_reason ?? finish;
  }
  return { text, ...(finish ? { finish } : {}) };
}

/**
 * Clients streaming completions back to back (bounded: `maxMs`, `maxRequests`) until stop();
 * stop() resolves with each request's outcome: 'ok' for a stream that ended at its length, else why not.
 */
export function streamingLoad(
  client: OpenAI,
  model: string,
  { clients = 2, maxTokens = 32, maxMs = 120_000, maxRequests = 500 } = {},
): { stop(): Promise<string[]> } {
  let done = false;
  const outcomes: string[] = [];
  const deadline = Date.now() + maxMs;
  const load = Array.from({ length: clients }, async () => {
    while (!done && Date.now() < deadline && outcomes.length < maxRequests) {
      try {
        const stream = await client.completions.create({
          model,
          prompt: 'The capital of France is',
          max_tokens: maxTokens,
          temperature: 0,
          stream: true,
        });
        const { finish } = await readStream(stream);
        outcomes.push(finish === 'length' ? 'ok' : `finish ${finish}`);
      } catch (err) {
        outcomes.push(String(err));
      }
    }
  });
  return {
    stop: async () => {
      done = true;
      await Promise.all(load);
      return outcomes;
    },
  };
}

/** Polls `probe` every 200 ms until it returns a value; past the deadline, fails naming what it waited for. */
export async function until<T>(
  what: string | (() => string),
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  context: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}\n${context()}`.trimEnd());
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
