// The autoscaler's executor: once a second (and at once when a request finds no replica) it samples
// each autoscaled service's load from the gateway, asks decide.ts for the replica count, and has the
// reconciler scale to it. A scale-down drains first: the groups that will go take no new request,
// and they are removed once they serve none (or after `drainTimeoutMs`), so no stream is cut.
import type { Reconciler } from '../runtime/reconciler.js';
import type { ServiceTemplate } from '../runtime/service-template.js';
import { decideReplicas, type Autoscaling, type LoadSample, type ScalingState } from './decide.js';

/** What the autoscaler needs of a gateway. */
export interface LoadSource {
  load(model: string): { requests: number; queued: number };
  /** Requests a replica ("service/replica") is serving. */
  serving(id: string): number;
  /** These replicas take no new request; the others do. */
  retire(ids: Iterable<string>): void;
}

export interface AutoscalerOptions {
  intervalMs?: number;
  /** The longest a group being removed is left to finish what it serves. */
  drainTimeoutMs?: number;
}

interface Scaled {
  name: string;
  model: string;
  config: Autoscaling;
  samples: LoadSample[];
  state: ScalingState;
  /** A scale-down waiting for the groups it removes (`retiring`) to finish their requests. */
  draining?: { to: number; reason: string; state: ScalingState; since: number };
  retiring?: string[];
  /** Groups a scale-down removed, until the reconciler has deleted them. */
  removed?: string[];
}

export class Autoscaler {
  private readonly services = new Map<string, Scaled>();
  private timer?: NodeJS.Timeout;
  private readonly intervalMs: number;
  private readonly drainTimeoutMs: number;

  constructor(
    private readonly reconciler: Reconciler,
    private readonly gateway: LoadSource,
    options: AutoscalerOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 600_000;
  }

  /** Takes over an autoscaled service's replicas (starting at initialReplicas); others are left alone. */
  manage(template: ServiceTemplate): ServiceTemplate {
    const config = template.autoscaling;
    if (!config) return template;
    this.services.set(template.name, {
      name: template.name,
      model: template.servedName,
      config,
      samples: [],
      state: { replicas: config.initialReplicas },
    });
    return { ...template, replicas: config.initialReplicas };
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.gateway.retire([]);
  }

  /** A request of `model` found no replica ready: look now rather than at the next tick. */
  demand(model: string): void {
    for (const s of this.services.values()) if (s.model === model && s.state.replicas === 0) this.step(s, Date.now());
  }

  private tick(): void {
    const now = Date.now();
    for (const s of this.services.values()) this.step(s, now);
  }

  private step(s: Scaled, now: number): void {
    const load = this.gateway.load(s.model);
    s.samples.push({ at: now, ...load });
    while (s.samples.length > 0 && s.samples[0]!.at < now - s.config.lookBackMs) s.samples.shift();
    if (s.draining) return this.drain(s, s.draining, now, load.requests);

    const startupMs = this.reconciler.snapshot().find((x) => x.name === s.name)?.startupMs;
    const decision = decideReplicas(s.config, s.state, {
      now,
      samples: s.samples,
      ...(startupMs === undefined ? {} : { startupMs }),
    });
    if (decision.replicas < s.state.replicas) {
      const draining = { to: decision.replicas, reason: decision.reason!, state: decision.state, since: now };
      s.draining = draining;
      this.reconciler.note(
        s.name,
        'Draining',
        `${s.state.replicas} → ${draining.to} replicas once the groups going have finished their requests: ${draining.reason}`,
      );
      return this.drain(s, draining, now, load.requests);
    }
    if (decision.replicas > s.state.replicas) {
      s.removed = [];
      this.reconciler.scale(s.name, decision.replicas, decision.reason!);
    }
    s.state = decision.state;
    this.retire();
  }

  /** Removes the draining groups once they serve nothing; more load than the smaller count takes keeps them. */
  private drain(s: Scaled, draining: NonNullable<Scaled['draining']>, now: number, requests: number): void {
    const going = Array.from({ length: s.state.replicas - draining.to }, (_, i) => `${s.name}/${draining.to + i}`);
    if (requests > draining.to * s.config.target) {
      s.draining = undefined;
    } else if (going.every((id) => this.gateway.serving(id) === 0) || now - draining.since >= this.drainTimeoutMs) {
      this.reconciler.scale(s.name, draining.to, draining.reason);
      s.state = draining.state;
      s.draining = undefined;
      s.removed = going; // until the reconciler has deleted them
    } else s.retiring = going;
    this.retire();
  }

  /** Groups draining, or removed but not yet gone, take no new request. */
  private retire(): void {
    const present = new Set(
      this.reconciler.snapshot().flatMap((svc) => svc.groups.map((g) => `${svc.name}/${g.replica}`)),
    );
    const ids = [...this.services.values()].flatMap((s) => [
      ...(s.draining ? (s.retiring ?? []) : []),
      ...(s.removed ?? []).filter((id) => present.has(id)),
    ]);
    this.gateway.retire(ids);
  }
}
