// A circuit breaker per replica: after `failures` failures in a row (refused, timed out before the
// first byte, a 5xx other than 503, cut off mid-response) a replica is taken out of rotation for a
// cooldown; then one request probes it. A success closes the breaker; a failed probe opens it
// again for twice as long, up to `maxCooldownMs`. Time comes from the caller: decisions are pure.
export interface BreakerOptions {
  failures: number;
  cooldownMs: number;
  maxCooldownMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failures: 3, cooldownMs: 5_000, maxCooldownMs: 60_000 };

interface State {
  failures: number;
  openUntil: number;
  cooldownMs: number;
  probing: boolean;
}

export class Breakers {
  private readonly states = new Map<string, State>();

  constructor(private readonly options: BreakerOptions = DEFAULT_BREAKER) {}

  /** Whether a request may go to `id` at `now`: closed, or due for its one probe. */
  allows(id: string, now: number): boolean {
    const s = this.states.get(id);
    return !s || s.openUntil === 0 || (now >= s.openUntil && !s.probing);
  }

  /** A request goes to `id`: when its breaker is open (and due), this one is the probe. */
  taken(id: string): void {
    const s = this.states.get(id);
    if (s && s.openUntil > 0) s.probing = true;
  }

  succeeded(id: string): void {
    this.states.delete(id);
  }

  failed(id: string, now: number): void {
    const s = this.states.get(id) ?? { failures: 0, openUntil: 0, cooldownMs: this.options.cooldownMs, probing: false };
    s.failures++;
    if (s.probing) {
      s.cooldownMs = Math.min(this.options.maxCooldownMs, s.cooldownMs * 2);
      s.openUntil = now + s.cooldownMs;
      s.probing = false;
    } else if (s.openUntil === 0 && s.failures >= this.options.failures) {
      s.openUntil = now + s.cooldownMs;
    }
    this.states.set(id, s);
  }

  /** Forgets the replicas not in `ids` (gone from the source). */
  retain(ids: ReadonlySet<string>): void {
    for (const id of this.states.keys()) if (!ids.has(id)) this.states.delete(id);
  }

  /** Replicas out of rotation (open, probing or not). */
  open(): string[] {
    return [...this.states].filter(([, s]) => s.openUntil > 0).map(([id]) => id);
  }
}
