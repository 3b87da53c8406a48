// What the gateway serves from and what the autoscaler scales through, whichever platform runs
// the groups: each platform provides a BackendSource and a ScaleTarget; the gateway is a LoadSource.
import type { StreamTokenIds } from './service.js';

export interface Backend {
  /** "service/replica" */
  id: string;
  model: string;
  /** The group leader's base URL. */
  url: string;
  ready: boolean;
  /** Requests it is sent at once (admitted()); more wait in the gateway's queue. None: no limit. */
  slots?: number;
  /** Requests its engine runs at once (its slots); those beyond wait in the engine's own queue. */
  engineSlots?: number;
  /**
   * Its engine runs on GPUs: a request in a free slot joins the running batch at little cost to the
   * others. On CPUs each slot's work takes from the others' nearly as if queued behind them.
   */
  accelerated?: boolean;
  /**
   * Its engine's cached prompt serves one request at a time (llama-server's slots take theirs out
   * of its prompt cache while they run): a second request of a prefix in use there starts cold.
   */
  exclusiveCache?: boolean;
  /** How its streams report token ids; none: they are continued from their text. */
  tokenIds?: StreamTokenIds;
}

export interface ModelEntry {
  id: string;
  replicas: number;
  readyReplicas: number;
  /** While none is ready: when the first should be (ms), from the service's measured startup time. */
  readyAt?: number;
  /** How long its groups take from creation to Ready (measured): when none is starting, readyAt is now + this. */
  startupMs?: number;
  /** An autoscaler owns its replicas: with none ready, requests wait for one (scale from zero). */
  autoscaled?: boolean;
}

/**
 * Requests a replica is sent at once: four times its engine's slots. Those beyond the slots wait at
 * the engine, which refills a slot the moment one frees (a round trip through the gateway left a
 * quarter of the engine's time unused with short requests); only load beyond that waits in the
 * gateway's queue, where each request costs the gateway a dispatch of its own as a slot frees
 * (bench:peers at concurrency 32: about 100 µs of CPU per request more than sending it on, and a
 * higher p50). The one rule every backend source applies, so it lives with the contract.
 */
export function admitted(slots: number): number {
  return slots * 4;
}

/** What the gateway's metrics say of each group. */
export interface GroupMetric {
  service: string;
  model: string;
  replica: number;
  phase: string;
  restarts: number;
}

/** What the gateway's metrics say of each service: replicas wanted (an autoscaler's, or the spec's) and ready. */
export interface ServiceMetric {
  service: string;
  model: string;
  desired: number;
  ready: number;
  /** When an autoscaler last changed `desired` (ms). */
  lastScaleAt?: number;
}

/** Where the gateway reads what it serves; each call answers from memory, at once. */
export interface BackendSource {
  backends(): Backend[];
  models(): ModelEntry[];
  groups(): GroupMetric[];
  services?(): ServiceMetric[];
}

/** What a gateway has in hand, for its peers' autoscalers: per model, and per replica. */
export interface LoadReport {
  models: Record<string, { requests: number; queued: number }>;
  /** Requests each replica ("service/replica") is serving. */
  serving: Record<string, number>;
}

/** What the autoscaler needs of a gateway. */
export interface LoadSource {
  load(model: string): { requests: number; queued: number };
  /** Requests a replica ("service/replica") is serving. */
  serving(id: string): number;
  /** These replicas take no new request, as far as `owner` (default: the autoscaler) has its say. */
  retire(ids: Iterable<string>, owner?: string): void;
}

/** Where the autoscaler's decisions take effect, and what it needs to know of the groups. */
export interface ScaleTarget {
  scale(service: string, from: number, to: number, reason: string): void;
  /** Draining and other steps worth an event. */
  note(service: string, reason: string, message: string): void;
  /** The service's measured time from creating a group to Ready. */
  startupMs(service: string): number | undefined;
  /** The groups ("service/replica") that exist now. */
  groups(): Set<string>;
}

/** One model over one interval of the gateway's serving history (the dashboard's charts). */
export interface HistoryPoint {
  /** End of the interval (ms). */
  at: number;
  requestsPerS: number;
  /** Requests answered with an error (an engine's status ≥ 400, or cut off mid-response). */
  errorsPerS: number;
  outputTokensPerS: number;
  /** Time to first token (s) of the streams that began in the interval; absent when none did. */
  ttftP50?: number;
  ttftP90?: number;
  queued: number;
}
