// The gateway: one OpenAI-compatible endpoint in front of every group. Requests are routed by
// their body's `model` to a ready replica (least outstanding requests first); responses, server-
// sent events included, are passed through chunk by chunk. Node's http on the client side and
// undici pools (keep-alive) towards the leaders: nothing else on the hot path.
//
// Failure handling: a replica that refuses, times out before its first byte, or answers 503 is
// retried once on another; with none left, a 503 is passed through as the engine sent it, a
// timeout is a 504 and anything else a 502. A stream whose replica fails mid-way is continued on
// another from what it had sent (resume.ts), up to twice; else it ends with an error event. A
// client that goes away cancels the generation upstream. close() drains: no new requests,
// in-flight ones finish within a grace period.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Pool, errors } from 'undici';
import { expectedReady, pickBackend, type Backend } from './backends.js';
import { readMetrics, ServingHistory } from './history.js';
import type { BackendSource, LoadReport } from '../core/serving.js';
import type { ControlHandler, StaticFile } from '../core/control.js';
import { GatewayMetrics } from './metrics.js';
import { PREFIX_BALANCE, PrefixesInFlight, PrefixIndex, prefixKeys, promptText } from './prefix.js';
import { Breakers, DEFAULT_BREAKER, type BreakerOptions } from './breaker.js';
import { DEFAULT_ADMISSION, NotAdmitted, SlotQueues, type AdmissionOptions } from './admission.js';
import { isDenied, type Denied, type KeyEntry, type KeyRing } from './keys.js';
import { ResumableStream } from './resume.js';
import { send, type UpstreamResponse } from './upstream.js';
import { Cancel } from './cancel.js';
import { UsageTail } from './usage.js';
import { Liveness, slotsProgress } from './liveness.js';

export const ROUTING_POLICIES = ['prefix', 'least-outstanding'] as const;
export type RoutingPolicy = (typeof ROUTING_POLICIES)[number];
export const DEFAULT_BODY_LIMIT = 4 * 1024 * 1024;
export const DEFAULT_TIMEOUTS: UpstreamTimeouts = {
  connectMs: 5_000,
  firstByteMs: 600_000,
  idleMs: 60_000,
  unresponsiveMs: 10_000,
};
const ROUTED = new Set(['/v1/chat/completions', '/v1/completions', '/v1/embeddings']);
/** Request ids taken from clients: printable, at most 128 characters. */
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
/**
 * Request ids made here: a random UUID's first 80 bits, drawn once per gateway, and a count in the
 * last 48; unique as randomUUID()'s per request are, at a fraction of the CPU (a profile's 2 µs and
 * 500 bytes per request).
 */
const ownRequestIds = (() => {
  const prefix = randomUUID().slice(0, 24);
  let count = 0;
  return () => prefix + (count++).toString(16).padStart(12, '0');
})();
/** Times one stream is continued on another replica after its own failed. */
const MAX_FAILOVERS = 2;
/** How often queued requests are offered ready replicas, and liveness is looked at. */
const WAKE_MS = 250;
/** Seconds a client should wait before retrying when no replica is ready and nothing says when one will be. */
const RETRY_AFTER_S = 2;
/** Group phases on the way to serving: a request with no replica ready waits for such a group. */
const COMING = new Set(['Pending', 'Starting', 'Updating', 'Recreating', 'Ready']);
/** Response headers passed through from the engine; the rest are hop-by-hop or the gateway's own. */
const PASSED_HEADERS = ['content-type', 'content-length', 'retry-after'];

export interface UpstreamTimeouts {
  /** Connecting to a leader. */
  connectMs: number;
  /** From sending the request to the response's first byte (headers): a whole generation when not streaming. */
  firstByteMs: number;
  /** Between two chunks of a response. */
  idleMs: number;
  /**
   * Nothing at all from a replica whose streams were flowing, this long: it is unresponsive (a
   * member hung), taken out of rotation, its streams continued elsewhere, its group recreated.
   */
  unresponsiveMs: number;
}

/** What the access log says of one request, once it is answered (or its client left). */
export interface AccessEntry {
  id: string;
  method: string | undefined;
  path: string | undefined;
  status: number;
  /** The answer was sent whole (not: the client left, or a stream was cut). */
  complete: boolean;
  ms: number;
  model: string | undefined;
  /** The API key's name, never the key. */
  key: string | undefined;
  replica: string | undefined;
  failovers: number | undefined;
}

export interface AccessLog {
  write(entry: AccessEntry): void;
}

export interface GatewayOptions {
  host: string;
  port: number;
  bodyLimit?: number;
  timeouts?: UpstreamTimeouts;
  /** One entry per request; none: no access log. */
  accessLog?: AccessLog;
  /** API keys; without them every request is served (loopback, or --insecure-no-auth). */
  keys?: KeyRing;
  /** prefix (the default): a request goes where its prompt's prefix was served, within a load bound. */
  routing?: RoutingPolicy;
  /** When a failing replica is taken out of rotation, and for how long. */
  breaker?: BreakerOptions;
  /** Queue bounds for requests beyond every replica's slots. */
  admission?: AdmissionOptions;
  /** What it serves (a platform's): backends and models are read per request, so they must be cheap. */
  source: BackendSource;
  /** The control API at /api/v1: for admin keys, or without keys from loopback only. */
  control?: ControlHandler;
  /** The dashboard's files, served at /ui/ to anyone (what it shows comes from the control API). */
  ui?: (path: string) => StaticFile | undefined;
  /** Monotonic milliseconds for the breakers' decisions; default performance.now (tests inject one). */
  clock?: () => number;
  /** How often the serving history (/api/v1/history, the dashboard's charts) takes a point; default 2 s. */
  historyIntervalMs?: number;
}

/** One request's state beyond its objects: its cancellation, and what its access log line says. */
interface RequestContext {
  cancel: Cancel;
  /** The client's when it is a sane one, else a new one: returned, and passed upstream. */
  requestId: string;
  /** Its answer went out as server-sent events (an error is then an event, not a cut connection). */
  eventStream?: boolean;
  model?: string;
  /** The API key's name. */
  key?: string;
  replica?: string;
  failovers?: number;
}

/** Minutes of serving history the gateway keeps for the dashboard. */
const HISTORY_KEEP_MS = 10 * 60_000;

/** What a model has in hand: requests being served or waiting, and of those, waiting. */
export interface ModelLoad {
  requests: number;
  queued: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly type = 'invalid_request_error',
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class Gateway {
  private readonly outstanding = new Map<string, number>();
  readonly metrics: GatewayMetrics;
  private readonly queues: SlotQueues;
  private readonly breakers: Breakers;
  private readonly prefixes = new PrefixIndex();
  private readonly prefixesInFlight = new PrefixesInFlight();
  private readonly liveness: Liveness;
  /** Replicas found unresponsive, out of rotation until their group is seen not ready (recreated) or gone. */
  private readonly unresponsive = new Set<string>();
  /** How to cut each request a replica has now, for when it is found unresponsive. */
  private readonly answering = new Map<string, Set<(reason: Error) => void>>();
  private readonly unresponsiveListeners: ((replica: string, silentMs: number) => void)[] = [];
  /** llama-server replicas whose slots are being asked for now. */
  private readonly asking = new Set<string>();
  private readonly wakeTimer: NodeJS.Timeout;
  /** When liveness was last looked at (the clock's ms). */
  private lastLook = -Infinity;
  /** A look at liveness when a replica reaches the bound between two wakes. */
  private dueTimer?: NodeJS.Timeout;
  private readonly historyTimer: NodeJS.Timeout;
  private readonly history = new ServingHistory(HISTORY_KEEP_MS);
  private readonly server: Server;
  private readonly pools = new Map<string, Pool>();
  private readonly lastPicked = new Map<string, number>();
  private readonly timeouts: UpstreamTimeouts;
  private picks = 0;
  /** Requests being handled, for draining. */
  private active = 0;
  /** Requests per model from admission to their end, waiting ones included: the autoscaler's load. */
  private readonly inFlight = new Map<string, number>();
  /** Replicas taking no new request: the autoscaler removes them once they have none. */
  private readonly retiring = new Map<string, Set<string>>();
  private draining = false;
  private idle?: () => void;
  private readonly demandListeners: ((model: string) => void)[] = [];

  private readonly clock: () => number;

  constructor(private readonly options: GatewayOptions) {
    this.clock = options.clock ?? (() => performance.now());
    this.timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
    this.liveness = new Liveness(this.timeouts.unresponsiveMs);
    this.queues = new SlotQueues(options.admission ?? DEFAULT_ADMISSION);
    this.breakers = new Breakers(options.breaker ?? DEFAULT_BREAKER);
    this.metrics = new GatewayMetrics(
      () => this.outstanding,
      () => options.source.groups(),
      (model) => this.queues.queued(model),
      () => this.breakers.open(),
      options.source.services && (() => options.source.services!()),
    );
    const historyMs = options.historyIntervalMs ?? 2000;
    this.historyTimer = setInterval(() => void this.sampleHistory(), historyMs).unref();
    // Replicas that become ready take waiters too, not only slots that free up (while draining as
    // well: a request queued before the drain began is served if a replica comes in its time).
    // Breakers of replicas gone are forgotten: one re-created under the same id starts closed.
    this.wakeTimer = setInterval(() => {
      this.queues.models().forEach((m) => this.wake(m));
      const backends = this.options.source.backends();
      this.breakers.retain(new Set(backends.map((b) => b.id)));
      this.checkLiveness(backends);
      // A replica reaching the bound before the next look is looked at then, exactly.
      const due = this.liveness.nextDue(this.clock());
      if (due !== undefined && due < WAKE_MS) {
        clearTimeout(this.dueTimer);
        this.dueTimer = setTimeout(() => this.checkLiveness(this.options.source.backends()), due).unref();
      }
    }, WAKE_MS).unref();
    this.server = createServer((req, res) => {
      this.active++;
      const started = performance.now();
      const given = req.headers['x-request-id'];
      const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : ownRequestIds();
      const context: RequestContext = { cancel: new Cancel(), requestId };
      // on(), not once(): a response closes once, and once() wraps each listener in another.
      res.on('close', () => {
        if (!res.writableFinished) context.cancel.cancel(); // the client went away: stop what serves it
        if (--this.active === 0) this.idle?.();
        this.options.accessLog?.write({
          id: context.requestId,
          method: req.method,
          path: req.url,
          status: res.statusCode,
          complete: res.writableFinished,
          ms: Math.round(performance.now() - started),
          model: context.model,
          key: context.key,
          replica: context.replica,
          failovers: context.failovers,
        });
      });
      if (this.draining) res.setHeader('connection', 'close');
      this.handle(req, res, context).catch((err: unknown) => this.fail(req, res, err, context.requestId));
    });
    this.server.keepAliveTimeout = 65_000;
  }
  /** Calls `listener` when a replica is found unresponsive (its platform should recreate its group). */
  onUnresponsive(listener: (replica: string, silentMs: number) => void): void {
    this.unresponsiveListeners.push(listener);
  }

  /** Calls `listener` when a request of an autoscaled model finds no ready replica: scale it up now. */
  onDemand(listener: (model: string) => void): void {
    this.demandListeners.push(listener);
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  get url(): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  }

  /**
   * Stops accepting connections, lets requests in flight finish for up to `graceMs`, then cuts
   * whatever is left. Resolves with the number of requests that were cut.
   */
  async close(graceMs = 0): Promise<number> {
    this.draining = true;
    clearInterval(this.historyTimer);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.active > 0 && graceMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    clearInterval(this.wakeTimer);
    clearTimeout(this.dueTimer);
    const cut = this.active;
    this.server.closeAllConnections();
    await closed;
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
    return cut;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void> {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    // A relayed answer's request id goes with its other headers (relay, fail): set here, it would
    // make Node's writeHead() take its slow path, header by header.
    if (!ROUTED.has(path)) res.setHeader('x-request-id', context.requestId);
    if (req.method === 'GET' && path === '/healthz') return json(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') {
      const models = this.options.source.models();
      const groups = this.options.source.groups();
      // A model scaled to zero serves too (its requests wait for the replica they start), unless
      // every group it has failed: nothing will start for them.
      const allFailed = (model: string) => {
        const its = groups.filter((g) => g.model === model);
        return its.length > 0 && its.every((g) => g.phase === 'Failed');
      };
      const ready = models.length > 0 && models.every((m) => m.readyReplicas > 0 || (m.autoscaled && !allFailed(m.id)));
      // Probes need no key; which models and replicas there are is for callers with one.
      const detail = !this.options.keys || isLoopback(req.socket.remoteAddress) || this.hasKey(req);
      return json(res, ready ? 200 : 503, detail ? { ready, models } : { ready });
    }
    if (req.method === 'GET' && path === '/metrics') {
      // Beyond this machine, with keys in force, the metrics (they name the keys) need an admin key.
      if (this.options.keys && !isLoopback(req.socket.remoteAddress)) this.admin(req, 'the metrics');
      const text = await this.metrics.render();
      res.writeHead(200, { 'content-type': this.metrics.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    if (path === CONTROL_PREFIX || path.startsWith(`${CONTROL_PREFIX}/`)) return this.control(req, res, path);
    if (req.method === 'GET' && (path === '/ui' || path.startsWith('/ui/'))) return this.ui(res, path);
    const key = path.startsWith('/v1/') ? this.identify(req) : undefined;
    if (req.method === 'GET' && path === '/v1/models') {
      const created = Math.floor(Date.now() / 1000);
      const models = this.options.source.models().filter((m) => !key?.models || key.models.includes(m.id));
      const data = models.map((m) => ({
        id: m.id,
        object: 'model',
        created,
        owned_by: 'tandem',
        replicas: m.replicas,
        ready_replicas: m.readyReplicas,
      }));
      return json(res, 200, { object: 'list', data });
    }
    if (!ROUTED.has(path)) throw new HttpError(404, 'not_found', `no route for ${req.method} ${path}`);
    if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', `${path} takes POST`);

    const body = await readBody(req, this.options.bodyLimit ?? DEFAULT_BODY_LIMIT);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new HttpError(400, 'invalid_json', `request body is not valid JSON: ${(err as Error).message}`);
    }
    const model = (parsed as { model?: unknown } | null)?.model;
    if (typeof model !== 'string' || model === '') {
      throw new HttpError(404, 'model_not_found', 'the request names no model: set "model" to one of GET /v1/models');
    }
    if (!this.options.source.models().some((m) => m.id === model)) {
      throw new HttpError(404, 'model_not_found', `the model '${model}' does not exist`);
    }
    context.model = model;
    context.key = key?.name;
    if (key) {
      const denied = this.options.keys!.admit(key, model, Date.now());
      if (denied) throw this.denial(denied);
      this.metrics.keyRequests.inc({ key: key.name });
    }
    // Hashing the prompt, and making a stream resumable, are worth it only where there is a choice of replica.
    const replicas = this.current(model);
    const choice = (this.options.routing ?? 'prefix') === 'prefix' && replicas.length > 1;
    const keys = choice ? prefixKeys(promptText(parsed)) : [];
    const stream =
      replicas.length > 1 && (parsed as { stream?: unknown }).stream === true
        ? ResumableStream.for(path, parsed, replicas[0]!.tokenIds) // a model's replicas run one engine
        : undefined;
    this.inFlight.set(model, (this.inFlight.get(model) ?? 0) + 1);
    try {
      await this.forward(req, res, context, path, body, stream, model, keys, key);
    } finally {
      this.inFlight.set(model, this.inFlight.get(model)! - 1);
    }
  }

  /** What `model` has in hand now. */
  load(model: string): ModelLoad {
    return { requests: this.inFlight.get(model) ?? 0, queued: this.queues.queued(model) };
  }

  /** What this gateway has in hand, for its peers (several gateways, one load). */
  report(): LoadReport {
    const models: LoadReport['models'] = {};
    for (const model of new Set([...this.inFlight.keys(), ...this.queues.models()])) {
      const load = this.load(model);
      if (load.requests > 0 || load.queued > 0) models[model] = load;
    }
    const serving: LoadReport['serving'] = {};
    for (const [id, n] of this.outstanding) if (n > 0) serving[id] = n;
    return { models, serving };
  }

  /** Requests a replica is serving now. */
  serving(id: string): number {
    return this.outstanding.get(id) ?? 0;
  }

  /**
   * These replicas take no new request (they are about to be removed), as far as `owner` has its
   * say: the autoscaler's scale-downs and a rollout's drain each keep their own list.
   */
  retire(ids: Iterable<string>, owner = 'autoscaler'): void {
    this.retiring.set(owner, new Set(ids));
  }

  private retired(id: string): boolean {
    for (const ids of this.retiring.values()) if (ids.has(id)) return true;
    return false;
  }

  private current(model: string): Backend[] {
    return this.options.source.backends().filter((b) => b.model === model);
  }

  /** The backends of `model` that may take a new request: not retiring, their breaker not open. */
  private candidates(model: string): Backend[] {
    const now = this.clock();
    return this.options.source
      .backends()
      .filter(
        (b) =>
          b.model === model && !this.retired(b.id) && !this.unresponsive.has(b.id) && this.breakers.allows(b.id, now),
      );
  }

  /**
   * A ready backend of `model` with a free slot, not in `tried`, its slot taken; none if all are
   * busy. It now holds the prompt's prefix (`keys`), which stays the holder's while that one serves.
   */
  private pickAndReserve(model: string, tried: ReadonlySet<string>, keys: readonly number[] = []): Backend | undefined {
    const candidates = this.candidates(model);
    const found = keys.length > 0 ? this.prefixes.lookup(model, keys) : undefined;
    const holder = found && candidates.find((b) => b.id === found.replica);
    // The holder's copy of the prefix in use by another request: cold there as anywhere.
    const taken = holder?.exclusiveCache === true && this.prefixesInFlight.has(holder.id, found!.key);
    const prefix =
      keys.length > 0 && !taken ? { holder, held: this.prefixes.held(model), balance: PREFIX_BALANCE } : undefined;
    const backend = pickBackend(candidates, this.outstanding, this.lastPicked, tried, prefix);
    if (!backend) return undefined;
    if (keys.length > 0) {
      if (backend === holder && !taken) this.metrics.prefixHits.inc({ model });
      this.prefixes.record(model, keys, backend.id, holder?.id);
      if (backend.exclusiveCache) this.prefixesInFlight.add(backend.id, keys);
    }
    this.breakers.taken(backend.id);
    this.lastPicked.set(backend.id, ++this.picks);
    this.outstanding.set(backend.id, (this.outstanding.get(backend.id) ?? 0) + 1);
    return backend;
  }

  /** Free slots of `model` to its waiters, in order. */
  private wake(model: string): void {
    if (this.queues.queued(model) === 0) return; // the common case: nobody waits, nothing to make
    for (const ms of this.queues.wake(model, (tried, keys) => this.pickAndReserve(model, tried, keys))) {
      this.metrics.queueWait.observe({ model }, ms / 1000);
    }
  }

  /** The control API: an admin key where keys are in force, else a caller on this machine. */
  private async control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const control = this.options.control;
    if (!control) throw new HttpError(404, 'not_found', 'this gateway serves no control API');
    this.admin(req, 'the control API');
    if (req.method === 'GET' && path === `${CONTROL_PREFIX}/history`) {
      return json(res, 200, { intervalMs: this.options.historyIntervalMs ?? 2000, models: this.history.all() });
    }
    const body = await readBody(req, CONTROL_BODY_LIMIT);
    const contentType = req.headers['content-type'];
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    const out = await control({
      method: req.method ?? 'GET',
      path: path.slice(CONTROL_PREFIX.length) || '/',
      query: new URL(req.url ?? '/', 'http://x').searchParams,
      body,
      signal: gone.signal,
      ...(contentType ? { contentType } : {}),
    });
    if ('body' in out) return json(res, out.status, out.body);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders(); // a follower waiting for the next line has its answer at once
    for await (const line of out.events) {
      if (!res.write(`data: ${line}\n\n`)) await drainOrClose(res);
      if (gone.signal.aborted) break;
    }
    res.end();
  }

  /** The dashboard: /ui redirects to /ui/, whose files the platform-neutral ui module holds. */
  private ui(res: ServerResponse, path: string): void {
    if (path === '/ui') {
      res.writeHead(308, { location: '/ui/' });
      res.end();
      return;
    }
    const file = this.options.ui?.(path.slice('/ui/'.length) || 'index.html');
    if (!file) throw new HttpError(404, 'not_found', `no dashboard file ${path}`);
    res.writeHead(200, {
      'content-type': file.contentType,
      'content-length': file.body.length,
      'cache-control': 'no-cache',
    });
    res.end(file.body);
  }

  private async sampleHistory(): Promise<void> {
    const served = this.options.source.models().map((m) => m.id);
    this.history.record(await readMetrics(this.metrics, served, (m) => this.queues.queued(m), Date.now()));
  }

  /** Refuses a caller without an admin key (with keys in force), or off this machine (without). */
  private admin(req: IncomingMessage, what: string): void {
    const key = this.identify(req);
    if (key ? !key.admin : !isLoopback(req.socket.remoteAddress)) {
      throw new HttpError(
        403,
        'admin_required',
        key
          ? `the key "${key.name}" may not use ${what}: it needs the admin scope (tandem keys add NAME --admin)`
          : `without API keys ${what} answers only on this machine (loopback)`,
      );
    }
  }

  /** Whether the request carries a valid key (not counted as a denial when it does not). */
  private hasKey(req: IncomingMessage): boolean {
    const key = this.options.keys?.identify(req.headers.authorization);
    return key !== undefined && !isDenied(key);
  }

  /** The request's API key when keys are in force (a 401 when it has no valid one). */
  private identify(req: IncomingMessage): KeyEntry | undefined {
    const keys = this.options.keys;
    if (!keys) return undefined;
    const key = keys.identify(req.headers.authorization);
    if (isDenied(key)) throw this.denial(key);
    return key;
  }

  private denial(d: Denied): HttpError {
    this.metrics.keyDenials.inc({ code: d.code });
    const type = d.status === 429 ? 'rate_limit_error' : 'invalid_request_error';
    return new HttpError(
      d.status,
      d.code,
      d.message,
      type,
      d.retryAfterS ? { 'retry-after': String(d.retryAfterS) } : {},
    );
  }

  /**
   * Sends the request to a ready replica; a failure before the first byte is retried once elsewhere,
   * and a stream whose replica fails mid-way is continued on another (resume.ts).
   */
  private async forward(
    req: IncomingMessage,
    res: ServerResponse,
    context: RequestContext,
    path: string,
    body: Buffer,
    stream: ResumableStream | undefined,
    model: string,
    keys: readonly number[],
    key: KeyEntry | undefined,
  ): Promise<void> {
    const { cancel } = context;
    let payload = stream?.body ?? body;
    const timing = { started: performance.now(), last: 0 };
    const tried = new Set<string>();
    let lastError = '';
    let timedOut = false;
    let failovers = 0;
    for (let attempt = 0; attempt < 2 + MAX_FAILOVERS; attempt++) {
      const resuming = res.headersSent;
      if (!resuming && attempt > 1) break; // one retry before the first byte
      // Newcomers queue behind those already waiting: a freed slot goes to the queue's head.
      const queueFirst = attempt === 0 && this.queues.queued(model) > 0;
      let backend = queueFirst ? undefined : this.pickAndReserve(model, tried, keys);
      const someReady = !backend && this.current(model).some((b) => b.ready && !tried.has(b.id));
      // With no replica ready, a request (or a stream to continue) waits for one that is coming.
      const starting = !backend && (attempt === 0 || resuming) && !someReady && this.startingFor(model);
      if (!backend && (((attempt === 0 || resuming) && someReady) || starting)) {
        try {
          backend = await this.queues.wait(model, tried, cancel, keys);
        } catch (err) {
          if (cancel.cancelled) return;
          if (err instanceof NotAdmitted && starting && !resuming) throw this.noReplica(model);
          if (err instanceof NotAdmitted && !resuming) {
            throw new HttpError(429, err.code, err.message, 'rate_limit_error', {
              'retry-after': String(err.retryAfterS),
            });
          }
          if (!(err instanceof NotAdmitted)) throw err;
        }
      }
      if (!backend) {
        if (resuming) return this.endStream(res, lastError, context);
        break;
      }
      if (attempt > 0 && !resuming) this.metrics.retries.inc({ model });
      tried.add(backend.id);
      context.replica = backend.id;
      const cuts = this.answering.get(backend.id) ?? new Set();
      this.answering.set(backend.id, cuts);
      let cutThis: ((reason: Error) => void) | undefined;
      try {
        const request = {
          path,
          headers: {
            'content-type': 'application/json',
            accept: req.headers.accept ?? '*/*',
            'x-request-id': context.requestId,
          },
          body: payload,
          cancel,
          started: (abort: (reason: Error) => void) => {
            if (cutThis) cuts.delete(cutThis); // a retry on a new connection replaces the first
            cuts.add((cutThis = abort));
          },
        };
        let upstream: UpstreamResponse;
        try {
          // An idle kept-alive connection the engine closed just as it was reused (llama-server
          // closes them after 5 s) is not the replica failing: once more, on a new connection.
          const pool = this.pool(backend.url);
          try {
            upstream = await send(pool, request);
          } catch (err) {
            if (!(err instanceof errors.SocketError) || cancel.cancelled) throw err;
            upstream = await send(pool, request);
          }
        } catch (err) {
          if (cancel.cancelled) return;
          this.breakers.failed(backend.id, this.clock());
          timedOut = isTimeout(err);
          lastError = `${backend.id}: ${timedOut ? timeoutMessage(err, this.timeouts) : (err as Error).message}`;
          continue;
        }
        // A 503 is an engine busy or loading, not a broken replica.
        if (upstream.statusCode >= 500 && upstream.statusCode !== 503) this.breakers.failed(backend.id, this.clock());
        else if (upstream.statusCode !== 503) this.breakers.succeeded(backend.id);
        if (resuming && upstream.statusCode !== 200) {
          await upstream.dump();
          return this.endStream(
            res,
            `${lastError}; ${backend.id} refused the continuation: HTTP ${upstream.statusCode}`,
            context,
          );
        }
        // The engine is busy or loading: another replica may take it; if none can, the client gets
        // the engine's own answer (and its Retry-After).
        const busy = upstream.statusCode === 503 && attempt === 0;
        if (busy && pickBackend(this.candidates(model), this.outstanding, this.lastPicked, tried)) {
          await upstream.dump();
          lastError = `${backend.id}: HTTP 503`;
          continue;
        }
        const cut = await this.relay(res, upstream, backend, model, timing, key, stream, context);
        if (cut === undefined) return;
        lastError = `replica ${backend.id} failed mid-stream: ${cut}`;
        const next = failovers < MAX_FAILOVERS ? stream?.continuation() : undefined;
        if (!next) return this.endStream(res, lastError, context);
        payload = next;
        failovers++;
        context.failovers = failovers;
        this.metrics.failovers.inc({ model });
      } finally {
        if (cutThis) cuts.delete(cutThis);
        if (cuts.size === 0 && this.answering.get(backend.id) === cuts) this.answering.delete(backend.id);
        this.outstanding.set(backend.id, (this.outstanding.get(backend.id) ?? 1) - 1);
        if (backend.exclusiveCache && keys.length > 0) this.prefixesInFlight.remove(backend.id, keys);
        this.queues.done(model, performance.now());
        this.wake(model);
      }
    }
    if (res.headersSent) return this.endStream(res, lastError, context);
    if (tried.size === 0) throw this.noReplica(model);
    if (timedOut)
      throw new HttpError(504, 'upstream_timeout', `every replica tried timed out: ${lastError}`, 'api_error');
    throw new HttpError(502, 'upstream_failed', `every replica tried failed: ${lastError}`, 'api_error');
  }

  /**
   * Whether a request of `model`, which has no ready replica, should wait for one: one is coming
   * within the queue's deadline (from the service's measured start time, when known). One is
   * coming when a group of the model is on its way to Ready (starting, rolling, recreated after a
   * failure, or Ready on the platform but not yet here), as in the moment a rollout hands over
   * from one group to the next; or when the model is autoscaled (asked here to scale up at once).
   */
  private startingFor(model: string): boolean {
    const entry = this.options.source.models().find((m) => m.id === model);
    if (!entry) return false;
    if (entry.autoscaled) for (const listener of this.demandListeners) listener(model);
    const coming = this.options.source.groups().some((g) => g.model === model && COMING.has(g.phase));
    if (!coming && !entry.autoscaled) return false;
    const now = Date.now();
    const readyAt = expectedReady(entry, now);
    return readyAt === undefined || readyAt <= now + (this.options.admission ?? DEFAULT_ADMISSION).queueTimeoutMs;
  }

  /** 503: no replica of `model` is ready; Retry-After is when the first should be, from its measured startup time. */
  private noReplica(model: string): HttpError {
    const entry = this.options.source.models().find((m) => m.id === model);
    const now = Date.now();
    const readyAt = entry && expectedReady(entry, now);
    const retryAfterS = readyAt === undefined ? RETRY_AFTER_S : Math.max(1, Math.ceil((readyAt - now) / 1000));
    return new HttpError(503, 'no_ready_replica', `no replica of '${model}' is ready yet`, 'service_unavailable', {
      'retry-after': String(retryAfterS),
    });
  }

  /** Ends a response cut short: a stream with an OpenAI error event, anything else by closing it. */
  private endStream(res: ServerResponse, why: string, context: RequestContext): void {
    if (res.destroyed) return;
    if (context.eventStream) {
      res.end(`\ndata: ${JSON.stringify(errorBody('upstream_failed', why, 'api_error'))}\n\n`);
    } else {
      res.destroy();
    }
  }

  /**
   * Passes the upstream response through, chunk by chunk, as it arrives (a resumable stream's
   * events as `stream` rewrites them). Returns why the replica failed mid-response, if it did.
   */
  private async relay(
    res: ServerResponse,
    upstream: UpstreamResponse,
    backend: Backend,
    model: string,
    timing: { started: number; last: number },
    key: KeyEntry | undefined,
    stream: ResumableStream | undefined,
    context: RequestContext,
  ): Promise<string | undefined> {
    const type = upstream.header('content-type') ?? 'application/json';
    const streaming = type.startsWith('text/event-stream');
    const continuing = res.headersSent;
    if (!continuing) {
      const headers: Record<string, string> = { 'x-request-id': context.requestId, 'x-tandem-backend': backend.id };
      for (const h of PASSED_HEADERS) {
        const value = upstream.header(h);
        if (value !== undefined) headers[h] = value;
      }
      headers['content-type'] = type;
      if (streaming) {
        headers['cache-control'] = 'no-cache';
        headers['x-accel-buffering'] = 'no';
        context.eventStream = true;
      }
      res.writeHead(upstream.statusCode, headers);
      // A stream's headers go at once; a whole answer's go with its body, in one write.
      if (streaming) res.flushHeaders();
    }
    const rewrite = streaming && upstream.statusCode === 200 ? stream : undefined;
    const watched = streaming && upstream.statusCode === 200;
    let flowing = false;
    // The answer's end, where engines put `usage` (a whole JSON body, or a stream's last events).
    const tail = new UsageTail();
    const write = (data: Buffer | string): boolean => {
      if (upstream.statusCode === 200) tail.push(typeof data === 'string' ? Buffer.from(data) : data);
      return res.write(data);
    };
    try {
      // Each chunk is passed on as undici hands it over: no promise per chunk.
      await upstream.read((chunk) => {
        if (watched) {
          this.observeTokens(chunk, model, timing);
          if (flowing) this.liveness.progressed(backend.id, this.clock());
          else {
            flowing = true;
            this.liveness.flowing(backend.id, this.clock());
          }
        }
        const out = rewrite ? rewrite.relay(chunk, continuing) : chunk;
        if (out.length > 0 && !write(out) && !res.destroyed) {
          // A client that stops reading and then leaves never sends 'drain': 'close' ends the wait too.
          void drainOrClose(res).then(() => upstream.resume());
          return false;
        }
        if (res.destroyed) upstream.cancel(new Error('the client went away')); // the rest is not read
        return true;
      });
      if (rewrite) write(rewrite.flush(continuing));
    } catch (err) {
      if (res.destroyed) return undefined;
      this.breakers.failed(backend.id, this.clock());
      this.metrics.requests.inc({ model, replica: backend.id, status: 'failed_mid_response' });
      return isTimeout(err) ? timeoutMessage(err, this.timeouts) : (err as Error).message;
    } finally {
      if (flowing) this.liveness.ended(backend.id);
    }
    if (upstream.statusCode === 200 && asksEngine(backend)) this.liveness.answered(backend.id, this.clock());
    this.metrics.requests.inc({ model, replica: backend.id, status: String(upstream.statusCode) });
    const usage = upstream.statusCode === 200 ? tail.usage() : undefined;
    if (usage) {
      this.metrics.tokens.inc({ model, kind: 'prompt' }, usage.prompt_tokens);
      this.metrics.tokens.inc({ model, kind: 'completion' }, usage.completion_tokens ?? 0);
      if (key) this.options.keys!.charge(key, usage.prompt_tokens + (usage.completion_tokens ?? 0), Date.now());
    }
    res.end();
    return undefined;
  }

  /** Time to first token and between tokens, from the events a chunk starts. */
  private observeTokens(chunk: Buffer, model: string, timing: { started: number; last: number }): void {
    // Events can arrive several to a chunk: the gap since the last chunk is shared among them.
    const events = countEvents(chunk);
    if (events === 0) return;
    const now = performance.now();
    if (timing.last === 0) this.metrics.timeToFirstToken.observe({ model }, (now - timing.started) / 1000);
    const gaps = timing.last === 0 ? events - 1 : events;
    const gap = timing.last === 0 ? 0 : (now - timing.last) / 1000 / events;
    for (let i = 0; i < gaps; i++) this.metrics.interTokenLatency.observe({ model }, gap);
    timing.last = now;
  }

  /**
   * Takes out every replica that went silent with streams flowing: its answers are cut (streams go
   * on elsewhere), its platform told; and puts back those seen not ready since (recreated) or gone.
   */
  private checkLiveness(backends: Backend[]): void {
    for (const id of this.unresponsive) {
      const b = backends.find((x) => x.id === id);
      if (!b || !b.ready) this.unresponsive.delete(id);
    }
    // A llama-server replica with requests in flight: is its engine still making progress? (Its
    // /slots answers even while a worker hangs, with counters that no longer move.)
    // One whose answer ended since the last look progressed: it is not asked (under load, asking
    // was a request of the gateway's own per replica and look, with a JSON body to parse).
    const asked = new Set<string>();
    const now = this.clock();
    for (const b of backends) {
      if (!asksEngine(b) || !b.ready || this.unresponsive.has(b.id) || !this.outstanding.get(b.id)) continue;
      asked.add(b.id);
      if (this.asking.has(b.id) || this.liveness.movedAfter(b.id, this.lastLook)) continue;
      this.asking.add(b.id);
      // Through the replica's own pool: fetch() and its abort timer cost the gateway more CPU than
      // the answers it relays between two looks (profiles of bench:peers).
      this.pool(b.url)
        .request({ path: '/slots', method: 'GET', headersTimeout: 2000, bodyTimeout: 2000 })
        .then(async ({ statusCode, body }) =>
          statusCode === 200 ? slotsProgress(await body.json()) : void (await body.dump()),
        )
        .then(
          (progress) => this.liveness.engineSays(b.id, progress, this.clock()),
          () => undefined, // no answer says nothing new: the counters it last gave stand
        )
        .finally(() => this.asking.delete(b.id));
    }
    this.liveness.keepEngines(asked);
    this.lastLook = now;
    for (const { id, silentMs } of this.liveness.unresponsive(now)) {
      if (this.unresponsive.has(id)) continue;
      this.unresponsive.add(id);
      this.liveness.forget(id);
      const model = backends.find((b) => b.id === id)?.model ?? '';
      this.metrics.unresponsive.inc({ model, replica: id });
      this.metrics.unresponsiveDetection.observe({ model }, silentMs / 1000);
      const why = new Error(
        `replica ${id} sent nothing for ${(silentMs / 1000).toFixed(1)} s with streams flowing: unresponsive`,
      );
      for (const cut of this.answering.get(id) ?? []) cut(why);
      for (const listener of this.unresponsiveListeners) listener(id, silentMs);
    }
  }

  private pool(url: string): Pool {
    let pool = this.pools.get(url);
    if (!pool) {
      // A new leader address: forget the pools of leaders that are gone (deleted or moved groups).
      const current = new Set(this.options.source.backends().map((b) => b.url));
      for (const [old, p] of this.pools) {
        if (current.has(old)) continue;
        this.pools.delete(old);
        void p.close().catch(() => {});
      }
      pool = new Pool(url, {
        connections: 128,
        // Below the 5 s after which llama-server and uvicorn close idle connections.
        keepAliveTimeout: 4_000,
        connect: { timeout: this.timeouts.connectMs },
        headersTimeout: this.timeouts.firstByteMs,
        bodyTimeout: this.timeouts.idleMs,
      });
      this.pools.set(url, pool);
    }
    return pool;
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown, requestId: string): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.setHeader('x-request-id', requestId);
    if (err instanceof HttpError) {
      this.metrics.errors.inc({ status: String(err.status), code: err.code });
      json(res, err.status, errorBody(err.code, err.message, err.type), err.headers);
    } else {
      this.metrics.errors.inc({ status: '500', code: 'internal_error' });
      json(res, 500, errorBody('internal_error', err instanceof Error ? err.message : String(err), 'api_error'));
    }
    // A body we refused to read (413) is not read to its end: the connection closes after the answer.
    if (!req.complete) res.once('finish', () => req.socket.destroySoon());
  }
}

/** Whether liveness asks the replica's engine what it is doing (llama-server's /slots). */
function asksEngine(b: Backend): boolean {
  return b.tokenIds === 'llama-server';
}

/** Server-sent events that start in a chunk (`data:` at a line's start). */
function countEvents(chunk: Buffer): number {
  let n = chunk.subarray(0, 5).equals(DATA) ? 1 : 0;
  for (let i = chunk.indexOf(NEWLINE_DATA); i >= 0; i = chunk.indexOf(NEWLINE_DATA, i + 1)) n++;
  return n;
}
const DATA = Buffer.from('data:');
const NEWLINE_DATA = Buffer.from('\ndata:');

function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve();
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function isTimeout(err: unknown): boolean {
  return (
    err instanceof errors.ConnectTimeoutError ||
    err instanceof errors.HeadersTimeoutError ||
    err instanceof errors.BodyTimeoutError
  );
}

function timeoutMessage(err: unknown, t: UpstreamTimeouts): string {
  if (err instanceof errors.ConnectTimeoutError) return `no connection within ${t.connectMs} ms`;
  if (err instanceof errors.HeadersTimeoutError) return `no response within ${t.firstByteMs} ms`;
  return `nothing received for ${t.idleMs} ms`;
}

function errorBody(code: string, message: string, type = 'invalid_request_error') {
  return { error: { message, type, param: null, code } };
}

const CONTROL_PREFIX = '/api/v1';
/** InferenceService documents: small, but a file may hold many. */
const CONTROL_BODY_LIMIT = 4 * 2 ** 20;

const isLoopback = (address: string | undefined) =>
  address !== undefined && (/^(::ffff:)?127\./.test(address) || address === '::1');

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads the whole body, refusing (413) as soon as it passes the limit, without reading the rest. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = (what: string) => {
    req.pause();
    return new HttpError(413, 'request_too_large', `${what} is over the limit of ${limit} bytes`, undefined, {
      connection: 'close',
    });
  };
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.reject(tooLarge(`the request body of ${declared} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        reject(tooLarge('the request body'));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    // The client went away mid-body: nobody is left to answer.
    req.on('error', () => reject(new HttpError(400, 'client_aborted', 'the client closed the connection mid-request')));
  });
}
