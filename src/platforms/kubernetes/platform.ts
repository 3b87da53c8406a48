// The Kubernetes platform: members are pods, and each group has a headless Service (its members'
// DNS names) and a NetworkPolicy (its fence). Everything is read from the cluster cache (watches,
// no request per group); every group-level object is checked on each pass and made again when it
// went or was changed. Writes are single API calls that never wait for their effect.
import type * as k8s from '@kubernetes/client-node';
import type { Endpoint, GroupRef, GroupShape, MemberTemplate, ObservedMember, Platform } from '../../core/group.js';
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
import { ignoreStatus } from './api.js';
import type { ClusterCache } from './cluster-cache.js';
import { ApiError, type RawApi } from './raw.js';
import { sameJson } from '../../util/same-json.js';

export interface KubernetesPlatformOptions {
  /** Where the gateway runs: the only namespace whose gateway pods the NetworkPolicies admit. */
  gatewayNamespace: string;
}

export class KubernetesPlatform implements Platform {
  private readonly namespace: string;

  constructor(
    private readonly api: RawApi,
    private readonly cache: ClusterCache,
    private readonly options: KubernetesPlatformOptions,
  ) {
    this.namespace = cache.namespace;
  }

  private get base(): string {
    return `/api/v1/namespaces/${this.namespace}`;
  }

  private get netBase(): string {
    return `/apis/networking.k8s.io/v1/namespaces/${this.namespace}`;
  }

  private owner(service: string): ServiceObject {
    const obj = this.cache.owner(service);
    if (!obj) throw new Error(`InferenceService ${service} is gone or invalid`);
    return obj;
  }

  async ensureGroup(group: GroupRef, { size }: GroupShape): Promise<Endpoint[]> {
    const obj = this.owner(group.service);
    const name = groupName(group);
    const service = groupService(obj, group);
    const policy = groupNetworkPolicy(obj, group, this.options.gatewayNamespace);
    await Promise.all([
      this.ensure(this.cache.services, `${this.base}/services`, name, obj.uid, service, (seen) =>
        sameJson(seen.spec?.selector, service.spec!.selector) && seen.spec?.publishNotReadyAddresses === true
          ? undefined
          : { spec: { selector: service.spec!.selector, publishNotReadyAddresses: true } },
      ),
      this.ensure(this.cache.policies, `${this.netBase}/networkpolicies`, name, obj.uid, policy, (seen) =>
        sameJson(seen.spec, policy.spec) ? undefined : { spec: policy.spec },
      ),
    ]);
    return Array.from({ length: size }, (_, i) => ({
      host: memberHost(group, i, this.namespace),
      port: i === 0 ? LEADER_PORT : WORKER_PORT,
    }));
  }

  /**
   * One group-level object as it should be: created when absent, its spec patched back when it
   * drifted, and one left by an earlier object of the same name (another uid) deleted first.
   */
  private async ensure<T extends k8s.KubernetesObject>(
    kind: { get(name: string): T | undefined; wrote(o: T): void; forget(name: string): void },
    collection: string,
    name: string,
    uid: string,
    desired: unknown,
    drift: (seen: T) => unknown,
  ): Promise<void> {
    const seen = kind.get(name);
    if (seen && !seen.metadata?.ownerReferences?.some((r) => r.uid === uid)) {
      await ignoreStatus(404, this.api.delete(`${collection}/${name}`));
      kind.forget(name);
      throw new Error(
        `${collection.split('/').pop()} ${name} belonged to an earlier object of this name; replacing it`,
      );
    }
    if (seen?.metadata?.deletionTimestamp) throw new Error(`${name} is being deleted; making it again once it is gone`);
    if (!seen) {
      const made = await ignoreStatus(409, this.api.create<T>(collection, desired));
      if (made) kind.wrote(made);
      return;
    }
    const patch = drift(seen);
    if (patch) kind.wrote(await this.api.patch<T>(`${collection}/${name}`, patch));
  }

  async releaseGroup(group: GroupRef): Promise<void> {
    const name = groupName(group);
    await ignoreStatus(404, this.api.delete(`${this.base}/services/${name}`));
    await ignoreStatus(404, this.api.delete(`${this.netBase}/networkpolicies/${name}`));
    if (this.cache.owner(group.service)?.service.spec.scheduling.gangScheduler === 'volcano') {
      await ignoreStatus(
        404,
        this.api.delete(`${this.podGroups}?labelSelector=${encodeURIComponent(groupSelector(group))}`),
      );
    }
  }

  private get podGroups(): string {
    return `/apis/${PODGROUP.group}/${PODGROUP.version}/namespaces/${this.namespace}/${PODGROUP.plural}`;
  }

  async create(group: GroupRef, member: MemberTemplate, templateHash: string): Promise<void> {
    const obj = this.owner(group.service);
    const podGroup = groupPodGroup(obj, group, member, templateHash);
    if (podGroup) await this.createPodGroup(group, podGroup, templateHash);
    await ignoreStatus(409, this.api.create(`${this.base}/pods`, memberPod(obj, group, member, templateHash)));
  }

  /** Volcano's PodGroup for this template (made if absent); those of the group's older templates go. */
  private async createPodGroup(group: GroupRef, body: k8s.KubernetesObject, templateHash: string): Promise<void> {
    const older = encodeURIComponent(`${groupSelector(group)},${LABEL.templateHash}!=${templateHash}`);
    try {
      await this.api.delete(`${this.podGroups}?labelSelector=${older}`);
      await ignoreStatus(409, this.api.create(this.podGroups, body));
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== 404) throw err;
      throw new Error(
        `spec.scheduling.gangScheduler is volcano, but this cluster serves no ${PODGROUP.plural}.${PODGROUP.group}: is Volcano installed?`,
        { cause: err },
      );
    }
  }

  async delete(group: GroupRef, index: number): Promise<void> {
    await ignoreStatus(404, this.api.delete(`${this.base}/pods/${podName(group, index)}`));
  }

  async observe(service: string): Promise<ObservedMember[]> {
    const uid = this.cache.owner(service)?.uid;
    // A pod of an earlier object of this name is on its way out (the garbage collector's).
    return this.cache.podsOf(service).map((pod) => {
      const member = observedMember(pod);
      return pod.metadata?.ownerReferences?.some((r) => r.uid === uid) ? member : { ...member, terminating: true };
    });
  }

  onChange(listener: (service: string) => void): void {
    this.cache.onChange(listener);
  }
}

/** Equal as JSON, keys in any order. */
/** Whether a pod's Ready condition is True. */
export function podReady(pod: k8s.V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

function observedMember(pod: k8s.V1Pod): ObservedMember {
  const labels = pod.metadata?.labels ?? {};
  const conditions = pod.status?.conditions ?? [];
  const scheduled = conditions.find((c) => c.type === 'PodScheduled');
  const container = pod.status?.containerStatuses?.[0];
  const terminated = container?.state?.terminated;
  const exited = pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded';
  const ready = !exited && podReady(pod);
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
