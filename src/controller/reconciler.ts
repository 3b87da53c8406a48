// The executor: one work queue per service, level-triggered. A pass reads everything it decides on
// afresh through its ports: the planner state from the store, every member from the platform's
// cache, and every wanted group's group-level objects, which it ensures (re-made within the pass
// when they went). It asks the planners (service-plan.ts, group-plan.ts) for the next steps,
// persists the group statuses they lead to, then carries the steps out without waiting for them
// to finish (deletes only start). It runs again when the platform reports a change, when a
// back-off or deadline it computed comes due, or after a resync; one service's slow or failing pass
// never holds up another's. Nothing lives only here but what is shown (events, measured starts):
// a restarted reconciler carries on from what it observes.
import { EventEmitter } from 'node:events';
import { planGroup, type GroupDecision } from './group-plan.js';
import { planService, type ObservedGroup } from './service-plan.js';
import type { ServiceTemplate } from '../core/service.js';
import type {
  EventSink,
  GroupRef,
  GroupStatus,
  GroupTemplate,
  ObservedMember,
  GroupDrain,
  Platform,
  StatusStore,
} from '../core/group.js';
import type { GroupSnapshot, MemberState, ServiceSnapshot, ScaleDecision } from '../core/snapshot.js';

/** How often a group draining for a rollout is looked at. */
const DRAIN_LOOK_MS = 250;

export interface ReconcilerOptions {
  /** Look at each service at least this often, change or not (deadlines are scheduled exactly). */
  resyncMs?: number;
  /** Wait before retrying a pass that failed (an API error): doubles up to 30 s. */
  retryBaseMs?: number;
  /** Passes running at once, across services (controller-runtime's MaxConcurrentReconciles). */
  concurrency?: number;
  /** The clock decisions read (ms since the epoch). */
  now?: () => number;
}

/** What a reconciler reads and writes through: the platform, the planner state's store, the events' sink. */
export interface ReconcilerPorts {
  platform: Platform;
  store: StatusStore;
  events: EventSink;
  /** Moves traffic off a Ready group before it rolls; without one, a rollout cuts what it serves. */
  drain?: GroupDrain;
}

interface ServiceState {
  template: ServiceTemplate;
  /** Each group's rendered template and the endpoints it was rendered for. */
  rendered: Map<number, { endpoints: string; template: GroupTemplate }>;
  groups: Map<number, GroupSnapshot>;
  /** Per group, the member uids of the incarnation whose first Ready was counted (a flap is not a start). */
  counted: Map<number, string>;
  /** The last few groups' times from creation to Ready (ms). */
  startups: number[];
  lastScale?: ScaleDecision;
  snapshot?: ServiceSnapshot;
  dirty: boolean;
  running?: Promise<void>;
  timer?: NodeJS.Timeout;
  dueAt?: number;
  errors: number;
}

/** `tick`: after every pass, the name of the service it was for (read it with `service()`). */
export class Reconciler extends EventEmitter<{ tick: [string] }> {
  private readonly services = new Map<string, ServiceState>();
  private started = false;
  private stopping = false;
  private readonly platform: Platform;
  private readonly store: StatusStore;
  private readonly events: EventSink;
  private readonly drain?: GroupDrain;
  private readonly resyncMs: number;
  private readonly retryBaseMs: number;
  private readonly concurrency: number;
  private readonly now: () => number;
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(ports: ReconcilerPorts, options: ReconcilerOptions = {}) {
    super();
    ({ platform: this.platform, store: this.store, events: this.events, drain: this.drain } = ports);
    this.resyncMs = options.resyncMs ?? 30_000;
    this.retryBaseMs = options.retryBaseMs ?? 1000;
    this.concurrency = options.concurrency ?? 16;
    this.now = options.now ?? Date.now;
    this.platform.onChange((service) => this.enqueue(service));
  }

  /** Adds a service or changes it (a new template hash rolls its groups; replicas scale them). */
  apply(template: ServiceTemplate): void {
    const state = this.services.get(template.name);
    if (state) {
      state.template = template;
      state.rendered.clear(); // policies outside the hash (timeouts, failurePolicy) are in what render() returns
    } else
      this.services.set(template.name, {
        template,
        rendered: new Map(),
        groups: new Map(),
        counted: new Map(),
        startups: [],
        dirty: false,
        errors: 0,
      });
    this.enqueue(template.name);
  }

  /** An autoscaler's decision: the service's replicas become `replicas` (its template is kept). */
  scale(name: string, replicas: number, reason: string): void {
    const state = this.services.get(name);
    if (!state || state.template.replicas === replicas) return;
    state.lastScale = { at: this.now(), from: state.template.replicas, to: replicas, reason };
    this.record(
      name,
      undefined,
      replicas > state.template.replicas ? 'ScaledUp' : 'ScaledDown',
      `${state.lastScale.from} → ${replicas} replicas: ${reason}`,
    );
    state.template = { ...state.template, replicas };
    this.enqueue(name);
  }

  /** Stops managing a service and leaves its members as they are (its owner deletes them). */
  forget(name: string): void {
    const state = this.services.get(name);
    if (!state) return;
    clearTimeout(state.timer);
    this.services.delete(name);
    this.emit('tick', name);
  }

  start(): void {
    this.started = true;
    for (const name of this.services.keys()) this.enqueue(name);
  }

  /** Stops reconciling and leaves every member running: a new reconciler picks them up. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const s of this.services.values()) clearTimeout(s.timer);
    await Promise.all([...this.services.values()].map((s) => s.running));
  }

  /** Scales every service to zero, waits until no member is left, then stops. */
  async teardown(): Promise<void> {
    const empty = () => [...this.services.values()].every((s) => s.groups.size === 0);
    const done = new Promise<void>((resolve) => {
      const check = () => {
        if (!empty()) return;
        this.off('tick', check);
        resolve();
      };
      this.on('tick', check);
    });
    for (const s of this.services.values()) this.apply({ ...s.template, replicas: 0 });
    this.start();
    if (!empty()) await done;
    await this.stop();
  }

  /** Every service's view. */
  snapshot(): ServiceSnapshot[] {
    return [...this.services.values()].map((state) => (state.snapshot ??= serviceSnapshot(state)));
  }

  /** One service's view, as its last pass left it. */
  service(name: string): ServiceSnapshot | undefined {
    const state = this.services.get(name);
    return state && (state.snapshot ??= serviceSnapshot(state));
  }

  private enqueue(name: string, delayMs = 0): void {
    const state = this.services.get(name);
    if (!state || !this.started || this.stopping) return;
    if (delayMs > 0) {
      const due = Date.now() + delayMs;
      if (state.dueAt !== undefined && state.dueAt <= due) return;
      clearTimeout(state.timer);
      state.dueAt = due;
      state.timer = setTimeout(() => {
        state.dueAt = undefined;
        this.enqueue(name);
      }, delayMs);
      return;
    }
    state.dirty = true;
    state.running ??= this.work(state);
  }

  private async work(state: ServiceState): Promise<void> {
    const name = state.template.name;
    while (state.dirty && !this.stopping && this.services.get(name) === state) {
      state.dirty = false;
      let next: number;
      // A slot first: a thousand services at once would only meet the API server's 429s.
      if (this.active < this.concurrency) this.active++;
      else await new Promise<void>((resolve) => this.waiting.push(resolve)); // handed a slot
      try {
        next = await this.pass(state);
        state.errors = 0;
      } catch (err) {
        if ((err as { conflict?: boolean }).conflict) {
          next = CONFLICT_RETRY_MS; // the store moved on since this pass read it: read again
        } else {
          state.errors++;
          next = Math.min(this.retryBaseMs * 2 ** (state.errors - 1), 30_000);
          this.record(
            name,
            undefined,
            'ReconcileError',
            `reconcile failed (retrying in ${next} ms): ${(err as Error).message}`,
            true,
          );
        }
      } finally {
        const waiter = this.waiting.shift();
        if (waiter) waiter();
        else this.active--;
      }
      state.snapshot = undefined;
      this.emit('tick', name);
      this.enqueue(name, next);
    }
    // Cleared here, not in a .finally after it: an enqueue between the loop's end and that would be lost.
    state.running = undefined;
  }

  /** One pass over a service; returns how soon it needs another look without any change. */
  private async pass(state: ServiceState): Promise<number> {
    const { template } = state;
    const name = template.name;
    const statuses = await this.store.load(name);
    const observed = await this.platform.observe(name);
    const now = this.now();
    const byReplica = new Map<number, ObservedMember[]>();
    for (const m of observed) {
      const members = byReplica.get(m.replica);
      if (members) members.push(m);
      else byReplica.set(m.replica, [m]);
    }
    const present = new Set([...byReplica.keys(), ...Object.keys(statuses).map(Number)]);

    // First look: each group's decision as it stands; its phase is what the service planner needs.
    const templates = new Map<number, GroupTemplate>();
    const decisions = new Map<number, GroupDecision>();
    const groups: ObservedGroup[] = [];
    const kept = (replica: number) => replica < template.replicas + template.rollout.maxSurge;
    await this.groupTemplates(state, [...present].filter(kept), templates);
    for (const replica of present) {
      const members = byReplica.get(replica) ?? [];
      if (!kept(replica)) {
        groups.push({ replica, phase: 'Ready', ...hashOf(members) }); // going whatever its phase
        continue;
      }
      const t = templates.get(replica)!;
      const decision = planGroup(t, members, statuses[replica] ?? { restarts: 0 }, now);
      decisions.set(replica, decision);
      groups.push({ replica, phase: decision.phase, ...hashOf(members) });
    }
    const plan = planService(template.replicas, template.hash, template.rollout, groups);
    // A Ready group rolls once drained: no new request goes to it, and those it serves finish.
    const draining: number[] = [];
    const roll = plan.roll.filter((replica) => {
      if (!this.drain || decisions.get(replica)?.phase !== 'Ready' || this.drain.drained(`${name}/${replica}`))
        return true;
      draining.push(replica);
      return false;
    });

    const next: Record<number, GroupStatus> = {};
    const actions: (() => Promise<void>)[] = [];
    // Nothing tells when a draining group's last request ends: look again soon.
    let wake = draining.length > 0 ? Math.min(this.resyncMs, DRAIN_LOOK_MS) : this.resyncMs;
    await this.groupTemplates(state, plan.wanted, templates);
    for (const replica of plan.wanted) {
      const ref: GroupRef = { service: name, replica };
      const t = templates.get(replica)!;
      const members = byReplica.get(replica) ?? [];
      // Planned again only when it may now roll; a group new to this pass has no first look.
      const first = decisions.get(replica);
      const decision =
        first && !roll.includes(replica)
          ? first
          : planGroup(t, members, statuses[replica] ?? { restarts: 0 }, now, roll.includes(replica));
      next[replica] = decision.status;
      this.recordTransitions(state, replica, t, members, decision, now);
      state.groups.set(replica, groupSnapshot(replica, decision.phase, t, members, decision.status));
      const creates = decision.steps.flatMap((s) => (s.kind === 'create' ? [s.index] : []));
      if (creates.length > 0) actions.push(() => this.createMembers(ref, t, creates));
      for (const step of decision.steps) {
        if (step.kind === 'delete') {
          for (const index of step.indices) actions.push(() => this.platform.delete(ref, index));
        }
      }
      wake = Math.min(wake, dueIn(t, members, decision.status, now));
    }
    const shownOnly = [...state.groups.keys()].filter((r) => !present.has(r) && !plan.wanted.includes(r));
    for (const replica of [...plan.remove, ...shownOnly]) {
      const ref: GroupRef = { service: name, replica };
      const members = byReplica.get(replica) ?? [];
      if (members.length === 0) {
        actions.push(() => this.platform.releaseGroup(ref));
        state.rendered.delete(replica);
        state.counted.delete(replica);
        if (state.groups.delete(replica)) this.record(name, replica, 'GroupDeleted', 'group deleted');
        continue;
      }
      const shown = state.groups.get(replica);
      if (shown) state.groups.set(replica, { ...shown, phase: 'Deleting' });
      for (const m of members.filter((m) => !m.terminating)) actions.push(() => this.platform.delete(ref, m.index));
    }

    // Persist first: a failure is on record before its members go, so a crash in between counts it once.
    if (JSON.stringify(next) !== JSON.stringify(statuses)) await this.store.save(name, next);
    const results = await Promise.allSettled(actions.map((a) => a()));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) throw new Error(failed.map((r) => (r.reason as Error).message).join('; '));
    return Math.max(wake, 10);
  }

  /** Creates members: a leader among them first, the others once it exists. */
  private async createMembers(ref: GroupRef, t: GroupTemplate, indices: number[]): Promise<void> {
    const create = (index: number) =>
      this.platform.create(
        ref,
        t.members.find((m) => m.index === index)!,
        t.hash,
      );
    if (indices.includes(0)) await create(0);
    await Promise.all(indices.filter((i) => i !== 0).map(create));
  }

  /** Events for what a decision changed, and the start time of an incarnation's first Ready. */
  private recordTransitions(
    state: ServiceState,
    replica: number,
    t: GroupTemplate,
    members: ObservedMember[],
    decision: GroupDecision,
    now: number,
  ): void {
    const name = state.template.name;
    const previous = state.groups.get(replica);
    if (!previous && members.length === 0) this.record(name, replica, 'GroupCreated', 'group created');
    if (decision.failure) {
      const wait = (decision.status.backoffUntil ?? now) - now;
      const what = t.restartPolicy === 'RecreateGroupOnPodRestart' ? 'the whole group' : 'the failed member(s)';
      this.record(
        name,
        replica,
        decision.status.failed ? 'GroupFailed' : 'GroupRecreating',
        decision.status.failed
          ? `${decision.failure}: group Failed: ${decision.status.failed.reason}`
          : `${decision.failure}: recreating ${what} in ${wait} ms (restart ${decision.status.restarts})`,
        true,
      );
    }
    const current = members.filter((m) => m.templateHash === t.hash && !m.terminating);
    const incarnation = current
      .map((m) => m.uid)
      .sort()
      .join(',');
    if (!previous) {
      // First sight (a restarted reconciler): a group already Ready started before it looked.
      if (decision.phase === 'Ready') state.counted.set(replica, incarnation);
      return;
    }
    if (previous.phase === decision.phase) return;
    if (decision.phase === 'Ready') {
      this.record(name, replica, 'GroupReady', 'group ready');
      // A start's length: from its members' creation (not a rollout's old members') to their first
      // Ready; Ready again after a probe missed is the same incarnation, not a start.
      const created = oldest(current);
      if (created !== undefined && state.counted.get(replica) !== incarnation) {
        state.counted.set(replica, incarnation);
        state.startups.push(now - created);
        if (state.startups.length > KEPT_STARTUPS) state.startups.shift();
      }
    }
    if (decision.phase === 'Updating')
      this.record(name, replica, 'GroupRolling', `rolling group to template ${t.hash}`);
  }

  /** The templates of `replicas` not in `into` yet, their groups' objects ensured at once. */
  private async groupTemplates(
    state: ServiceState,
    replicas: number[],
    into: Map<number, GroupTemplate>,
  ): Promise<void> {
    const missing = replicas.filter((r) => !into.has(r));
    const made = await Promise.all(missing.map((r) => this.groupTemplate(state, r)));
    missing.forEach((r, i) => into.set(r, made[i]!));
  }

  /** A group's rendered template: its group-level objects ensured, rendered again when its endpoints change. */
  private async groupTemplate(state: ServiceState, replica: number): Promise<GroupTemplate> {
    const ref: GroupRef = { service: state.template.name, replica };
    const endpoints = await this.platform.ensureGroup(ref, {
      size: state.template.size,
      isolated: state.template.isolated === true,
    });
    const key = JSON.stringify(endpoints);
    const known = state.rendered.get(replica);
    if (known?.endpoints === key) return known.template;
    const rendered = state.template.render(ref, endpoints);
    state.rendered.set(replica, { endpoints: key, template: rendered });
    return rendered;
  }

  /**
   * The gateway found a group unresponsive (its streams stopped with no word from it: a member
   * hung): its members go, and the group is recreated whole as for any lost member.
   */
  async unresponsive(service: string, replica: number, message: string, seenAt = this.now()): Promise<void> {
    if (!this.services.has(service)) return;
    // Only members that were there when it was seen: a report read again (an operator restarted,
    // say) finds the recreated group newer than itself and leaves it.
    const members = (await this.platform.observe(service)).filter(
      (m) => m.replica === replica && !m.terminating && m.createdAt <= seenAt,
    );
    if (members.length === 0) return;
    this.record(service, replica, 'Unresponsive', message, true);
    await Promise.allSettled(members.map((m) => this.platform.delete({ service, replica }, m.index)));
    this.enqueue(service);
  }

  /** An event about a service from outside the reconciler (the autoscaler's), beside its own. */
  note(service: string, reason: string, message: string): void {
    this.record(service, undefined, reason, message);
  }

  private record(service: string, replica: number | undefined, reason: string, message: string, warning = false): void {
    this.events.record({
      at: this.now(),
      service,
      ...(replica === undefined ? {} : { replica }),
      reason,
      ...(warning ? { warning } : {}),
      message,
    });
  }
}

/** How soon a pass runs again after the store refused a write made from a stale read. */
const CONFLICT_RETRY_MS = 50;

function serviceSnapshot({ template, groups, startups, lastScale }: ServiceState): ServiceSnapshot {
  return {
    name: template.name,
    servedName: template.servedName,
    replicas: template.replicas,
    slots: template.slots,
    ...(template.accelerated ? { accelerated: true } : {}),
    ...(template.exclusiveCache ? { exclusiveCache: true } : {}),
    ...(template.tokenIds ? { tokenIds: template.tokenIds } : {}),
    ...(startups.length > 0 ? { startupMs: median(startups) } : {}),
    templateHash: template.hash,
    groups: [...groups.values()].sort((a, b) => a.replica - b.replica),
    ...(template.split ? { split: template.split } : {}),
    ...(template.autoscaling
      ? {
          autoscaling: {
            minReplicas: template.autoscaling.minReplicas,
            maxReplicas: template.autoscaling.maxReplicas,
            ...(lastScale ? { last: lastScale } : {}),
          },
        }
      : {}),
  };
}

/** The template hash a group's members run, when they agree on one. */
function hashOf(members: ObservedMember[]): { templateHash?: string } {
  const hashes = new Set(members.filter((m) => !m.terminating).map((m) => m.templateHash));
  if (hashes.size === 0) return {};
  return { templateHash: hashes.size === 1 ? [...hashes][0]! : 'mixed' };
}

/** How soon a group's next deadline (back-off end, startup or placement timeout) comes due. */
function dueIn(template: GroupTemplate, members: ObservedMember[], status: GroupStatus, now: number): number {
  const due: number[] = [];
  if (status.backoffUntil !== undefined && status.backoffUntil > now) due.push(status.backoffUntil - now);
  for (const m of members) {
    if (!m.scheduled) due.push(m.createdAt + template.placementTimeoutMs - now + 1);
    else if (!m.started && !m.ready) due.push(m.createdAt + template.startupTimeoutMs - now + 1);
  }
  return Math.min(...due.filter((d) => d > 0), Infinity);
}

/** Starts whose durations make a service's measured startup time. */
const KEPT_STARTUPS = 5;

/** When the oldest of these members was created; none for none. */
function oldest(members: ObservedMember[]): number | undefined {
  return members.length === 0 ? undefined : Math.min(...members.map((m) => m.createdAt));
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function groupSnapshot(
  replica: number,
  phase: GroupSnapshot['phase'],
  template: GroupTemplate,
  observed: ObservedMember[],
  status: GroupStatus,
): GroupSnapshot {
  return {
    replica,
    phase,
    leader: template.members[0]!.endpoint.external ?? template.members[0]!.endpoint,
    restarts: status.restarts,
    ...(status.lastFailure ? { lastFailure: status.lastFailure } : {}),
    ...(status.failed ? { failed: status.failed.reason } : {}),
    ...hashOf(observed),
    ...(observed.length > 0 ? { createdAt: oldest(observed) } : {}),
    members: template.members.map((m) => {
      const seen =
        observed.find((o) => o.index === m.index && !o.terminating) ?? observed.find((o) => o.index === m.index);
      const state = memberState(seen);
      return {
        index: m.index,
        role: m.role,
        address: `${m.endpoint.host}:${m.endpoint.port}`,
        state,
        ...(seen?.pid !== undefined ? { pid: seen.pid } : {}),
      };
    }),
  };
}

function memberState(seen: ObservedMember | undefined): MemberState {
  if (!seen) return 'Pending';
  if (seen.terminating) return 'Terminating';
  if (seen.phase === 'Exited') return 'Exited';
  return seen.ready ? 'Ready' : 'Starting';
}
