// The embedded default's GroupDrain: a group about to roll takes no new request in the gateway and
// rolls once it serves none (or after the drain time), so its requests finish where they are
// instead of continuing elsewhere. Once the reconciler shows it no longer Ready (its new incarnation
// starting), the gateway may route to it again: to that new incarnation, when it is Ready.
import type { Reconciler } from '../../controller/reconciler.js';
import type { GroupDrain } from '../../core/group.js';
import type { LoadSource } from '../../core/serving.js';

export class RolloutDrain implements GroupDrain {
  /** Draining groups, since when. */
  private readonly since = new Map<string, number>();
  /** Drained groups whose rollout has begun, until the snapshot shows them gone from service. */
  private readonly leaving = new Set<string>();

  constructor(
    private readonly gateway: () => Pick<LoadSource, 'serving' | 'retire'>,
    reconciler: Reconciler,
    private readonly drainMs: number,
    private readonly now: () => number = Date.now,
  ) {
    reconciler.on('tick', (service) => {
      const groups = reconciler.service(service)?.groups ?? [];
      for (const id of this.leaving) {
        if (!id.startsWith(`${service}/`)) continue;
        const replica = Number(id.slice(service.length + 1));
        if (groups.find((g) => g.replica === replica)?.phase === 'Ready') continue;
        this.leaving.delete(id);
        this.publish();
      }
    });
  }

  drained(group: string): boolean {
    const now = this.now();
    const since = this.since.get(group);
    if (since === undefined) {
      this.since.set(group, now);
      this.publish();
    }
    if (this.gateway().serving(group) > 0 && now - (since ?? now) < this.drainMs) return false;
    this.since.delete(group);
    this.leaving.add(group);
    return true;
  }

  private publish(): void {
    this.gateway().retire([...this.since.keys(), ...this.leaving], 'rollout');
  }
}
