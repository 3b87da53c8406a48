// The load of every gateway serving the same services, for the autoscaler of each: on Kubernetes
// `tandem install` runs two gateways, each with half of the requests, and a decision on one
// gateway's own load asked for half the replicas needed. Each gateway reports what it has in hand
// (LoadReport); this adds the reports its peers last sent to its own. A report older than
// `staleMs` no longer counts: a gateway gone takes its load with it.
import type { LoadReport, LoadSource } from '../core/serving.js';

export class SharedLoad implements LoadSource {
  private readonly peers = new Map<string, { report: LoadReport; at: number }>();

  constructor(
    private readonly local: LoadSource,
    private readonly now: () => number,
    private readonly staleMs = 5_000,
  ) {}

  /** What the peer at `address` has in hand now. */
  update(address: string, report: LoadReport): void {
    this.peers.set(address, { report, at: this.now() });
  }

  /** The peers whose reports count now. */
  fresh(): string[] {
    const now = this.now();
    for (const [address, { at }] of this.peers) if (now - at > this.staleMs) this.peers.delete(address);
    return [...this.peers.keys()];
  }

  load(model: string): { requests: number; queued: number } {
    const total = { ...this.local.load(model) };
    for (const address of this.fresh()) {
      const theirs = this.peers.get(address)!.report.models[model];
      total.requests += theirs?.requests ?? 0;
      total.queued += theirs?.queued ?? 0;
    }
    return total;
  }

  serving(id: string): number {
    let n = this.local.serving(id);
    for (const address of this.fresh()) n += this.peers.get(address)!.report.serving[id] ?? 0;
    return n;
  }

  retire(ids: Iterable<string>, owner?: string): void {
    this.local.retire(ids, owner);
  }
}
