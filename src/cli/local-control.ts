// The control API on the embedded default: services applied to, scaled in and deleted from a
// running `tandem up`. An apply is validated and prepared whole before anything changes; a new
// template rolls the service's groups (spec.rollout); a deleted service takes no new request,
// finishes those in flight (up to the drain time), then stops.
import { existsSync } from 'node:fs';
import type { Autoscaler } from '../autoscaler/autoscaler.js';
import type { Reconciler } from '../controller/reconciler.js';
import {
  ControlError,
  specRefused,
  type Applied,
  type ControlPlane,
  type MemberLogRef,
  type ServiceRecord,
} from '../core/control.js';
import type { GroupRef, ServiceEvent } from '../core/group.js';
import type { ServiceTemplate } from '../core/service.js';
import type { LoadSource } from '../core/serving.js';
import { prepareServices } from '../engine/prepare.js';
import { SpecError, duplicates, loadDocument, servedByOthers, type LoadedService } from '../spec/load.js';
import type { Progress } from '../util/progress.js';
import { followFile, lastLines, linesOf } from '../util/follow-file.js';

export interface LocalControlOptions {
  reconciler: Reconciler;
  autoscaler: Pick<Autoscaler, 'manage'>;
  events: { recent(): ServiceEvent[] };
  /** Where a member's log is (the local platform writes it). */
  logPath(group: GroupRef, member: number): string;
  /** The longest a deleted service's requests in flight are waited for. */
  drainMs: number;
  progress: Progress;
}

export class LocalControl implements ControlPlane {
  private readonly specs = new Map<string, unknown>();
  private readonly templates = new Map<string, ServiceTemplate>();
  /** Served model names of the services being deleted: the gateway routes nothing new to them. */
  readonly hidden = new Set<string>();
  /** The gateway whose requests in flight a deletion waits for (set once it exists). */
  gateway?: Pick<LoadSource, 'serving'>;

  constructor(private readonly options: LocalControlOptions) {}

  /** Services started with `tandem up`, as they were loaded and prepared. */
  track(loaded: LoadedService[], templates: ServiceTemplate[]): void {
    for (const { service } of loaded) this.specs.set(service.metadata.name, service);
    for (const t of templates) this.templates.set(t.name, t);
  }

  list(): ServiceRecord[] {
    return [...this.specs.keys()].map((name) => this.get(name)!);
  }

  get(name: string): ServiceRecord | undefined {
    if (!this.specs.has(name)) return undefined;
    const status = this.options.reconciler.service(name);
    const servedName = this.templates.get(name)?.servedName;
    return {
      name,
      spec: this.specs.get(name),
      ...(status ? { status } : {}),
      ...(servedName && this.hidden.has(servedName) ? { deleting: true } : {}),
    };
  }

  async apply(documents: unknown[]): Promise<Applied[]> {
    const problems: string[] = [];
    const loaded: LoadedService[] = [];
    documents.forEach((doc, i) => {
      // Relative file:// paths are this process's: `tandem apply` sends them absolute.
      const entry = loadDocument(doc, documents.length > 1 ? `[${i}]` : '', process.cwd(), problems);
      if (entry) loaded.push(entry);
    });
    const owners = new Map([...this.templates.values()].map((t) => [t.servedName, t.name]));
    problems.push(...duplicates(loaded), ...servedByOthers(loaded, owners), ...this.deleting(loaded));
    if (problems.length > 0) throw specRefused(problems);
    let templates: ServiceTemplate[];
    try {
      templates = await prepareServices(loaded, this.options.progress);
    } catch (err) {
      // A lone document has no name to put before its problems (prepare writes "FILE: …").
      if (err instanceof SpecError) throw specRefused(err.problems.map((p) => p.replace(/^: /, '')));
      throw err;
    }
    const { reconciler, autoscaler } = this.options;
    return templates.map((template, i) => {
      const { name } = template;
      const spec = loaded[i]!.service;
      const before = this.templates.get(name);
      const result: Applied['result'] = !before
        ? 'created'
        : before.hash !== template.hash
          ? 'rolling'
          : JSON.stringify(this.specs.get(name)) !== JSON.stringify(spec)
            ? 'updated'
            : 'unchanged';
      this.specs.set(name, spec);
      this.templates.set(name, template);
      if (result !== 'unchanged') reconciler.apply(autoscaler.manage(template));
      return { name, result };
    });
  }

  /** Services still draining. */
  private deleting(loaded: LoadedService[]): string[] {
    return loaded.flatMap(({ service, file }) => {
      const { name } = service.metadata;
      const running = this.templates.get(name);
      return running && this.hidden.has(running.servedName)
        ? [`${file ? `${file}: ` : ''}metadata.name: "${name}" is being deleted; apply it again once it is gone`]
        : [];
    });
  }

  delete(name: string): void {
    const template = this.templates.get(name);
    if (!template) throw new ControlError(404, 'not_found', `no service named "${name}"`);
    if (this.hidden.has(template.servedName)) return; // under way
    this.hidden.add(template.servedName);
    const { reconciler, autoscaler, progress } = this.options;
    void (async () => {
      await this.drained(name);
      // No autoscaler decides for it any more; its groups go, then the service.
      const last = { ...template, autoscaling: undefined, replicas: 0 };
      autoscaler.manage(last);
      await new Promise<void>((done) => {
        const check = () => {
          if ((reconciler.service(name)?.groups.length ?? 0) > 0) return;
          reconciler.off('tick', check);
          done();
        };
        reconciler.on('tick', check);
        reconciler.apply(last);
      });
      reconciler.forget(name);
      this.specs.delete(name);
      this.templates.delete(name);
      this.hidden.delete(template.servedName);
      progress(`${name}: deleted`);
    })();
  }

  /** Resolves once none of the service's groups serves a request, or after the drain time. */
  private drained(name: string): Promise<void> {
    const { reconciler, drainMs } = this.options;
    const deadline = Date.now() + drainMs;
    const busy = () =>
      (reconciler.service(name)?.groups ?? []).some((g) => (this.gateway?.serving(`${name}/${g.replica}`) ?? 0) > 0);
    return new Promise((done) => {
      // The gateway tells no one when a request ends: look a few times a second, bounded.
      const look = setInterval(() => {
        if (busy() && Date.now() < deadline) return;
        clearInterval(look);
        done();
      }, 200);
    });
  }

  scale(name: string, replicas: number): void {
    const template = this.templates.get(name);
    if (!template) throw new ControlError(404, 'not_found', `no service named "${name}"`);
    if (template.autoscaling) {
      throw new ControlError(409, 'autoscaled', `"${name}" has spec.autoscaling: its autoscaler owns its replicas`);
    }
    this.templates.set(name, { ...template, replicas });
    const spec = this.specs.get(name) as { spec: { replicas: number } };
    this.specs.set(name, { ...spec, spec: { ...spec.spec, replicas } });
    this.options.reconciler.scale(name, replicas, 'scaled through the control API');
  }

  events(): ServiceEvent[] {
    return this.options.events.recent();
  }

  log(name: string, ref: MemberLogRef, signal: AbortSignal): AsyncIterable<string> {
    const template = this.templates.get(name);
    if (!template) throw new ControlError(404, 'not_found', `no service named "${name}"`);
    const path = this.options.logPath({ service: name, replica: ref.replica }, ref.member);
    if (ref.member >= template.size || !existsSync(path)) {
      throw new ControlError(404, 'not_found', `no log of ${name} replica ${ref.replica} member ${ref.member}`);
    }
    return logLines(path, ref, signal);
  }
}

/** The tail (all of it by default), then, following, each line as it is written. */
async function* logLines(path: string, { tail, follow }: MemberLogRef, signal: AbortSignal): AsyncGenerator<string> {
  const { lines, size } = lastLines(path, tail ?? Number.MAX_SAFE_INTEGER);
  yield* lines;
  yield* linesOf(followFile(path, { follow, signal, from: size }));
}
