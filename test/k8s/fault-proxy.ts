// A TLS-terminating proxy in front of the test API server that, while faulty, answers some requests
// with 429 or 500, resets some connections, delays some answers and cuts some watches mid-stream.
// Requests pass through with their own credentials (a bearer token), so the client behind it acts as
// its own user. Faults are drawn from a seeded generator: a failing run can be replayed.
import { createServer, type Server } from 'node:https';
import { request, Agent } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selfSignedCertificate } from './cluster.js';
import { mulberry32 } from '../../src/util/random.js';

export const FAULTS = ['429', '500', 'reset', 'slow', 'cut watch'] as const;
export type Fault = (typeof FAULTS)[number];

export interface FaultProxy {
  /** https://127.0.0.1:port */
  url: string;
  /** The proxy's serving certificate, PEM, for the client's kubeconfig. */
  ca: Buffer;
  /** Turning faults on cuts every open watch (as an API server restart would). */
  faulty: boolean;
  /** How long to hold a request before it goes on, faulty or not (ms; 0 passes it at once). */
  hold?: (req: IncomingMessage) => number;
  /** Faults injected so far, by kind. */
  injected: Record<Fault, number>;
  /** The last requests, each with what met it: for a failing test's message. */
  recent: string[];
  close(): Promise<void>;
}

/**
 * Starts the proxy for `upstream` (the API server's URL, whose CA is `upstreamCa`). While `faulty`,
 * each request meets a fault with probability `rate`, of the kind that has struck least; a watch
 * that passes is cut after 0.5–3 s.
 */
export async function startFaultProxy(
  upstream: string,
  upstreamCa: Buffer,
  options: { seed: number; rate: number },
): Promise<FaultProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-fault-proxy-'));
  selfSignedCertificate(dir, 'tandem-fault-proxy');
  const target = new URL(upstream);
  const agent = new Agent({ ca: upstreamCa, keepAlive: true });
  const random = mulberry32(options.seed);
  const injected = Object.fromEntries(FAULTS.map((f) => [f, 0])) as Record<Fault, number>;
  const timers = new Set<NodeJS.Timeout>();
  const recent: string[] = [];
  const watches = new Set<() => void>();
  let faulty = false;
  const later = (ms: number, f: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      f();
    }, ms);
    timers.add(t);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, cutAfterMs?: number) => {
    const watch = /[?&]watch=(true|1)\b/.test(req.url ?? '');
    const upstreamReq = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
        agent,
      },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        res.flushHeaders(); // a watch's headers come before any event: the client waits for them
        upstreamRes.pipe(res);
        if (!watch) return;
        const cut = () => {
          if (res.destroyed) return;
          injected['cut watch']++;
          upstreamRes.destroy();
          res.destroy();
        };
        watches.add(cut);
        res.on('close', () => watches.delete(cut));
        if (cutAfterMs !== undefined) later(cutAfterMs, cut);
      },
    );
    upstreamReq.on('error', () => res.destroy());
    res.on('close', () => upstreamReq.destroy());
    req.pipe(upstreamReq);
  };

  const status = (res: ServerResponse, code: number, reason: string, headers: Record<string, string> = {}) => {
    res.writeHead(code, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, code, message: reason }));
  };

  const server: Server = createServer(
    { key: readFileSync(join(dir, 'tls.key')), cert: readFileSync(join(dir, 'tls.crt')) },
    (req, res) => {
      const watch = /[?&]watch=(true|1)\b/.test(req.url ?? '');
      const note = (what: string) => {
        recent.push(`${new Date().toISOString()} ${req.method} ${req.url}: ${what}`);
        if (recent.length > 40) recent.shift();
      };
      const held = proxy.hold?.(req) ?? 0;
      if (held > 0) return (note(`held ${held} ms`), later(held, () => forward(req, res)));
      if (!faulty) return (note('passed'), forward(req, res));
      if (random() >= options.rate) {
        const cut = watch ? 500 + random() * 2500 : undefined;
        note(cut ? `passed, cut after ${Math.round(cut)} ms` : 'passed');
        return forward(req, res, cut);
      }
      // The kind that has struck least, so every kind strikes soon even when, converged, the
      // operator sends little more than its lease (CI once saw 'reset' twice in two minutes).
      const kinds = FAULTS.filter((f) => f !== 'cut watch');
      const fewest = Math.min(...kinds.map((f) => injected[f]));
      const least = kinds.filter((f) => injected[f] === fewest);
      const fault = least[Math.floor(random() * least.length)]!;
      injected[fault]++;
      note(fault);
      if (fault === '429') return status(res, 429, 'TooManyRequests', { 'retry-after': '1' });
      if (fault === '500') return status(res, 500, 'InternalError');
      if (fault === 'reset') return req.socket.destroy();
      later(1000 + random() * 2000, () => forward(req, res));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: FaultProxy = {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    ca: readFileSync(join(dir, 'ca.crt')),
    get faulty() {
      return faulty;
    },
    set faulty(on: boolean) {
      faulty = on;
      if (on) for (const cut of [...watches]) cut();
    },
    injected,
    recent,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      agent.destroy();
    },
  };
  return proxy;
}
