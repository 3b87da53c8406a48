// The Kubernetes platform: members are pods, observed through an informer's cache (one watch for
// every pod Tandem owns in the namespace, no request per group), created and deleted with single
// API calls that never wait for the pod to go.
import * as k8s from '@kubernetes/client-node';
import type { Endpoint, GroupRef, MemberTemplate, ObservedMember, Platform } from '../../core/group.js';
import {
  LABEL,
  LEADER_PORT,
  WORKER_PORT,
  groupName,
  groupNetworkPolicy,
  groupPodGroup,
  groupSelector,
  groupService,
  memberHost,
  memberPod,
  podName,
  PODGROUP,
  type ServiceObject,
} from './objects.js';
import { ignoreStatus, Watch } from './api.js';

export class KubernetesPlatform implements Platform {
  private readonly core: k8s.CoreV1Api;
  private readonly net: k8s.NetworkingV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly pods: k8s.Informer<k8s.V1Pod>;
  private readonly listeners: ((service: string) => void)[] = [];
  private readonly byService = new Map<string, Map<string, k8s.V1Pod>>();
  private readonly watch: Watch<k8s.V1Pod>;
  /** Groups whose Service and NetworkPolicy exist, and PodGroups (created once per operator). */
  private readonly fenced = new Set<string>();

  constructor(
    kc: k8s.KubeConfig,
    private readonly namespace: string,
    /** The InferenceService a group belongs to, from the operator's cache. */
    private readonly owner: (service: string) => ServiceObject | undefined,
    log: (line: string) => void,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.net = kc.makeApiClient(k8s.NetworkingV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.pods = k8s.makeInformer(
      kc,
      `/api/v1/namespaces/${namespace}/pods`,
      () => this.core.listNamespacedPod({ namespace, labelSelector: LABEL.service }),
      LABEL.service,
    );
    // Pods by service, kept from the watch's events: a pass reads its own, not every pod's.
    const changed = (pod: k8s.V1Pod, gone = false) => {
      const service = pod.metadata?.labels?.[LABEL.service];
      const uid = pod.metadata?.uid;
      if (!service || !uid) return;
      const pods = this.byService.get(service) ?? new Map<string, k8s.V1Pod>();
      if (gone) pods.delete(uid);
      else pods.set(uid, pod);
      if (pods.size === 0) this.byService.delete(service);
      else this.byService.set(service, pods);
      for (const l of this.listeners) l(service);
    };
    this.pods.on('add', (pod) => changed(pod));
    this.pods.on('update', (pod) => changed(pod));
    this.pods.on('delete', (pod) => changed(pod, true));
    this.watch = new Watch(this.pods, 'pods', log);
  }

  /** Fills the cache (a LIST), then keeps it current with a WATCH, restarted after errors. */
  start(): Promise<void> {
    return this.watch.start();
  }

  stop(): Promise<void> {
    return this.watch.stop();
  }

  async endpoints(group: GroupRef, size: number): Promise<Endpoint[]> {
    return Array.from({ length: size }, (_, i) => ({
      host: memberHost(group, i, this.namespace),
      port: i === 0 ? LEADER_PORT : WORKER_PORT,
    }));
  }

  async create(group: GroupRef, member: MemberTemplate, templateHash: string): Promise<void> {
    const obj = this.owner(group.service);
    if (!obj) throw new Error(`InferenceService ${group.service} is gone`);
    const key = groupName(group);
    if (!this.fenced.has(key)) {
      await ignoreStatus(
        409,
        this.core.createNamespacedService({ namespace: this.namespace, body: groupService(obj, group) }),
      );
      await ignoreStatus(
        409,
        this.net.createNamespacedNetworkPolicy({ namespace: this.namespace, body: groupNetworkPolicy(obj, group) }),
      );
      this.fenced.add(key);
    }
    const podGroup = groupPodGroup(obj, group, member, templateHash);
    if (podGroup && !this.fenced.has(podGroup.metadata!.name!)) {
      await this.createPodGroup(group, podGroup, templateHash);
      this.fenced.add(podGroup.metadata!.name!);
    }
    await ignoreStatus(
      409,
      this.core.createNamespacedPod({ namespace: this.namespace, body: memberPod(obj, group, member, templateHash) }),
    );
  }

  /** Volcano's PodGroup for this template; those of the group's older templates go. */
  private async createPodGroup(group: GroupRef, body: k8s.KubernetesObject, templateHash: string): Promise<void> {
    const where = { ...PODGROUP, namespace: this.namespace };
    try {
      await this.custom.deleteCollectionNamespacedCustomObject({
        ...where,
        labelSelector: `${groupSelector(group)},${LABEL.templateHash}!=${templateHash}`,
      });
      await ignoreStatus(409, this.custom.createNamespacedCustomObject({ ...where, body }));
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      throw new Error(
        `spec.scheduling.gangScheduler is volcano, but this cluster serves no ${PODGROUP.plural}.${PODGROUP.group}: is Volcano installed?`,
        { cause: err },
      );
    }
  }

  async delete(group: GroupRef, index: number): Promise<void> {
    await ignoreStatus(404, this.core.deleteNamespacedPod({ namespace: this.namespace, name: podName(group, index) }));
  }

  async observe(service: string): Promise<ObservedMember[]> {
    return [...(this.byService.get(service)?.values() ?? [])].map(observedMember);
  }

  async release(group: GroupRef): Promise<void> {
    const name = groupName(group);
    this.fenced.delete(name);
    await ignoreStatus(404, this.core.deleteNamespacedService({ namespace: this.namespace, name }));
    await ignoreStatus(404, this.net.deleteNamespacedNetworkPolicy({ namespace: this.namespace, name }));
    if (this.owner(group.service)?.service.spec.scheduling.gangScheduler === 'volcano') {
      for (const key of this.fenced) if (key.startsWith(`${name}-`)) this.fenced.delete(key);
      await ignoreStatus(
        404,
        this.custom.deleteCollectionNamespacedCustomObject({
          ...PODGROUP,
          namespace: this.namespace,
          labelSelector: groupSelector(group),
        }),
      );
    }
  }

  onChange(listener: (service: string) => void): void {
    this.listeners.push(listener);
  }
}

export function observedMember(pod: k8s.V1Pod): ObservedMember {
  const labels = pod.metadata?.labels ?? {};
  const conditions = pod.status?.conditions ?? [];
  const scheduled = conditions.find((c) => c.type === 'PodScheduled');
  const container = pod.status?.containerStatuses?.[0];
  const terminated = container?.state?.terminated;
  const exited = pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded';
  const ready = !exited && conditions.some((c) => c.type === 'Ready' && c.status === 'True');
  const exitReason = terminated
    ? `exit code ${terminated.exitCode}${terminated.reason ? `, ${terminated.reason}` : ''}`
    : `pod ${pod.status?.phase}${pod.status?.reason ? `: ${pod.status.reason}` : ''}${pod.status?.message ? ` (${pod.status.message})` : ''}`;
  return {
    replica: Number(labels[LABEL.replica]),
    index: Number(labels[LABEL.member]),
    uid: pod.metadata?.uid ?? '',
    phase: exited ? 'Exited' : 'Running',
    ready,
    started: ready || container?.started === true,
    terminating: pod.metadata?.deletionTimestamp !== undefined,
    scheduled: scheduled?.status === 'True' || pod.spec?.nodeName !== undefined,
    ...(scheduled?.status === 'False' && scheduled.message ? { pendingReason: scheduled.message } : {}),
    templateHash: labels[LABEL.templateHash] ?? '',
    createdAt: new Date(pod.metadata?.creationTimestamp ?? Date.now()).getTime(),
    ...(exited ? { exitReason } : {}),
  };
}
