// Requests to the API server with plain JSON bodies. client-node's typed calls pass every body
// through its model serializer, which keeps only the fields its models know (a pod field newer
// than the library, a CRD's fields) and names some differently (`_from`): objects built here are
// sent exactly as built, and the API server validates them.
import { Agent, request } from 'node:https';
import { request as plainRequest, type RequestOptions } from 'node:http';
import type { ConnectionOptions } from 'node:tls';
import type * as k8s from '@kubernetes/client-node';

/** An API error as client-node reports one: the HTTP status in `code`, the Status body as text. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${code}${statusMessage(body)}`);
  }
}

function statusMessage(body: string): string {
  try {
    const message = (JSON.parse(body) as { message?: string }).message;
    return message ? `: ${message}` : '';
  } catch {
    return '';
  }
}

export type PatchType = 'merge' | 'apply';

const CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  apply: 'application/apply-patch+yaml',
};

export class RawApi {
  private readonly server: string;
  /**
   * One keep-alive agent for every request: client-node makes a new agent per call, so each request
   * would open a TLS connection of its own (the operator's CPU went mostly to TLS handshakes).
   */
  private agent?: Agent;

  constructor(private readonly kc: k8s.KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig names no cluster');
    this.server = cluster.server.replace(/\/$/, '');
  }

  create<T>(path: string, body: unknown, query = ''): Promise<T> {
    return this.send<T>('POST', `${path}${query}`, JSON.stringify(body), 'application/json');
  }

  patch<T>(path: string, body: unknown, type: PatchType = 'merge', query = ''): Promise<T> {
    return this.send<T>('PATCH', `${path}${query}`, JSON.stringify(body), CONTENT_TYPES[type]);
  }

  /** PUT: the whole object, replacing what is there (its resourceVersion, if given, must still be current). */
  replace<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>('PUT', path, JSON.stringify(body), 'application/json');
  }

  delete(path: string): Promise<unknown> {
    return this.send('DELETE', path);
  }

  get<T>(path: string): Promise<T> {
    return this.send<T>('GET', path);
  }

  private async send<T>(method: string, path: string, body?: string, contentType?: string): Promise<T> {
    const options: RequestOptions & { headers: Record<string, string> } = {
      method,
      headers: { accept: 'application/json', ...(contentType ? { 'content-type': contentType } : {}) },
      timeout: 30_000,
    };
    await this.kc.applyToHTTPSOptions(options);
    const url = new URL(`${this.server}${path}`);
    // A cluster reached through a proxy keeps client-node's agent, which knows how to use it.
    if (url.protocol === 'https:' && !this.kc.getCurrentCluster()?.proxyUrl) {
      const { ca, cert, key, rejectUnauthorized, servername } = options as RequestOptions & ConnectionOptions;
      // At most 64 connections: requests beyond them queue (each costs TLS buffers).
      this.agent ??= new Agent({ keepAlive: true, maxSockets: 64, ca, cert, key, rejectUnauthorized, servername });
      options.agent = this.agent;
    }
    const send = url.protocol === 'https:' ? request : plainRequest;
    return new Promise<T>((resolve, reject) => {
      const req = send(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) resolve((text ? JSON.parse(text) : undefined) as T);
          else reject(new ApiError(code, text, `${method} ${url.pathname}`));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname}: no answer in 30 s`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
