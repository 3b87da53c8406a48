// The gateway: one OpenAI-compatible endpoint in front of every group. Requests are routed by
// their body's `model` to a ready replica (least outstanding requests first); responses, server-
// sent events included, are passed through chunk by chunk. Node's http on the client side and
// undici pools (keep-alive) towards the leaders: nothing else on the hot path.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { pickBackend, type Backend, type ModelEntry } from './backends.js';

export const DEFAULT_BODY_LIMIT = 4 * 1024 * 1024;
const ROUTED = new Set(['/v1/chat/completions', '/v1/completions', '/v1/embeddings']);
/** Seconds a client should wait before retrying when no replica is ready. */
const RETRY_AFTER_S = 2;

export interface GatewayOptions {
  host: string;
  port: number;
  bodyLimit?: number;
  /** Current backends and models; called per request, so it must be cheap. */
  backends: () => Backend[];
  models: () => ModelEntry[];
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
  private readonly server: Server;
  private readonly pools = new Map<string, Pool>();
  private readonly outstanding = new Map<string, number>();
  private readonly lastPicked = new Map<string, number>();
  private picks = 0;
  /** Requests answered per backend id (for tests and status). */
  readonly served = new Map<string, number>();

  constructor(private readonly options: GatewayOptions) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
    this.server.keepAliveTimeout = 65_000;
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

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET' && path === '/healthz') return json(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') {
      const models = this.options.models();
      const ready = models.length > 0 && models.every((m) => m.readyReplicas > 0);
      return json(res, ready ? 200 : 503, { ready, models });
    }
    if (req.method === 'GET' && path === '/v1/models') {
      const created = Math.floor(Date.now() / 1000);
      const data = this.options.models().map((m) => ({
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
    if (!this.options.models().some((m) => m.id === model)) {
      throw new HttpError(404, 'model_not_found', `the model '${model}' does not exist`);
    }
    const candidates = this.options.backends().filter((b) => b.model === model);
    await this.forward(req, res, path, body, model, candidates);
  }

  /** Sends the request to a ready replica; a failure before the first byte is retried once elsewhere. */
  private async forward(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    body: Buffer,
    model: string,
    candidates: Backend[],
  ): Promise<void> {
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort(); // the client went away: stop the generation upstream
    });
    const tried = new Set<string>();
    let lastError = '';
    for (let attempt = 0; attempt < 2; attempt++) {
      const backend = pickBackend(candidates, this.outstanding, this.lastPicked, tried);
      if (!backend) break;
      tried.add(backend.id);
      this.lastPicked.set(backend.id, ++this.picks);
      this.outstanding.set(backend.id, (this.outstanding.get(backend.id) ?? 0) + 1);
      try {
        let upstream: Dispatcher.ResponseData;
        try {
          upstream = await this.pool(backend.url).request({
            path,
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: req.headers.accept ?? '*/*' },
            body,
            signal: abort.signal,
          });
        } catch (err) {
          if (abort.signal.aborted) return;
          lastError = `${backend.id}: ${(err as Error).message}`;
          continue;
        }
        if (upstream.statusCode === 503 && attempt === 0) {
          await upstream.body.dump();
          lastError = `${backend.id}: HTTP 503`;
          continue;
        }
        await this.relay(res, upstream, backend);
        return;
      } finally {
        this.outstanding.set(backend.id, (this.outstanding.get(backend.id) ?? 1) - 1);
      }
    }
    if (tried.size === 0) {
      throw new HttpError(503, 'no_ready_replica', `no replica of '${model}' is ready yet`, 'service_unavailable', {
        'retry-after': String(RETRY_AFTER_S),
      });
    }
    throw new HttpError(502, 'upstream_failed', `every replica tried failed: ${lastError}`, 'api_error');
  }

  /** Passes the upstream response through, chunk by chunk, as it arrives. */
  private async relay(res: ServerResponse, upstream: Dispatcher.ResponseData, backend: Backend): Promise<void> {
    const type = String(upstream.headers['content-type'] ?? 'application/json');
    const streaming = type.startsWith('text/event-stream');
    res.writeHead(upstream.statusCode, {
      'content-type': type,
      'x-tandem-backend': backend.id,
      ...(streaming ? { 'cache-control': 'no-cache', 'x-accel-buffering': 'no' } : {}),
    });
    res.flushHeaders();
    try {
      for await (const chunk of upstream.body) {
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
      }
    } catch (err) {
      if (res.destroyed) return;
      // The replica failed mid-response: end a stream with an OpenAI error event, cut anything else.
      if (streaming) {
        res.end(
          `data: ${JSON.stringify(errorBody('upstream_failed', `replica ${backend.id} failed mid-stream: ${(err as Error).message}`, 'api_error'))}\n\n`,
        );
      } else {
        res.destroy();
      }
      return;
    }
    this.served.set(backend.id, (this.served.get(backend.id) ?? 0) + 1);
    res.end();
  }

  private pool(url: string): Pool {
    let pool = this.pools.get(url);
    if (!pool) {
      pool = new Pool(url, { connections: 128, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
      this.pools.set(url, pool);
    }
    return pool;
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) {
      json(res, err.status, errorBody(err.code, err.message, err.type), err.headers);
    } else {
      json(res, 500, errorBody('internal_error', (err as Error).message ?? String(err), 'api_error'));
    }
  }
}

function errorBody(code: string, message: string, type = 'invalid_request_error') {
  return { error: { message, type, param: null, code } };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads the whole body, refusing (413) as soon as it passes the limit. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    return Promise.reject(
      new HttpError(413, 'request_too_large', `request body of ${declared} bytes is over the limit of ${limit}`),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new HttpError(413, 'request_too_large', `request body is over the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
