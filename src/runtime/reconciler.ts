// The executor: observes each group through the platform, asks the planners for the next steps,
// and carries them out. All of Tandem's group I/O happens here; all decisions are in
// group-plan.ts and service-plan.ts, so the Kubernetes operator drives the same logic over pods.
import { EventEmitter } from 'node:events';
import { planGroup, recordFailure, recordReady, type GroupPhase, type GroupStep } from './group-plan.js';
import { planService, type ServiceStep } from './service-plan.js';
import type { ServiceTemplate } from './service-template.js';
import type { Endpoint, GroupRef, GroupStatus, GroupTemplate, ObservedMember, Platform, Role } from './types.js';

export type MemberState = 'Pending' | 'Starting' | 'Ready' | 'Exited';

export interface MemberSnapshot {
  index: number;
  role: Role;
  address: string;
  state: MemberState;
  pid?: number;
}

export interface GroupSnapshot {
  replica: number;
  phase: GroupPhase;
  /** The leader's endpoint: where the group serves. */
  leader: Endpoint;
  restarts: number;
  lastFailure?: { at: number; reason: string };
  members: MemberSnapshot[];
}

export interface ServiceSnapshot {
  name: string;
  servedName: string;
  replicas: number;
  groups: GroupSnapshot[];
}

export interface ReconcilerEvent {
  at: number;
  service: string;
  replica?: number;
  message: string;
}

interface GroupState {
  ref: GroupRef;
  endpoints: Endpoint[];
  template: GroupTemplate;
  status: GroupStatus;
  phase: GroupPhase;
  observed: ObservedMember[];
}

interface ServiceState {
  template: ServiceTemplate;
  groups: Map<number, GroupState>;
}

export class Reconciler extends EventEmitter<{ event: [ReconcilerEvent]; tick: [ServiceSnapshot[]] }> {
  private readonly services = new Map<string, ServiceState>();
  private running?: Promise<void>;
  private stopping = false;
  private wake?: () => void;

  constructor(
    private readonly platform: Platform,
    templates: ServiceTemplate[],
    private readonly intervalMs = 100,
  ) {
    super();
    for (const template of templates) this.services.set(template.name, { template, groups: new Map() });
  }

  start(): void {
    if (this.running) return;
    this.running = (async () => {
      while (!this.stopping) {
        await this.tick();
        // One snapshot per tick, shared by every listener (gateway, status view, waiters).
        this.emit('tick', this.snapshot());
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.intervalMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    })();
  }

  /** Stops reconciling and deletes every member of every group. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
    await Promise.all(
      [...this.services.values()].flatMap((s) => [...s.groups.values()].map((g) => this.deleteGroup(s, g.ref.replica))),
    );
  }

  snapshot(): ServiceSnapshot[] {
    return [...this.services.values()].map(({ template, groups }) => ({
      name: template.name,
      servedName: template.servedName,
      replicas: template.replicas,
      groups: [...groups.values()]
        .sort((a, b) => a.ref.replica - b.ref.replica)
        .map((g) => ({
          replica: g.ref.replica,
          phase: g.phase,
          leader: g.endpoints[0]!,
          restarts: g.status.restarts,
          ...(g.status.lastFailure ? { lastFailure: g.status.lastFailure } : {}),
          members: g.template.members.map((m) => {
            const seen = g.observed.find((o) => o.index === m.index);
            const state: MemberState = !seen
              ? 'Pending'
              : seen.phase === 'Exited'
                ? 'Exited'
                : seen.ready
                  ? 'Ready'
                  : 'Starting';
            return {
              index: m.index,
              role: m.role,
              address: `${m.endpoint.host}:${m.endpoint.port}`,
              state,
              ...(seen?.pid !== undefined ? { pid: seen.pid } : {}),
            };
          }),
        })),
    }));
  }

  private async tick(): Promise<void> {
    for (const service of this.services.values()) {
      try {
        await Promise.all([...service.groups.values()].map((group) => this.reconcileGroup(service, group)));
        const steps = planService(
          service.template.replicas,
          service.template.hash,
          [...service.groups.values()].map((g) => ({
            replica: g.ref.replica,
            templateHash: g.template.hash,
            phase: g.phase,
          })),
        );
        for (const step of steps) await this.applyServiceStep(service, step);
      } catch (err) {
        this.record(service.template.name, undefined, `reconcile failed: ${(err as Error).message}`);
      }
    }
  }

  private async reconcileGroup(service: ServiceState, group: GroupState): Promise<void> {
    if (this.stopping) return;
    group.observed = await this.platform.observe(group.ref);
    const decision = planGroup(group.template, group.observed, group.status, Date.now());
    if (decision.phase === 'Ready' && group.phase !== 'Ready') {
      group.status = recordReady(group.status);
      this.record(service.template.name, group.ref.replica, 'group ready');
    }
    group.phase = decision.phase;
    for (const step of decision.steps) await this.applyGroupStep(group, step);
  }

  private async applyGroupStep(group: GroupState, step: GroupStep): Promise<void> {
    if (step.kind === 'create') {
      const member = group.template.members.find((m) => m.index === step.index)!;
      await this.platform.create(group.ref, member, group.template.hash);
      return;
    }
    if (step.failure) {
      group.status = recordFailure(group.status, step.failure, Date.now());
      const wait = group.status.backoffUntil! - Date.now();
      this.record(
        group.ref.service,
        group.ref.replica,
        `${step.failure}: recreating ${step.indices.length === group.template.members.length ? 'the whole group' : 'the member'} in ${wait} ms (restart ${group.status.restarts})`,
      );
    }
    await Promise.all(step.indices.map((i) => this.platform.delete(group.ref, i)));
  }

  private async applyServiceStep(service: ServiceState, step: ServiceStep): Promise<void> {
    const ref: GroupRef = { service: service.template.name, replica: step.replica };
    switch (step.kind) {
      case 'createGroup': {
        const endpoints = await this.platform.endpoints(ref, service.template.size);
        const template = service.template.render(ref, endpoints);
        service.groups.set(step.replica, {
          ref,
          endpoints,
          template,
          status: { restarts: 0 },
          phase: 'Pending',
          observed: [],
        });
        this.record(
          ref.service,
          ref.replica,
          `group created: leader ${endpoints[0]!.host}:${endpoints[0]!.port}, ${endpoints.length - 1} worker(s)`,
        );
        return;
      }
      case 'updateGroup': {
        const group = service.groups.get(step.replica)!;
        group.template = service.template.render(ref, group.endpoints);
        this.record(ref.service, ref.replica, `rolling group to template ${group.template.hash}`);
        return;
      }
      case 'deleteGroup':
        await this.deleteGroup(service, step.replica);
        this.record(ref.service, ref.replica, 'group deleted');
        return;
    }
  }

  private async deleteGroup(service: ServiceState, replica: number): Promise<void> {
    const group = service.groups.get(replica);
    if (!group) return;
    await Promise.all(group.template.members.map((m) => this.platform.delete(group.ref, m.index)));
    await this.platform.release(group.ref);
    service.groups.delete(replica);
  }

  private record(service: string, replica: number | undefined, message: string): void {
    this.emit('event', { at: Date.now(), service, ...(replica === undefined ? {} : { replica }), message });
  }
}
