// Readiness probes of the embedded default's members, against node:http servers on loopback that
// behave as engines do: close a kept-alive connection after some requests (llama-server after 100),
// drop one, answer 503 while loading, or are not there at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Prober } from '../../src/platforms/local/probe.js';

async function serve(handler: RequestListener): Promise<{ server: Server; port: number; connections: () => number }> {
  const server = createServer(handler);
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections };
}

const healthy: RequestListener = (_req, res) => res.end('{"status":"ok"}');

/** Runs `body` with an HTTP prober of a server answering with `handler`; both closed after. */
async function probing(
  handler: RequestListener,
  body: (prober: Prober, server: Server, connections: () => number) => Promise<void>,
): Promise<void> {
  const { server, port, connections } = await serve(handler);
  const prober = new Prober({ host: '127.0.0.1', port }, { kind: 'http', path: '/health' });
  try {
    await body(prober, server, connections);
  } finally {
    prober.close();
    server.close();
  }
}

test('an HTTP probe keeps its connection, and opens a new one only where the server closed the last', async () => {
  await probing(healthy, async (prober, server, connections) => {
    server.maxRequestsPerSocket = 5; // as llama-server's 100, sooner
    for (let i = 0; i < 30; i++) assert.equal(await prober.check(), true);
    // Through an undici Agent, every probe after the first close opened a connection (22 of 30).
    assert.equal(connections(), 6);
  });
});

test('a kept-alive connection dropped as it is reused is not the member failing', async () => {
  let requests = 0;
  const dropSecond: RequestListener = (req, res) => {
    if (++requests === 2) return req.socket.destroy(); // the second request, on the first's connection
    healthy(req, res);
  };
  await probing(dropSecond, async (prober) => {
    assert.equal(await prober.check(), true);
    assert.equal(await prober.check(), true);
    assert.equal(requests, 3);
  });
});

test('an HTTP probe fails on anything but 200, on nothing listening, and once closed', async () => {
  let status = 503;
  const { server, port } = await serve((_req, res) => {
    res.statusCode = status;
    res.end();
  });
  const prober = new Prober({ host: '127.0.0.1', port }, { kind: 'http', path: '/health' });
  try {
    assert.equal(await prober.check(), false);
    status = 200;
    assert.equal(await prober.check(), true);
    prober.close();
    assert.equal(await prober.check(), false);
  } finally {
    server.close();
  }
  await new Promise((resolve) => server.once('close', resolve));
  const nobody = new Prober({ host: '127.0.0.1', port }, { kind: 'http', path: '/health' });
  assert.equal(await nobody.check(), false);
  nobody.close();
});

test('a TCP probe succeeds while something listens, and a process without a probe is ready', async () => {
  const { server, port } = await serve(healthy);
  const tcp = new Prober({ host: '127.0.0.1', port }, { kind: 'tcp' });
  assert.equal(await tcp.check(), true);
  server.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.once('close', resolve));
  assert.equal(await tcp.check(), false);
  assert.equal(await new Prober({ host: '127.0.0.1', port }, { kind: 'running' }).check(), true);
});
