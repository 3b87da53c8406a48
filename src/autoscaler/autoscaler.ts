// The autoscaler's executor, one for both platforms: once a second (and at once when a request
// finds no replica) it samples each autoscaled service's load from the gateway, asks decide.ts for
// the replica count, and scales its target to it: the reconciler on the embedded default, KEDA on
// Kubernetes (keda.ts reports the count, KEDA's HPA applies it). A scale-down drains first: the
// groups that will go take no new request, and the count drops once they serve none (or after
// `drainTimeoutMs`), so no stream is cut.
import type { ServiceTemplate } from '../core/service.js';
import type { LoadSource, ScaleTarget } from '../core/serving.js';
import { decideReplicas, type Autoscaling, type LoadSample, type ScalingState } from './decide.js';

export type { LoadSource, ScaleTarget };

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
    private readonly target: ScaleTarget,
    private readonly gateway: LoadSource,
    options: AutoscalerOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 600_000;
  }

  /**
   * Takes over an autoscaled service's replicas, from `current` (default initialReplicas); others are
   * left alone. Again for a service it has: its settings change, its load and state stay.
   */
  manage(template: ServiceTemplate, current?: number): ServiceTemplate {
    const config = template.autoscaling;
    if (!config) {
      this.services.delete(template.name);
      return template;
    }
    const known = this.services.get(template.name);
    if (known) {
      known.config = config;
      known.model = template.servedName;
      return { ...template, replicas: known.state.replicas };
    }
    const replicas = current ?? config.initialReplicas;
    this.services.set(template.name, {
      name: template.name,
      model: template.servedName,
      config,
      samples: [],
      state: { replicas },
    });
    return { ...template, replicas };
  }

  /** Manages exactly these services (a cluster's objects), each from its current replicas. */
  sync(templates: ServiceTemplate[]): void {
    const live = new Set(templates.map((t) => t.name));
    for (const name of this.services.keys()) if (!live.has(name)) this.services.delete(name);
    for (const t of templates) this.manage(t, t.replicas);
  }

  /** The replica count a service should have now, for a target that reports it (KEDA). */
  desired(name: string): number | undefined {
    return this.services.get(name)?.state.replicas;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.gateway.retire([]);
  }

  /**
   * A request of `model` found no replica ready: look now rather than at the next tick, at zero and
   * while the first groups start alike, so a burst is seen whole even when it is served before the
   * next tick. The look is not kept as a sample: the window stays one sample per tick.
   */
  demand(model: string): void {
    const waiting = [...this.services.values()].filter((s) => s.model === model);
    if (waiting.length === 0) return;
    for (const s of waiting) this.step(s, Date.now(), false);
    this.retire();
  }

  private tick(): void {
    const now = Date.now();
    for (const s of this.services.values()) this.step(s, now);
    this.retire();
  }

  private step(s: Scaled, now: number, record = true): void {
    const load = this.gateway.load(s.model);
    const sample = { at: now, ...load };
    if (record) s.samples.push(sample);
    while (s.samples.length > 0 && s.samples[0]!.at < now - s.config.lookBackMs) s.samples.shift();
    if (s.draining) return this.drain(s, s.draining, now, load.requests);

    const startupMs = this.target.startupMs(s.name);
    const decision = decideReplicas(s.config, s.state, {
      now,
      samples: record ? s.samples : [...s.samples, sample],
      ...(startupMs === undefined ? {} : { startupMs }),
    });
    if (decision.replicas < s.state.replicas) {
      const draining = { to: decision.replicas, reason: decision.reason!, state: decision.state, since: now };
      s.draining = draining;
      this.target.note(
        s.name,
        'Draining',
        `${s.state.replicas} → ${draining.to} replicas once the groups going have finished their requests: ${draining.reason}`,
      );
      return this.drain(s, draining, now, load.requests);
    }
    const from = s.state.replicas;
    s.state = decision.state;
    if (decision.replicas > from) {
      s.removed = [];
      this.target.scale(s.name, from, decision.replicas, decision.reason!);
    }
  }

  /** Removes the draining groups once they serve nothing; more load than the smaller count takes keeps them. */
  private drain(s: Scaled, draining: NonNullable<Scaled['draining']>, now: number, requests: number): void {
    const going = Array.from({ length: s.state.replicas - draining.to }, (_, i) => `${s.name}/${draining.to + i}`);
    if (requests > draining.to * s.config.target) {
      s.draining = undefined;
    } else if (going.every((id) => this.gateway.serving(id) === 0) || now - draining.since >= this.drainTimeoutMs) {
      const from = s.state.replicas;
      s.state = draining.state;
      s.draining = undefined;
      this.target.scale(s.name, from, draining.to, draining.reason);
      s.removed = going; // until the reconciler has deleted them
    } else s.retiring = going;
  }

  /** Groups draining, or removed but not yet gone, take no new request (once per look at every service). */
  private retire(): void {
    const present = this.target.groups();
    const ids = [...this.services.values()].flatMap((s) => [
      ...(s.draining ? (s.retiring ?? []) : []),
      ...(s.removed ?? []).filter((id) => present.has(id)),
    ]);
    this.gateway.retire(ids);
  }
}
