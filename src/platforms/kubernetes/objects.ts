// Pure builders for the Kubernetes objects of a group (as KubeRay's controllers/ray/common): one Pod
// per member, a headless Service per group for stable DNS names, a NetworkPolicy fencing the
// group's unauthenticated inter-node ports. Everything is owned by the InferenceService, so the
// garbage collector removes it with the object. The objects are plain JSON as the API server takes
// it (raw.ts sends them as they are): the user's pod fields pass through untouched.
import type {
  CoreV1Event,
  KubernetesObject,
  V1Container,
  V1ObjectMeta,
  V1OwnerReference,
  V1PodSpec,
  V1Service,
} from '@kubernetes/client-node';
import type { InferenceService } from '../../spec/schema.js';
import type { GroupRef, MemberTemplate } from '../../core/group.js';
import { API_VERSION } from '../../spec/schema.js';
import { parseDuration } from '../../spec/duration.js';

export const LABEL = {
  service: 'tandem.dev/service',
  replica: 'tandem.dev/replica',
  member: 'tandem.dev/member',
  role: 'tandem.dev/role',
  templateHash: 'tandem.dev/template-hash',
} as const;
/** Pods with this label (the gateway's) may reach a leader's API port. */
export const GATEWAY_LABEL = 'tandem.dev/gateway';
export const LEADER_PORT = 8080;
export const WORKER_PORT = 50052;
/** Where a pvc:// model source's claim is mounted, read-only. */
export const MODEL_MOUNT = '/models';
export const DEFAULT_IMAGES = {
  llamacpp: 'ghcr.io/ggml-org/llama.cpp:full',
  vllm: 'vllm/vllm-openai:v0.11.0',
  sglang: 'lmsysorg/sglang:v0.5.4',
} as const;

type Json = Record<string, unknown>;

/** A container as sent: its env and mounts may hold the user's entries, whatever fields they have. */
interface ContainerJson extends Omit<V1Container, 'env' | 'volumeMounts'> {
  env: Json[];
  volumeMounts: Json[];
}

export interface PodJson {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: V1ObjectMeta;
  spec: Omit<V1PodSpec, 'containers' | 'volumes' | 'tolerations' | 'affinity'> & {
    containers: ContainerJson[];
    volumes: Json[];
    tolerations?: Json[];
    affinity?: Json;
  };
}

interface NetworkPolicyJson {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: V1ObjectMeta;
  spec: Json;
}

/** An InferenceService as read from the API server: the validated spec and the object's identity. */
export interface ServiceObject {
  service: InferenceService;
  namespace: string;
  uid: string;
}

export const groupName = (g: GroupRef) => `${g.service}-${g.replica}`;
export const podName = (g: GroupRef, index: number) => `${groupName(g)}-${index}`;
/** The member's stable DNS name: pod hostname + the group's headless Service as subdomain. */
export const memberHost = (g: GroupRef, index: number, namespace: string) =>
  `${podName(g, index)}.${groupName(g)}.${namespace}`;

function owner(obj: ServiceObject): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: 'InferenceService',
    name: obj.service.metadata.name,
    uid: obj.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

function groupLabels(g: GroupRef): Record<string, string> {
  return { [LABEL.service]: g.service, [LABEL.replica]: String(g.replica) };
}

/** A label selector for every object of one group. */
export const groupSelector = (g: GroupRef) =>
  Object.entries(groupLabels(g))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

export function memberPod(obj: ServiceObject, group: GroupRef, member: MemberTemplate, templateHash: string): PodJson {
  const { spec } = obj.service;
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  if (spec.resources.cpu !== undefined) requests.cpu = String(spec.resources.cpu);
  if (spec.resources.memory !== undefined) requests.memory = limits.memory = String(spec.resources.memory);
  if (spec.resources.gpu > 0) requests['nvidia.com/gpu'] = limits['nvidia.com/gpu'] = String(spec.resources.gpu);
  const topologyKey = spec.scheduling.topologyKey;
  const claim = /^pvc:\/\/([^/]+)\//.exec(spec.model.source)?.[1];
  const token = spec.model.tokenSecret;
  const pod: PodJson = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName(group, member.index),
      namespace: obj.namespace,
      labels: {
        ...groupLabels(group),
        [LABEL.member]: String(member.index),
        [LABEL.role]: member.role,
        [LABEL.templateHash]: templateHash,
      },
      ownerReferences: [owner(obj)],
    },
    spec: {
      // Never: a member's exit is seen as such, and the reconciler recreates its group whole.
      restartPolicy: 'Never',
      // The engine is then not its PID namespace's init (the sandbox's pause is), so the SIGTERM of a
      // deletion stops it as anywhere else; as init, an engine with no handler for it
      // (ggml-rpc-server) ignores it, and its group waits out the grace period (30 s) to be recreated.
      shareProcessNamespace: true,
      hostname: podName(group, member.index),
      subdomain: groupName(group),
      ...(topologyKey
        ? {
            // Every member next to the others (the first one placed picks the domain), and one group
            // per domain, as LWS's exclusive topology: two groups half-placed in one domain deadlock.
            affinity: {
              podAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: [
                  { labelSelector: { matchLabels: groupLabels(group) }, topologyKey },
                ],
              },
              podAntiAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: [
                  {
                    labelSelector: {
                      matchExpressions: [
                        { key: LABEL.service, operator: 'In', values: [group.service] },
                        { key: LABEL.replica, operator: 'NotIn', values: [String(group.replica)] },
                      ],
                    },
                    topologyKey,
                  },
                ],
              },
            },
          }
        : {}),
      containers: [
        {
          name: member.role,
          image: spec.engine.image ?? DEFAULT_IMAGES[spec.engine.type],
          command: [member.command],
          args: member.args,
          env: [
            ...Object.entries(member.env).map(([name, value]) => ({ name, value })),
            ...(token ? [{ name: 'HF_TOKEN', valueFrom: { secretKeyRef: { name: token.name, key: token.key } } }] : []),
          ],
          ports: [{ name: member.role === 'leader' ? 'http' : 'rpc', containerPort: member.endpoint.port }],
          resources: { requests, limits },
          ...readinessProbe(member, parseDuration(spec.startupTimeout)),
          volumeMounts: [
            { name: 'dshm', mountPath: '/dev/shm' },
            ...(claim ? [{ name: 'model', mountPath: MODEL_MOUNT, readOnly: true }] : []),
          ],
        },
      ],
      // NCCL and engines' shared-memory transports need more than the runtime's 64 MiB default.
      volumes: [
        { name: 'dshm', emptyDir: { medium: 'Memory' } },
        ...(claim ? [{ name: 'model', persistentVolumeClaim: { claimName: claim, readOnly: true } }] : []),
      ],
    },
  };
  const override = member.role === 'leader' ? spec.leaderTemplate : spec.workerTemplate;
  return withOverride(pod, override, gang(obj, group, member, templateHash));
}

function readinessProbe(
  { readiness, endpoint }: MemberTemplate,
  startupTimeoutMs: number,
): Pick<V1Container, 'readinessProbe' | 'startupProbe'> {
  switch (readiness.kind) {
    case 'http':
      // Every 2 s, not the kubelet's default 10: a recreated group serves (and a rollout moves on)
      // that much sooner, for a request to an endpoint the engine answers from memory.
      return { readinessProbe: { httpGet: { path: readiness.path, port: endpoint.port }, periodSeconds: 2 } };
    case 'tcp':
      // Until the port first accepts, then never again: a server of one client at a time
      // (ggml-rpc-server, backlog 1) never accepts a probe while it serves, and would go NotReady.
      // The operator fails a member past spec.startupTimeout; the kubelet gives up only after that.
      return {
        startupProbe: {
          tcpSocket: { port: endpoint.port },
          periodSeconds: 1,
          failureThreshold: Math.ceil(startupTimeoutMs / 1000) + 60,
        },
      };
    case 'running':
      return {}; // no probe: Ready while it runs
  }
}

/** Volcano's PodGroup API (its scheduler's gang unit). */
export const PODGROUP = { group: 'scheduling.volcano.sh', version: 'v1beta1', plural: 'podgroups' } as const;

/** The name both gang schedulers know a group by: one per group and template. */
const gangName = (group: GroupRef, templateHash: string) => `${groupName(group)}-${templateHash}`;

/** Labels, annotations and scheduler that make `spec.scheduling.queue` admit a group as one unit. */
function gang(obj: ServiceObject, group: GroupRef, member: MemberTemplate, templateHash: string): Gang | undefined {
  const { queue, gangScheduler } = obj.service.spec.scheduling;
  if (!queue) return undefined;
  const name = gangName(group, templateHash);
  return gangScheduler === 'volcano'
    ? // Volcano's scheduler binds no member until the PodGroup's minMember can all be placed.
      { labels: {}, annotations: { 'scheduling.k8s.io/group-name': name }, schedulerName: 'volcano' }
    : {
        // Kueue's plain-pod groups: the group is admitted (gets its quota) as one unit, or not at all.
        labels: { 'kueue.x-k8s.io/queue-name': queue, 'kueue.x-k8s.io/pod-group-name': name },
        annotations: { 'kueue.x-k8s.io/pod-group-total-count': member.env.LWS_GROUP_SIZE! },
      };
}

/** With Volcano as the gang scheduler, the PodGroup a group's pods name; otherwise none. */
export function groupPodGroup(
  obj: ServiceObject,
  group: GroupRef,
  member: MemberTemplate,
  templateHash: string,
): KubernetesObject | undefined {
  const { queue, gangScheduler } = obj.service.spec.scheduling;
  if (!queue || gangScheduler !== 'volcano') return undefined;
  return {
    apiVersion: `${PODGROUP.group}/${PODGROUP.version}`,
    kind: 'PodGroup',
    metadata: {
      ...groupMetadata(obj, group),
      name: gangName(group, templateHash),
      labels: { ...groupLabels(group), [LABEL.templateHash]: templateHash },
    },
    // The size every member is told (LWS_GROUP_SIZE): the whole group or none of it.
    spec: { minMember: Number(member.env.LWS_GROUP_SIZE), queue },
  } as KubernetesObject;
}

type PodOverride = NonNullable<InferenceService['spec']['leaderTemplate']>;

/** Merges a role's overrides over a rendered pod: maps merged, lists appended, Tandem's own keys kept. */
interface Gang {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  schedulerName?: string;
}

function withOverride(pod: PodJson, o: PodOverride | undefined, gang: Gang | undefined): PodJson {
  const spec = pod.spec;
  const container = spec.containers[0]!;
  const extra = Object.fromEntries(Object.entries(o?.resources ?? {}).map(([k, v]) => [k, String(v)]));
  return {
    ...pod,
    metadata: {
      ...pod.metadata,
      labels: { ...o?.metadata?.labels, ...gang?.labels, ...pod.metadata?.labels },
      annotations: { ...o?.metadata?.annotations, ...gang?.annotations },
    },
    spec: {
      ...spec,
      ...(o?.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
      ...(o?.tolerations ? { tolerations: o.tolerations } : {}),
      ...(o?.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
      ...(o?.schedulerName || gang?.schedulerName ? { schedulerName: gang?.schedulerName ?? o?.schedulerName } : {}),
      ...(o?.priorityClassName ? { priorityClassName: o.priorityClassName } : {}),
      // The user's affinity, with Tandem's group placement (if any) on top.
      ...(o?.affinity || spec.affinity ? { affinity: { ...o?.affinity, ...spec.affinity } } : {}),
      volumes: [...spec.volumes, ...(o?.volumes ?? [])],
      containers: [
        {
          ...container,
          env: [...(o?.env ?? []), ...container.env],
          volumeMounts: [...container.volumeMounts, ...(o?.volumeMounts ?? [])],
          resources: {
            requests: { ...extra, ...container.resources?.requests },
            limits: { ...extra, ...container.resources?.limits },
          },
        },
      ],
    },
  };
}

/** A group-level object's name, labels and owner: one per group, collected with the InferenceService. */
function groupMetadata(obj: ServiceObject, group: GroupRef): V1ObjectMeta {
  return {
    name: groupName(group),
    namespace: obj.namespace,
    labels: groupLabels(group),
    ownerReferences: [owner(obj)],
  };
}

export function groupService(obj: ServiceObject, group: GroupRef): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: groupMetadata(obj, group),
    spec: {
      clusterIP: 'None',
      selector: groupLabels(group),
      // Workers must resolve before they are ready: llama.cpp's leader dials them as it starts.
      publishNotReadyAddresses: true,
    },
  };
}

/**
 * Only the group's own members reach its pods (engine RPC, NCCL/gloo, Ray: any port), and only the
 * gateway's pods in the namespace Tandem is installed in reach the leader's API port. It fences
 * only where the cluster's network plugin enforces NetworkPolicies.
 */
export function groupNetworkPolicy(obj: ServiceObject, group: GroupRef, gatewayNamespace: string): NetworkPolicyJson {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: groupMetadata(obj, group),
    spec: {
      podSelector: { matchLabels: groupLabels(group) },
      policyTypes: ['Ingress'],
      ingress: [
        { from: [{ podSelector: { matchLabels: groupLabels(group) } }] },
        {
          from: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': gatewayNamespace } },
              podSelector: { matchLabels: { [GATEWAY_LABEL]: 'true' } },
            },
          ],
          ports: [{ protocol: 'TCP', port: LEADER_PORT }],
        },
      ],
    },
  };
}

/** A Kubernetes Event on an InferenceService, from one of Tandem's components (the operator, the gateway's autoscaler). */
export function serviceEvent(
  namespace: string,
  uid: string,
  component: 'operator' | 'gateway',
  e: { service: string; reason: string; message: string; warning?: boolean },
): CoreV1Event {
  const now = new Date();
  return {
    metadata: { generateName: `${e.service}.` },
    involvedObject: { apiVersion: API_VERSION, kind: 'InferenceService', name: e.service, namespace, uid },
    reason: e.reason,
    message: e.message,
    type: e.warning ? 'Warning' : 'Normal',
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
    source: { component: `tandem-${component}` },
    reportingComponent: `tandem.dev/${component}`,
  };
}
