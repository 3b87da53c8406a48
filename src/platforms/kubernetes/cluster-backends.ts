// The gateway's view of a cluster: the InferenceServices of one namespace (each object's spec
// gives its served model and slots, its status each group's phase) and their groups' leader pods
// (their IPs), both watched by informers. A Ready group is reached at its leader pod's IP, as a
// Kubernetes Service reaches its endpoints, so the gateway needs no cluster DNS.
import * as k8s from '@kubernetes/client-node';
import { PLURAL } from './crd.js';
import { inferenceServiceInformer, readInferenceService, type InferenceServiceObject } from './inference-services.js';
import { LABEL, LEADER_PORT } from './objects.js';
import type { ServiceTemplate } from '../../core/service.js';
import { Watch } from './api.js';
import { admitted, type Backend, type BackendSource, type GroupMetric, type ModelEntry } from '../../core/serving.js';
import { podReady } from './platform.js';
import type { ClusterObjects } from './cluster-control.js';

export interface ClusterView {
  backends: Backend[];
  models: ModelEntry[];
  groups: GroupMetric[];
}

/** What the gateway serves, from the objects (their templates) and their leader pods. */
export function clusterView(
  objects: readonly InferenceServiceObject[],
  leaders: readonly k8s.V1Pod[],
  templateOf: (object: InferenceServiceObject) => ServiceTemplate | undefined,
): ClusterView {
  // While a group is replaced, its old leader (exited, or being deleted) and the new one are both listed.
  const leaderOf = new Map<string, k8s.V1Pod>();
  for (const p of leaders) {
    if (p.metadata?.deletionTimestamp || p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded') continue;
    leaderOf.set(`${p.metadata?.labels?.[LABEL.service]}/${p.metadata?.labels?.[LABEL.replica]}`, p);
  }
  const view: ClusterView = { backends: [], models: [], groups: [] };
  for (const object of objects) {
    const template = templateOf(object);
    if (!template) continue; // the operator says why in the object's status
    let ready = 0;
    for (const g of object.status?.groups ?? []) {
      const id = `${template.name}/${g.replica}`;
      const pod = leaderOf.get(id);
      const ip = pod?.status?.podIP;
      view.groups.push({
        service: template.name,
        model: template.servedName,
        replica: g.replica,
        phase: g.phase,
        restarts: g.restarts,
      });
      if (!ip) continue;
      const isReady = g.phase === 'Ready' && podReady(pod);
      if (isReady) ready++;
      view.backends.push({
        id,
        model: template.servedName,
        url: `http://${ip.includes(':') ? `[${ip}]` : ip}:${LEADER_PORT}`,
        ready: isReady,
        slots: admitted(template.slots),
        engineSlots: template.slots,
        ...(template.accelerated ? { accelerated: true } : {}),
        ...(template.exclusiveCache ? { exclusiveCache: true } : {}),
        ...(template.tokenIds ? { tokenIds: template.tokenIds } : {}),
      });
    }
    const startup = object.status?.startupSeconds;
    view.models.push({
      id: template.servedName,
      replicas: template.replicas,
      readyReplicas: ready,
      ...(startup === undefined ? {} : { startupMs: startup * 1000 }),
      ...(template.autoscaling ? { autoscaled: true } : {}),
    });
  }
  return view;
}

/** Keeps a ClusterView of one namespace current. */
export class ClusterBackends implements BackendSource, ClusterObjects {
  private view: ClusterView = { backends: [], models: [], groups: [] };
  private readonly rendered = new Map<string, ServiceTemplate | undefined>();
  private readonly objectInformer: k8s.Informer<InferenceServiceObject> & k8s.ObjectCache<InferenceServiceObject>;
  private readonly leaders: k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>;
  private readonly watches: Watch<k8s.KubernetesObject>[];
  private readonly listeners: (() => void)[] = [];

  constructor(
    kc: k8s.KubeConfig,
    private readonly namespace: string,
    private readonly log: (line: string) => void,
  ) {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    this.objectInformer = inferenceServiceInformer(kc, namespace);
    const leaders = `${LABEL.member}=0`;
    this.leaders = k8s.makeInformer(
      kc,
      `/api/v1/namespaces/${namespace}/pods`,
      () => core.listNamespacedPod({ namespace, labelSelector: leaders }),
      leaders,
    );
    for (const informer of [this.objectInformer, this.leaders] as k8s.Informer<k8s.KubernetesObject>[]) {
      for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, () => this.refresh());
    }
    this.watches = [new Watch(this.objectInformer, PLURAL, log), new Watch(this.leaders, 'leader pods', log)];
  }

  async start(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.start()));
    this.refresh();
  }

  async stop(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.stop()));
  }

  backends = (): Backend[] => this.view.backends;
  models = (): ModelEntry[] => this.view.models;
  groups = (): GroupMetric[] => this.view.groups;

  /** Every object's template (those that validate). */
  templates = (): ServiceTemplate[] =>
    this.objectInformer.list().flatMap((o) => {
      const t = this.templateOf(o);
      return t ? [t] : [];
    });

  /** An object's template by name (from the informer's cache, not a scan). */
  template = (service: string): ServiceTemplate | undefined => {
    const object = this.objectInformer.get(service, this.namespace);
    return object && this.templateOf(object);
  };

  /** The namespace's objects, and one by name (the informer's cache): the control API's view. */
  objects = (): readonly InferenceServiceObject[] => this.objectInformer.list();
  object = (name: string): InferenceServiceObject | undefined => this.objectInformer.get(name, this.namespace);

  /** An object's uid, for Events about it. */
  uid = (service: string): string | undefined => this.objectInformer.get(service, this.namespace)?.metadata?.uid;

  /** An object's measured time from creating a group to Ready (its status, from the operator). */
  startupMs = (service: string): number | undefined => {
    const seconds = this.objectInformer.get(service, this.namespace)?.status?.startupSeconds;
    return seconds === undefined ? undefined : seconds * 1000;
  };

  /** Calls `listener` after every change of the objects or their leader pods. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  private refresh(): void {
    const objects = this.objectInformer.list();
    this.view = clusterView(objects, this.leaders.list(), (o) => this.templateOf(o));
    for (const listener of this.listeners) listener();
    // Templates of older generations and of deleted objects go.
    if (this.rendered.size > objects.length) {
      const live = new Set(objects.map((o) => `${o.metadata?.uid}/${o.metadata?.generation}`));
      for (const k of this.rendered.keys()) if (!live.has(k)) this.rendered.delete(k);
    }
  }

  /** An object's template, made again only when its spec changes (a new generation). */
  templateOf(object: InferenceServiceObject): ServiceTemplate | undefined {
    const key = `${object.metadata?.uid}/${object.metadata?.generation}`;
    if (this.rendered.has(key)) return this.rendered.get(key);
    const { template, problem } = readInferenceService(object, this.namespace);
    if (problem) this.log(`tandem: ${object.metadata?.name}: ${problem}`);
    this.rendered.set(key, template);
    return template;
  }
}
