// The gateway's Prometheus metrics (GET /metrics), in a registry of its own so that several
// gateways in one process never mix their counts.
import { readdirSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, type CounterConfiguration } from 'prom-client';
import type { GroupMetric, ServiceMetric } from '../core/serving.js';

/** What the gateway's metrics say of each group. */
export type { GroupMetric, ServiceMetric };

/**
 * A counter added to on every request: the counts are kept in Maps, one level per label, walked by
 * the label values, and handed to prom-client when the counter is read (scrapes, the history).
 * prom-client's own inc() hashes and checks the labels each time, several times per request, and
 * a key string made of the values per inc() cost most of what is left (profiles of bench:peers).
 */
export class Tally<L extends string> {
  private readonly pending: Level<L> = new Map();
  private readonly counter: Counter<L>;
  private readonly names: readonly L[];

  constructor(config: CounterConfiguration<L> & { labelNames: readonly L[] }) {
    this.names = config.labelNames;
    const handOver = (add: (labels: Record<L, string>, n: number) => void) => {
      this.drain(this.pending, 0, add);
      this.pending.clear();
    };
    this.counter = new Counter({
      ...config,
      collect() {
        handOver((labels, n) => this.inc(labels, n));
      },
    });
  }

  inc(labels: Record<L, string>, n = 1): void {
    let level = this.pending;
    const last = this.names.length - 1;
    for (let i = 0; i < last; i++) {
      const value = labels[this.names[i]!];
      let next = level.get(value) as Level<L> | undefined;
      if (!next) level.set(value, (next = new Map()));
      level = next;
    }
    const value = labels[this.names[last]!];
    const p = level.get(value) as Pending<L> | undefined;
    if (p) p.n += n;
    else level.set(value, { labels, n });
  }

  get(): ReturnType<Counter<L>['get']> {
    return this.counter.get();
  }

  private drain(level: Level<L>, depth: number, add: (labels: Record<L, string>, n: number) => void): void {
    for (const entry of level.values()) {
      if (depth === this.names.length - 1) add((entry as Pending<L>).labels, (entry as Pending<L>).n);
      else this.drain(entry as Level<L>, depth + 1, add);
    }
  }
}

interface Pending<L extends string> {
  labels: Record<L, string>;
  n: number;
}
type Level<L extends string> = Map<string, Level<L> | Pending<L>>;

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new Tally({
    name: 'tandem_gateway_requests_total',
    help: 'Requests relayed to a replica, by model, replica and upstream status (failed_mid_response: cut off)',
    labelNames: ['model', 'replica', 'status'],
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'tandem_gateway_retries_total',
    help: 'Requests sent to a second replica after the first failed before its first byte',
    labelNames: ['model'],
    registers: [this.registry],
  });
  readonly failovers = new Counter({
    name: 'tandem_gateway_stream_failovers_total',
    help: 'Streams continued on another replica after theirs failed mid-stream',
    labelNames: ['model'],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'tandem_gateway_errors_total',
    help: 'Requests the gateway answered with an error itself, by status and error code',
    labelNames: ['status', 'code'],
    registers: [this.registry],
  });

  readonly keyRequests = new Tally({
    name: 'tandem_gateway_key_requests_total',
    help: 'Requests admitted, by API key name',
    labelNames: ['key'],
    registers: [this.registry],
  });
  readonly keyDenials = new Counter({
    name: 'tandem_gateway_key_denials_total',
    help: 'Requests refused for their API key: missing or invalid (401), model not allowed (403), rate limit (429)',
    labelNames: ['code'],
    registers: [this.registry],
  });

  // Engines send one server-sent event per token (llama-server, vLLM): a streamed response's first
  // chunk is its first token, the gaps between chunks the gaps between tokens.
  readonly timeToFirstToken = new Histogram({
    name: 'tandem_gateway_time_to_first_token_seconds',
    help: 'Streamed requests: from the request to the first event relayed (retries included)',
    labelNames: ['model'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly interTokenLatency = new Histogram({
    name: 'tandem_gateway_inter_token_latency_seconds',
    help: 'Streamed requests: the gap between two events relayed',
    labelNames: ['model'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly unresponsive = new Counter({
    name: 'tandem_gateway_unresponsive_total',
    help: 'Replicas taken out because nothing came from them for the unresponsive timeout while their streams were flowing (a hung member); their groups are recreated',
    labelNames: ['model', 'replica'],
    registers: [this.registry],
  });
  readonly unresponsiveDetection = new Histogram({
    name: 'tandem_gateway_unresponsive_detection_seconds',
    help: 'How long an unresponsive replica had been silent when it was taken out',
    labelNames: ['model'],
    buckets: [1, 2, 5, 10, 15, 20, 30, 60],
    registers: [this.registry],
  });

  readonly tokens = new Tally({
    name: 'tandem_gateway_tokens_total',
    help: "Tokens in (prompt) and out (completion), as the engines' usage reports them",
    labelNames: ['model', 'kind'],
    registers: [this.registry],
  });
  readonly prefixHits = new Tally({
    name: 'tandem_gateway_prefix_hits_total',
    help: 'Requests routed to the replica that served their prompt prefix last',
    labelNames: ['model'],
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: 'tandem_gateway_queue_wait_seconds',
    help: 'Requests that waited for a slot: how long',
    labelNames: ['model'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  constructor(
    outstanding: () => ReadonlyMap<string, number>,
    groups: () => GroupMetric[] = () => [],
    queued: (model: string) => number = () => 0,
    open: () => string[] = () => [],
    services: () => ServiceMetric[] = () => [],
  ) {
    new Gauge({
      name: 'tandem_gateway_circuit_open',
      help: 'Replicas out of rotation after failing in a row (1), until a probe succeeds',
      labelNames: ['replica'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const replica of open()) this.set({ replica }, 1);
      },
    });
    new Gauge({
      name: 'tandem_gateway_queued_requests',
      help: 'Requests waiting for a slot, by model',
      labelNames: ['model'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const model of new Set([...services(), ...groups()].map((g) => g.model)))
          this.set({ model }, queued(model));
      },
    });
    new Gauge({
      name: 'tandem_group_phase',
      help: "Each group's phase: 1 for the phase it is in (Pending, Starting, Ready, Recreating, BackingOff, Updating, Failed, Deleting)",
      labelNames: ['service', 'replica', 'phase'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const g of groups()) this.set({ service: g.service, replica: String(g.replica), phase: g.phase }, 1);
      },
    });
    new Gauge({
      name: 'tandem_group_restarts',
      help: 'Times each group was recreated whole',
      labelNames: ['service', 'replica'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const g of groups()) this.set({ service: g.service, replica: String(g.replica) }, g.restarts);
      },
    });
    new Gauge({
      name: 'tandem_service_replicas',
      help: "Each service's replicas: desired (the autoscaler's count, or spec.replicas) and ready",
      labelNames: ['service', 'state'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of services()) {
          this.set({ service: s.service, state: 'desired' }, s.desired);
          this.set({ service: s.service, state: 'ready' }, s.ready);
        }
      },
    });
    new Gauge({
      name: 'tandem_autoscaler_last_scale_timestamp_seconds',
      help: "When the autoscaler last changed a service's replicas (Unix time)",
      labelNames: ['service'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of services()) if (s.lastScaleAt) this.set({ service: s.service }, s.lastScaleAt / 1000);
      },
    });
    // The process's own footprint under prom-client's default names, read at scrape time only (its
    // collectDefaultMetrics would add GC observers and an event-loop timer for every gateway).
    const footprint = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    footprint('process_resident_memory_bytes', 'Resident memory size in bytes', () => process.memoryUsage.rss());
    footprint(
      'nodejs_heap_size_used_bytes',
      'Process heap size used from Node.js in bytes',
      () => process.memoryUsage().heapUsed,
    );
    footprint(
      'nodejs_heap_size_total_bytes',
      'Process heap size from Node.js in bytes',
      () => process.memoryUsage().heapTotal,
    );
    footprint('process_open_fds', 'Number of open file descriptors', () => openDescriptors());
    new Gauge({
      name: 'tandem_gateway_outstanding_requests',
      help: 'Requests in flight per replica',
      labelNames: ['replica'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [replica, n] of outstanding()) this.set({ replica }, n);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Open descriptors, from /proc (NaN where there is none). */
function openDescriptors(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return NaN;
  }
}
