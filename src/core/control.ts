// The control API's contract, the same on both platforms: list, get, apply, delete and scale
// services, and read their events. Plain data and one error type; no behaviour.
import type { ServiceEvent } from './group.js';
import type { ServiceSnapshot } from './snapshot.js';

/** A service as the control API shows it: the spec as applied, and what runs. */
export interface ServiceRecord {
  name: string;
  spec: unknown;
  status?: ServiceSnapshot;
  /** Set while the service drains before it stops. */
  deleting?: boolean;
}

/** What an apply did to each service it named. */
export interface Applied {
  name: string;
  /** created; rolling: a new template, its groups replaced one by one; updated: a change that recreates nothing. */
  result: 'created' | 'rolling' | 'updated' | 'unchanged';
}

/** Answered at once (the embedded default holds everything) or once the API server has (Kubernetes). */
type Awaitable<T> = T | Promise<T>;

export interface ControlPlane {
  list(): Awaitable<ServiceRecord[]>;
  get(name: string): Awaitable<ServiceRecord | undefined>;
  /** Validates every document first: one problem refuses them all and changes nothing. */
  apply(documents: unknown[]): Promise<Applied[]>;
  /** Takes it out of service: no new request for it, then its groups stop. */
  delete(name: string): Awaitable<void>;
  scale(name: string, replicas: number): Awaitable<void>;
  events(): Awaitable<ServiceEvent[]>;
  /** A member's log, line by line: its last `tail` lines (all when absent), then, following, new ones until `signal`. */
  log(name: string, member: MemberLogRef, signal: AbortSignal): AsyncIterable<string>;
}

export interface MemberLogRef {
  replica: number;
  /** 0: the leader. */
  member: number;
  tail?: number;
  follow: boolean;
}

/** A refusal, with the HTTP status it is answered with and, for a refused spec, every problem. */
export class ControlError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 422,
    readonly code: string,
    message: string,
    readonly problems: string[] = [],
  ) {
    super(message);
  }
}

/** 422: a refused apply, every problem listed; nothing was changed. */
export function specRefused(problems: string[]): ControlError {
  return new ControlError(
    422,
    'invalid_spec',
    `${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing was changed`,
    problems,
  );
}

/** One control API request, as the gateway hands it over once it has admitted the caller. */
export interface ControlRequest {
  method: string;
  /** Below /api/v1, e.g. "/services/chat". */
  path: string;
  query: URLSearchParams;
  body: Buffer;
  contentType?: string;
  /** Aborted when the caller goes away. */
  signal: AbortSignal;
}

/** A JSON answer, or lines sent as server-sent events (one `data:` event each) until they end. */
export type ControlAnswer = { status: number; body: unknown } | { status: 200; events: AsyncIterable<string> };

export type ControlHandler = (request: ControlRequest) => Promise<ControlAnswer>;

/** A file the gateway serves as it is (the dashboard's). */
export interface StaticFile {
  contentType: string;
  body: Buffer;
}
