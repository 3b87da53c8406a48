// One gateway fuzz session: two real one-node llama.cpp groups behind an in-process gateway (so
// that prefix routing and stream continuation act, as they do by default), fuzzed,
// then checked: no request outstanding, no client connection left, descriptors back to the start.
import { scrape, startServices, tinySpec, localGateway } from '../helpers.js';
import { fuzzGateway } from './gateway-fuzz.js';
import { connectionsOn, openDescriptors } from './sockets.js';

export interface SessionResult {
  cases: number;
  byKind: Record<string, number>;
  outstanding: number;
  /** Answers of 500 internal_error: a bug the gateway caught, not a client's mistake. */
  internalErrors: number;
  clientConnections: number;
  descriptorsBefore: number;
  descriptorsAfter: number;
}

export async function gatewayFuzzSession(seed: number, count: number): Promise<SessionResult> {
  const running = await startServices([tinySpec('fuzz', { parallelism: { nodes: 1 }, replicas: 2 })]);
  const gateway = localGateway(running.reconciler, { host: '127.0.0.1', port: 0, bodyLimit: 1024 * 1024 });
  try {
    await gateway.listen();
    const port = Number(new URL(gateway.url).port);
    const leaderPorts = running.reconciler.snapshot()[0]!.groups.map((g) => g.leader.port);
    const model = 'fuzz-model';
    await scrape(gateway.url); // warm: one-time descriptors (prom-client, the first connection)
    await new Promise((r) => setTimeout(r, 200));
    // Upstream keep-alive connections are the pool's to keep: they are not counted as leaks.
    const descriptors = () => openDescriptors() - leaderPorts.reduce((n, p) => n + connectionsOn(p, 'remote'), 0);
    const before = descriptors();
    const { cases, byKind } = await fuzzGateway(port, model, seed, count);
    let outstanding = 0;
    let internalErrors = 0;
    let clientConnections = 0;
    let after = 0;
    for (let i = 0; i < 100; i++) {
      const metrics = await scrape(gateway.url);
      outstanding = Object.entries(metrics)
        .filter(([k]) => k.startsWith('tandem_gateway_outstanding_requests'))
        .reduce((sum, [, v]) => sum + v, 0);
      internalErrors = metrics['tandem_gateway_errors_total{status="500",code="internal_error"}'] ?? 0;
      await new Promise((r) => setTimeout(r, 100)); // the scrape's own connection closes
      clientConnections = connectionsOn(port, 'local');
      after = descriptors();
      if (outstanding === 0 && clientConnections === 0 && after <= before) break;
    }
    return {
      cases,
      byKind,
      outstanding,
      internalErrors,
      clientConnections,
      descriptorsBefore: before,
      descriptorsAfter: after,
    };
  } finally {
    await gateway.close();
    await running.stop();
  }
}
