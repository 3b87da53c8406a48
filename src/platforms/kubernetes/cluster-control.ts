// The control API on Kubernetes, served by `tandem gateway`: the InferenceService objects of one
// namespace, acted on through the API server as the gateway's ServiceAccount, so it may do exactly
// what that account may. An apply creates or replaces objects (all checked first, as `validate`
// checks them: one problem refuses them all); a scale patches spec.replicas; a delete deletes the
// object, and garbage collection its groups. What runs is read from the objects' status and their
// pods (informers); the events are the objects' Kubernetes Events; a member's log is its pod's.
import { PassThrough } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import {
  ControlError,
  specRefused,
  type Applied,
  type ControlPlane,
  type MemberLogRef,
  type ServiceRecord,
} from '../../core/control.js';
import type { ServiceEvent } from '../../core/group.js';
import type { ServiceTemplate } from '../../core/service.js';
import type { GroupSnapshot, MemberSnapshot } from '../../core/snapshot.js';
import { duplicates, servedByOthers, validateDocument, type LoadedService } from '../../spec/load.js';
import { API_VERSION } from '../../spec/schema.js';
import { ApiError, RawApi } from './raw.js';
import { apiMessage, ignoreStatus, Watch } from './api.js';
import { GROUP, PLURAL, VERSION } from './crd.js';
import { readInferenceService, type InferenceServiceObject } from './inference-services.js';
import { LABEL, LEADER_PORT, podName, WORKER_PORT } from './objects.js';
import { UNRESPONSIVE_PREFIX } from './spec-feed.js';
import { podReady } from './platform.js';
import { linesOf } from '../../util/follow-file.js';

/** Writes of one object tried before a conflict is answered. */
const WRITE_ATTEMPTS = 5;
/** Events kept in an answer: the newest. */
const EVENTS_SHOWN = 200;

export interface ClusterObjects {
  /** The namespace's InferenceService objects (an informer's cache). */
  objects(): readonly InferenceServiceObject[];
  object(name: string): InferenceServiceObject | undefined;
  /** An object's template (undefined: its spec is invalid). */
  templateOf(object: InferenceServiceObject): ServiceTemplate | undefined;
}

export class ClusterControl implements ControlPlane {
  private readonly api: RawApi;
  private readonly pods: k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>;
  private readonly watch: Watch<k8s.V1Pod>;
  private readonly base: string;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly namespace: string,
    private readonly cluster: ClusterObjects,
    log: (line: string) => void,
  ) {
    this.api = new RawApi(kc);
    this.base = `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`;
    const core = kc.makeApiClient(k8s.CoreV1Api);
    this.pods = k8s.makeInformer(
      kc,
      `/api/v1/namespaces/${namespace}/pods`,
      () => core.listNamespacedPod({ namespace, labelSelector: LABEL.service }),
      LABEL.service,
    );
    this.watch = new Watch(this.pods, 'group pods', log);
  }

  start(): Promise<void> {
    return this.watch.start();
  }

  stop(): Promise<void> {
    return this.watch.stop();
  }

  list(): ServiceRecord[] {
    return this.cluster.objects().map((o) => this.record(o));
  }

  get(name: string): ServiceRecord | undefined {
    const object = this.cluster.object(name);
    return object && this.record(object);
  }

  private record(object: InferenceServiceObject): ServiceRecord {
    const name = object.metadata!.name!;
    const pods = this.pods.list().filter((p) => p.metadata?.labels?.[LABEL.service] === name);
    return clusterRecord(object, this.cluster.templateOf(object), pods);
  }

  async apply(documents: unknown[]): Promise<Applied[]> {
    const problems: string[] = [];
    const loaded: LoadedService[] = [];
    documents.forEach((doc, i) => {
      const at = documents.length > 1 ? `[${i}]: ` : '';
      const { service, problems: found } = validateDocument(doc);
      problems.push(...found.map((p) => `${at}${p}`));
      if (!service) return;
      const namespace = (doc as { metadata?: { namespace?: unknown } }).metadata?.namespace;
      if (namespace !== undefined && namespace !== this.namespace) {
        problems.push(`${at}metadata.namespace: this gateway acts in "${this.namespace}", not "${String(namespace)}"`);
      }
      // What the operator would refuse (a model source pods cannot reach), refused here first.
      const { problem } = readInferenceService({ metadata: service.metadata, spec: service.spec }, this.namespace);
      if (problem) problems.push(`${at}${problem}`);
      loaded.push({ service, file: at.slice(0, -2) });
    });
    const owners = new Map<string, string>();
    for (const o of this.cluster.objects()) {
      const served = this.cluster.templateOf(o)?.servedName;
      if (served) owners.set(served, o.metadata!.name!);
    }
    problems.push(...duplicates(loaded), ...servedByOthers(loaded, owners));
    if (problems.length > 0) throw specRefused(problems);
    const applied: Applied[] = [];
    for (const { service } of loaded) {
      const name = service.metadata.name;
      const body = { apiVersion: API_VERSION, kind: 'InferenceService', metadata: { name }, spec: service.spec };
      try {
        applied.push({ name, result: await this.write(name, body) });
      } catch (err) {
        throw this.refusal(err, name, applied);
      }
    }
    return applied;
  }

  /**
   * Creates the object, or replaces the one read just before (so that an apply right after another
   * sees what it wrote). The operator's status writes change the object's resourceVersion too: a
   * conflict is read again and written again, a few times, as client-go's RetryOnConflict does.
   * What the API server stored (defaulted, pruned) is what the operator acts on: compared as such.
   */
  private async write(name: string, body: { metadata: { name: string } }): Promise<Applied['result']> {
    for (let attempt = 1; ; attempt++) {
      const before = await ignoreStatus(404, this.api.get<InferenceServiceObject>(`${this.base}/${name}`));
      if (!before) {
        await this.api.create(this.base, body);
        return 'created';
      }
      let written: InferenceServiceObject;
      try {
        written = await this.api.replace<InferenceServiceObject>(`${this.base}/${name}`, {
          ...body,
          metadata: { ...body.metadata, resourceVersion: before.metadata?.resourceVersion },
        });
      } catch (err) {
        if (err instanceof ApiError && err.code === 409 && attempt < WRITE_ATTEMPTS) continue;
        throw err;
      }
      if (written.metadata?.generation === before.metadata?.generation) return 'unchanged';
      const old = this.cluster.templateOf(before)?.hash;
      return old !== undefined && old === this.cluster.templateOf(written)?.hash ? 'updated' : 'rolling';
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await this.api.delete(`${this.base}/${name}`);
    } catch (err) {
      throw this.refusal(err, name);
    }
  }

  async scale(name: string, replicas: number): Promise<void> {
    const object = this.cluster.object(name);
    if (!object) throw new ControlError(404, 'not_found', `no service named "${name}"`);
    if ((object.spec as { autoscaling?: unknown } | undefined)?.autoscaling) {
      throw new ControlError(409, 'autoscaled', `"${name}" has spec.autoscaling: its autoscaler owns its replicas`);
    }
    try {
      await this.api.patch(`${this.base}/${name}`, { spec: { replicas } });
    } catch (err) {
      throw this.refusal(err, name);
    }
  }

  /** Tells the operator that a gateway found a group unresponsive: it recreates the group's members older than now. */
  async reportUnresponsive(service: string, replica: number): Promise<void> {
    const annotations = { [`${UNRESPONSIVE_PREFIX}${replica}`]: new Date().toISOString() };
    await this.api.patch(`${this.base}/${service}`, { metadata: { annotations } });
  }

  async events(): Promise<ServiceEvent[]> {
    const selector = encodeURIComponent(`involvedObject.kind=InferenceService`);
    const list = await this.api.get<{ items: k8s.CoreV1Event[] }>(
      `/api/v1/namespaces/${this.namespace}/events?fieldSelector=${selector}`,
    );
    return list.items
      .map(eventOf)
      .sort((a, b) => a.at - b.at)
      .slice(-EVENTS_SHOWN);
  }

  log(name: string, ref: MemberLogRef, signal: AbortSignal): AsyncIterable<string> {
    const pod = this.pods.get(podName({ service: name, replica: ref.replica }, ref.member), this.namespace);
    if (!pod || pod.metadata?.labels?.[LABEL.service] !== name) {
      throw new ControlError(404, 'not_found', `no pod of ${name} replica ${ref.replica} member ${ref.member}`);
    }
    return podLog(this.kc, pod, ref, signal);
  }

  /** An API server's refusal as the control API answers it (the rest is an internal error). */
  private refusal(err: unknown, name: string, applied: Applied[] = []): Error {
    const done =
      applied.length > 0 ? ` (${applied.map((a) => `${a.name}: ${a.result}`).join(', ')} done before it)` : '';
    if (err instanceof ApiError && err.code === 404)
      return new ControlError(404, 'not_found', `no service named "${name}"`);
    if (err instanceof ApiError && err.code === 409) {
      return new ControlError(409, 'conflict', `${name}: kept changing while it was written; apply again${done}`);
    }
    if (err instanceof ApiError && err.code === 403) {
      return new ControlError(403, 'forbidden', `${name}: ${apiMessage(err)}${done}`);
    }
    if (err instanceof ApiError && err.code === 422) {
      return new ControlError(422, 'refused_by_cluster', `${name}: ${apiMessage(err)}${done}`, [apiMessage(err)]);
    }
    return err as Error;
  }
}

/** What the control API shows of an object: its spec, and what runs from its status and pods. */
export function clusterRecord(
  object: InferenceServiceObject,
  template: ServiceTemplate | undefined,
  pods: readonly k8s.V1Pod[],
): ServiceRecord {
  const name = object.metadata!.name!;
  const spec = { apiVersion: API_VERSION, kind: 'InferenceService', metadata: { name }, spec: object.spec };
  const deleting = object.metadata?.deletionTimestamp ? { deleting: true } : {};
  if (!template) return { name, spec, ...deleting };
  const groups: GroupSnapshot[] = (object.status?.groups ?? []).map((g) => {
    const own = pods
      .filter((p) => p.metadata?.labels?.[LABEL.replica] === String(g.replica))
      .sort((a, b) => memberIndex(a) - memberIndex(b) || (a.metadata?.deletionTimestamp ? 1 : -1));
    // One per member: a replacement before the pod it replaces, still terminating.
    const members: MemberSnapshot[] = [];
    for (const p of own) if (!members.some((m) => m.index === memberIndex(p))) members.push(memberOf(p));
    const leader = own.find((p) => memberIndex(p) === 0);
    const hashes = new Set(own.map((p) => p.metadata?.labels?.[LABEL.templateHash]));
    return {
      replica: g.replica,
      phase: g.phase as GroupSnapshot['phase'],
      leader: { host: leader?.status?.podIP ?? '', port: LEADER_PORT },
      restarts: g.restarts,
      ...(g.lastFailure ? { lastFailure: g.lastFailure } : {}),
      ...(g.failed ? { failed: g.failed } : {}),
      ...(hashes.size === 1 && [...hashes][0] ? { templateHash: [...hashes][0] } : {}),
      members,
    };
  });
  const status = object.status?.startupSeconds;
  return {
    name,
    spec,
    status: {
      name,
      servedName: template.servedName,
      replicas: template.replicas,
      slots: template.slots,
      ...(template.accelerated ? { accelerated: true } : {}),
      ...(template.exclusiveCache ? { exclusiveCache: true } : {}),
      templateHash: template.hash,
      groups,
      ...(status === undefined ? {} : { startupMs: status * 1000 }),
      ...(template.autoscaling
        ? {
            autoscaling: {
              minReplicas: template.autoscaling.minReplicas,
              maxReplicas: template.autoscaling.maxReplicas,
            },
          }
        : {}),
    },
    ...deleting,
  };
}

const memberIndex = (pod: k8s.V1Pod) => Number(pod.metadata?.labels?.[LABEL.member] ?? -1);

function memberOf(pod: k8s.V1Pod): MemberSnapshot {
  const index = memberIndex(pod);
  const phase = pod.status?.phase;
  const state: MemberSnapshot['state'] = pod.metadata?.deletionTimestamp
    ? 'Terminating'
    : phase === 'Failed' || phase === 'Succeeded'
      ? 'Exited'
      : podReady(pod)
        ? 'Ready'
        : phase === 'Running'
          ? 'Starting'
          : 'Pending';
  const ip = pod.status?.podIP;
  return {
    index,
    role: index === 0 ? 'leader' : 'worker',
    address: ip ? `${ip}:${index === 0 ? LEADER_PORT : WORKER_PORT}` : (pod.spec?.nodeName ?? 'unscheduled'),
    state,
  };
}

/** A Kubernetes Event on an InferenceService as a service event ("group N: …" names its group). */
function eventOf(e: k8s.CoreV1Event): ServiceEvent {
  const group = /^group (\d+): (.*)$/s.exec(e.message ?? '');
  const at = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  return {
    at: at ? new Date(at).getTime() : 0,
    service: e.involvedObject?.name ?? '',
    ...(group ? { replica: Number(group[1]) } : {}),
    reason: e.reason ?? '',
    ...(e.type === 'Warning' ? { warning: true } : {}),
    message: group ? group[2]! : (e.message ?? ''),
  };
}

/** A pod's log, its last `tail` lines (all when absent), then, following, each new one. */
async function* podLog(
  kc: k8s.KubeConfig,
  pod: k8s.V1Pod,
  ref: MemberLogRef,
  signal: AbortSignal,
): AsyncGenerator<string> {
  const out = new PassThrough();
  const request = await new k8s.Log(kc).log(
    pod.metadata!.namespace!,
    pod.metadata!.name!,
    pod.spec!.containers[0]!.name,
    out,
    { follow: ref.follow, ...(ref.tail === undefined ? {} : { tailLines: ref.tail }) },
  );
  const stop = () => {
    request.abort();
    out.end();
  };
  signal.addEventListener('abort', stop, { once: true });
  try {
    yield* linesOf(out as AsyncIterable<Buffer>);
  } finally {
    signal.removeEventListener('abort', stop);
    request.abort();
  }
}
