// The operator: InferenceService objects in one namespace become groups of pods, driven by the same
// Reconciler as the embedded default over the Kubernetes platform. Objects and pods are watched
// (informers); group statuses are persisted in each object's status, so a restarted operator picks
// its groups up where the last one left them; every step is also a Kubernetes Event on the object.
import * as k8s from '@kubernetes/client-node';
import { Reconciler, type ReconcilerEvent, type ServiceSnapshot } from '../../controller/reconciler.js';
import type { GroupStatus, StatusStore } from '../../core/group.js';
import { KubernetesPlatform } from './platform.js';
import { GROUP, PLURAL, VERSION } from './crd.js';
import { inferenceServiceInformer, readInferenceService, type InferenceServiceObject } from './inference-services.js';
import { groupStatuses, serviceStatus } from './service-status.js';
import { serviceEvent, type ServiceObject } from './objects.js';
import { apiMessage, ignoreStatus, Watch } from './api.js';

interface Tracked {
  object: InferenceServiceObject;
  valid?: ServiceObject;
  invalid?: string;
  statuses: Record<number, GroupStatus>;
  written?: string;
}

export interface OperatorOptions {
  namespace: string;
  log?: (line: string) => void;
  /** Passed to the reconciler (tests shorten it). */
  resyncMs?: number;
}

export class Operator implements StatusStore {
  readonly reconciler: Reconciler;
  private readonly platform: KubernetesPlatform;
  private readonly objects: k8s.Informer<InferenceServiceObject> & k8s.ObjectCache<InferenceServiceObject>;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private readonly tracked = new Map<string, Tracked>();
  private readonly watch: Watch<InferenceServiceObject>;
  private readonly log: (line: string) => void;

  constructor(
    kc: k8s.KubeConfig,
    private readonly options: OperatorOptions,
  ) {
    const { namespace } = options;
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.platform = new KubernetesPlatform(kc, namespace, (name) => this.tracked.get(name)?.valid, this.log);
    this.reconciler = new Reconciler(this.platform, this, { resyncMs: options.resyncMs ?? 30_000 });
    this.objects = inferenceServiceInformer(kc, namespace);
    this.watch = new Watch(this.objects, PLURAL, this.log);
    this.objects.on('add', (o) => this.sync(o));
    this.objects.on('update', (o) => this.sync(o));
    this.objects.on('delete', (o) => {
      const name = o.metadata?.name ?? '';
      this.tracked.delete(name);
      this.reconciler.forget(name); // the garbage collector deletes its pods, Services and policies
    });
    this.reconciler.on('event', (e) => void this.event(e));
    this.reconciler.on('tick', (views, name) => {
      // Best effort here (the next change or resync writes it again); a pass's own save() is not.
      for (const view of views.filter((v) => v.name === name)) {
        this.writeStatus(view.name, view).catch((err: unknown) => this.log(`tandem: ${(err as Error).message}`));
      }
    });
  }

  /** Watches pods first (so the first passes see them), then the objects, then reconciles. */
  async start(): Promise<void> {
    await this.platform.start();
    await this.watch.start();
    this.reconciler.start();
  }

  /** Stops acting; every pod keeps running for the next operator. */
  async stop(): Promise<void> {
    await this.reconciler.stop();
    await this.watch.stop();
    await this.platform.stop();
  }

  async load(service: string): Promise<Record<number, GroupStatus>> {
    return this.tracked.get(service)?.statuses ?? {};
  }

  async save(service: string, groups: Record<number, GroupStatus>): Promise<void> {
    const t = this.tracked.get(service);
    if (!t) return;
    t.statuses = groups;
    await this.writeStatus(
      service,
      this.reconciler.snapshot().find((s) => s.name === service),
    );
  }

  private sync(object: InferenceServiceObject): void {
    const name = object.metadata?.name ?? '';
    const known = this.tracked.get(name);
    const seenGeneration = known?.object.metadata?.generation;
    const t: Tracked = known ?? { object, statuses: groupStatuses(object.status) };
    t.object = object;
    this.tracked.set(name, t);
    // A status write of ours, or a metadata change: the spec is as it was.
    if (known && seenGeneration === object.metadata?.generation) return;
    const read = readInferenceService(object, this.options.namespace);
    if (read.valid) t.valid = read.valid;
    if (read.template) {
      this.reconciler.apply(read.template);
      t.invalid = undefined;
    }
    const invalid = read.problem;
    if (invalid) {
      t.invalid = invalid;
      this.log(`tandem: ${name}: ${invalid}`);
      void this.writeStatus(
        name,
        this.reconciler.snapshot().find((s) => s.name === name),
      );
    }
  }

  private async writeStatus(name: string, view: ServiceSnapshot | undefined): Promise<void> {
    const t = this.tracked.get(name);
    if (!t) return;
    const maxUnavailable = t.valid?.service.spec.rollout.maxUnavailable ?? 1;
    const status = serviceStatus(
      t.object.metadata?.generation ?? 0,
      view,
      t.statuses,
      maxUnavailable,
      t.object.status?.conditions ?? [],
      new Date(),
      t.invalid,
    );
    const text = JSON.stringify(status);
    if (text === t.written) return;
    t.written = text;
    try {
      await this.custom.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, namespace: this.options.namespace, plural: PLURAL, name, body: { status } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
    } catch (err) {
      t.written = undefined; // written again on the next change or resync
      if ((err as { code?: number }).code !== 404)
        throw new Error(`status of ${name}: ${apiMessage(err)}`, { cause: err });
    }
  }

  private async event(e: ReconcilerEvent): Promise<void> {
    const t = this.tracked.get(e.service);
    const where = e.replica === undefined ? '' : `group ${e.replica}: `;
    this.log(`tandem: ${e.service}: ${where}${e.message}`);
    if (!t) return;
    await ignoreStatus(
      404,
      this.core.createNamespacedEvent({
        namespace: this.options.namespace,
        body: serviceEvent(this.options.namespace, t.object.metadata?.uid ?? '', 'operator', {
          ...e,
          message: `${where}${e.message}`,
        }),
      }),
    ).catch((err: unknown) => this.log(`tandem: event for ${e.service} not recorded: ${apiMessage(err)}`));
  }
}
