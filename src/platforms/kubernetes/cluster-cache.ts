// What the operator observes of one namespace, through informers (a LIST, then a WATCH restarted
// after errors): the InferenceService objects, and the pods, Services and NetworkPolicies Tandem
// made for their groups, indexed by service. Reads are from memory. An object this process just
// wrote is read back as written until its watch event arrives, so a pass never decides on what
// came before its own last write.
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from './crd.js';
import { readInferenceService, type InferenceServiceObject } from './inference-services.js';
import { RawApi } from './raw.js';
import { LABEL, type ServiceObject } from './objects.js';
import { Watch } from './api.js';
import type { ServiceTemplate } from '../../core/service.js';

/** A read of an object's spec: validated, with its template, or what is wrong with it. */
export type ReadSpec = ReturnType<typeof readInferenceService>;

/** Objects of one kind, by name, with this process's own writes laid over the watch's view. */
class Kind<T extends k8s.KubernetesObject> {
  readonly informer: k8s.Informer<T> & k8s.ObjectCache<T>;
  private readonly written = new Map<string, T>();

  constructor(
    informer: k8s.Informer<T> & k8s.ObjectCache<T>,
    private readonly namespace: string,
  ) {
    this.informer = informer;
    const seen = (o: T) => {
      const name = o.metadata?.name ?? '';
      if (this.written.get(name)?.metadata?.resourceVersion === o.metadata?.resourceVersion) this.written.delete(name);
    };
    informer.on('add', seen);
    informer.on('update', seen);
    informer.on('delete', (o) => this.written.delete(o.metadata?.name ?? ''));
  }

  get(name: string): T | undefined {
    const watched = this.informer.get(name, this.namespace);
    const written = this.written.get(name);
    if (!written) return watched;
    // The watch may deliver a write's event before the write's own answer arrives, and later
    // writes by others after it: ours is read only while it is newer than what the watch shows
    // (resource versions are etcd revisions, which grow).
    if (watched && !(version(written) > version(watched))) {
      this.written.delete(name);
      return watched;
    }
    return written;
  }

  /** What an API call returned: read until the watch delivers the same version. */
  wrote(object: T): void {
    this.written.set(object.metadata!.name!, object);
  }

  /** A write was refused as stale: read the watch's view again. */
  forget(name: string): void {
    this.written.delete(name);
  }
}

function version(o: k8s.KubernetesObject): number {
  return Number(o.metadata?.resourceVersion ?? 0);
}

export class ClusterCache {
  readonly objects: Kind<InferenceServiceObject>;
  readonly services: Kind<k8s.V1Service>;
  readonly policies: Kind<k8s.V1NetworkPolicy>;
  private readonly pods: k8s.Informer<k8s.V1Pod>;
  private readonly podsByService = new Map<string, Map<string, k8s.V1Pod>>();
  private readonly groupServices = new Map<string, Set<string>>();
  /** Each object's spec as last read, and the uid/generation it was read at. */
  private readonly specs = new Map<string, { key: string; read: ReadSpec }>();
  private readonly listeners: ((service: string) => void)[] = [];
  private readonly watches: Watch<k8s.KubernetesObject>[];

  constructor(
    kc: k8s.KubeConfig,
    readonly namespace: string,
    log: (line: string) => void,
  ) {
    // Lists as plain JSON, as the watch's events are: the typed clients rename fields (`_from`).
    const api = new RawApi(kc);
    const informer = <T extends k8s.KubernetesObject>(path: string, labelSelector?: string) => {
      const made = k8s.makeInformer<T>(
        kc,
        path,
        () =>
          api.get<k8s.KubernetesListObject<T>>(
            labelSelector ? `${path}?labelSelector=${encodeURIComponent(labelSelector)}` : path,
          ),
        labelSelector,
      );
      // managedFields are much of an object's size and nothing here reads them. The first handler
      // sees the very object the informer keeps: dropped there, they are never held.
      const slim = (o: T) => void (o.metadata && delete o.metadata.managedFields);
      made.on('add', slim);
      made.on('update', slim);
      return made;
    };
    const labelSelector = LABEL.service;
    this.objects = new Kind(
      informer<InferenceServiceObject>(`/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`),
      namespace,
    );
    this.services = new Kind(
      informer<k8s.V1Service>(`/api/v1/namespaces/${namespace}/services`, labelSelector),
      namespace,
    );
    this.policies = new Kind(
      informer<k8s.V1NetworkPolicy>(
        `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`,
        labelSelector,
      ),
      namespace,
    );
    this.pods = informer<k8s.V1Pod>(`/api/v1/namespaces/${namespace}/pods`, labelSelector);
    // Of a pod's spec (most of its size) the operator reads only the node: the rest is not kept.
    const slimPod = (pod: k8s.V1Pod) => {
      if (pod.spec) pod.spec = { containers: [], nodeName: pod.spec.nodeName };
    };
    this.pods.on('add', slimPod);
    this.pods.on('update', slimPod);
    const podChanged = (pod: k8s.V1Pod, gone = false) => {
      const service = pod.metadata?.labels?.[LABEL.service];
      const uid = pod.metadata?.uid;
      if (!service || !uid) return;
      const pods = this.podsByService.get(service) ?? new Map<string, k8s.V1Pod>();
      if (gone) pods.delete(uid);
      else pods.set(uid, pod);
      if (pods.size === 0) this.podsByService.delete(service);
      else this.podsByService.set(service, pods);
      this.changed(service);
    };
    this.pods.on('add', (pod) => podChanged(pod));
    this.pods.on('update', (pod) => podChanged(pod));
    this.pods.on('delete', (pod) => podChanged(pod, true));
    // A group's Service or NetworkPolicy that changes or goes is a change of its service.
    const serviceOf = (o: k8s.KubernetesObject) => o.metadata?.labels?.[LABEL.service];
    const groupService = (o: k8s.V1Service, gone = false) => {
      const service = serviceOf(o);
      if (!service) return;
      const names = this.groupServices.get(service) ?? new Set<string>();
      if (gone) names.delete(o.metadata!.name!);
      else names.add(o.metadata!.name!);
      if (names.size === 0) this.groupServices.delete(service);
      else this.groupServices.set(service, names);
      this.changed(service);
    };
    this.services.informer.on('add', (o) => groupService(o));
    this.services.informer.on('update', (o) => groupService(o));
    this.services.informer.on('delete', (o) => groupService(o, true));
    for (const verb of ['add', 'update', 'delete'] as const) {
      this.policies.informer.on(verb, (o) => {
        const service = serviceOf(o);
        if (service) this.changed(service);
      });
    }
    this.objects.informer.on('delete', (o) => {
      this.specs.delete(o.metadata?.name ?? '');
    });
    this.watches = [
      new Watch(this.pods, 'pods', log),
      new Watch(this.services.informer, 'services', log),
      new Watch(this.policies.informer, 'networkpolicies', log),
      new Watch(this.objects.informer, PLURAL, log),
    ];
  }

  /** Fills every cache (pods first, objects last: the first passes see what exists), then keeps them current. */
  async start(): Promise<void> {
    for (const w of this.watches) await w.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.stop()));
  }

  onChange(listener: (service: string) => void): void {
    this.listeners.push(listener);
  }

  /** Every pod of a service's groups. */
  podsOf(service: string): k8s.V1Pod[] {
    return [...(this.podsByService.get(service)?.values() ?? [])];
  }

  /** The headless Services of a service's groups. */
  groupServicesOf(service: string): k8s.V1Service[] {
    return [...(this.groupServices.get(service) ?? [])].flatMap((name) => {
      const s = this.services.get(name);
      return s ? [s] : [];
    });
  }

  /** An object's spec as read (validated once per uid and generation). */
  spec(name: string): ReadSpec | undefined {
    const object = this.objects.get(name);
    if (!object) return undefined;
    const key = `${object.metadata?.uid}/${object.metadata?.generation}`;
    const known = this.specs.get(name);
    if (known?.key === key) return known.read;
    const read = readInferenceService(object, this.namespace);
    this.specs.set(name, { key, read });
    return read;
  }

  /** The validated object a service's groups belong to, if its spec is valid. */
  owner(name: string): ServiceObject | undefined {
    return this.spec(name)?.valid;
  }

  template(name: string): ServiceTemplate | undefined {
    return this.spec(name)?.template;
  }

  private changed(service: string): void {
    for (const l of this.listeners) l(service);
  }
}
