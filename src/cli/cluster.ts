// The commands that work against a Kubernetes cluster: `tandem operator`, `tandem install`, and
// `status` / `logs` given --kubeconfig.
import { hostname } from 'node:os';
import { PassThrough } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { KedaScaler } from '../autoscaler/keda.js';
import { SharedLoad } from '../autoscaler/shared-load.js';
import { PeerPoller, peerLoadService } from '../autoscaler/peer-load.js';
import { GATEWAY_APP, GatewayPeers } from '../platforms/kubernetes/gateway-peers.js';
import { Autoscaler } from '../autoscaler/autoscaler.js';
import { clusterScaleTarget } from '../platforms/kubernetes/scale-target.js';
import { KEDA_SCALER_PORT } from '../platforms/kubernetes/export/keda.js';
import { stringify } from 'yaml';
import { Operator } from './operator.js';
import { LeaderLease } from '../platforms/kubernetes/lease.js';
import { GROUP, PLURAL, VERSION, inferenceServiceCrd } from '../platforms/kubernetes/crd.js';
import { GATEWAY_LABEL, PODGROUP, podName } from '../platforms/kubernetes/objects.js';
import type { ServiceStatus } from '../platforms/kubernetes/service-status.js';
import { UsageError } from './usage-error.js';
import { ClusterBackends } from '../platforms/kubernetes/cluster-backends.js';
import { ClusterControl } from '../platforms/kubernetes/cluster-control.js';
import { controlRoutes } from '../control/routes.js';
import { dashboardFiles } from '../ui/assets.js';
import { packageVersion } from '../util/version.js';
import { Gateway } from '../gateway/server.js';
import { formatDuration } from '../spec/duration.js';
import { accessLog, gatewayOptions, listenOrExplain, type GatewaySettings } from './gateway.js';
import { apiMessage, ignoreStatus } from '../platforms/kubernetes/api.js';

export const LEASE_NAME = 'tandem-operator';
/**
 * The operator's heap, as installed: capped within the container's limit (V8 otherwise sizes it by
 * the machine's memory), enough for 10,000 groups; a small young generation keeps its resident size
 * near what it holds (bench:operator measures both with this setting).
 */
export const OPERATOR_NODE_OPTIONS = '--max-old-space-size=384 --max-semi-space-size=1';

/** --kubeconfig, else KUBECONFIG, else ~/.kube/config, else the pod's service account. */
export function loadKubeConfig(file: string | undefined): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new UsageError('no Kubernetes cluster: pass --kubeconfig FILE or set KUBECONFIG');
  return kc;
}

export function namespaceOf(kc: k8s.KubeConfig, flag: string | undefined): string {
  return flag ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
}

/**
 * Runs the operator for one namespace while it holds the lease. Losing the lease (renewals failing
 * past its deadline: an API server out of reach, a starved process) stops it acting at once, and it
 * stands by to take the lease again, alive. SIGINT/SIGTERM stop it and leave every pod.
 */
export async function runOperator(kc: k8s.KubeConfig, namespace: string): Promise<void> {
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const identity = `${hostname()}-${process.pid}`;
  const lease = new LeaderLease(kc, { namespace, name: LEASE_NAME, identity });
  let operator: Operator | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await operator?.stop().catch(() => undefined);
    await lease.release().catch(() => undefined);
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  const lead = async (): Promise<void> => {
    log(`tandem: operator ${identity} for namespace ${namespace}: waiting for the lease ${namespace}/${LEASE_NAME}`);
    let lost!: () => void;
    const lostIt = new Promise<void>((resolve) => (lost = resolve));
    await lease.acquire(() => lost());
    if (stopping) return;
    // A new one each time: nothing carried over from a term another operator may have followed.
    const current = new Operator(kc, { namespace, log });
    operator = current;
    log(`tandem: leading; reconciling InferenceServices in ${namespace}`);
    await current.start();
    void lostIt.then(async () => {
      log('tandem: lost the lease; stopped acting, so that a new leader acts alone');
      await current.stop().catch(() => undefined);
      if (operator === current) operator = undefined;
      if (!stopping) await lead();
    });
  };
  await lead();
}

/**
 * Serves the InferenceServices of one namespace from their ready groups until SIGINT/SIGTERM, then
 * drains. With `kedaPort`, it also autoscales them: KEDA's external scaler (gRPC) there, for the
 * ScaledObjects 'tandem render --to keda' writes, reports its decisions.
 */
export async function runClusterGateway(
  kc: k8s.KubeConfig,
  namespace: string,
  settings: GatewaySettings,
  kedaPort?: number,
  staticPeers: string[] = [],
): Promise<void> {
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const cluster = new ClusterBackends(kc, namespace, log);
  await cluster.start();
  // The access log on stdout: a container's log.
  const access = accessLog(1);
  // The control API acts on the objects as this process's ServiceAccount: exactly as authorised.
  const control = new ClusterControl(kc, namespace, cluster, log);
  await control.start();
  const gateway = new Gateway({
    ...gatewayOptions(settings, access.log),
    source: cluster,
    control: controlRoutes(control, packageVersion()),
    ui: dashboardFiles(),
  });
  await listenOrExplain(gateway, settings);
  // Taken out of rotation here; the operator recreates the group, told through an annotation.
  gateway.onUnresponsive((id, silentMs) => {
    log(
      `tandem: replica ${id} sent nothing for ${(silentMs / 1000).toFixed(1)} s with streams flowing: out of rotation`,
    );
    const [service, replica] = id.split('/') as [string, string];
    control
      .reportUnresponsive(service, Number(replica))
      .catch((err: unknown) =>
        log(`tandem: could not tell the operator that ${id} is unresponsive: ${apiMessage(err)}`),
      );
  });
  let autoscaler: Autoscaler | undefined;
  let scaler: KedaScaler | undefined;
  let peers: { poller: PeerPoller; found?: GatewayPeers } | undefined;
  if (kedaPort !== undefined) {
    // Tandem's autoscaler decides on the load of every gateway (each has part of it); KEDA
    // applies the count the one it asks reports.
    const target = clusterScaleTarget(kc, namespace, cluster, log);
    const shared = new SharedLoad(gateway, Date.now);
    const scaling = new Autoscaler(target, shared);
    const keda = new KedaScaler((name) => {
      const template = cluster.template(name);
      const desired = scaling.desired(name);
      return template?.autoscaling && desired !== undefined
        ? { target: template.autoscaling.target, desired }
        : undefined;
    });
    target.onScaled((service) => keda.changed(service));
    gateway.onDemand((model) => scaling.demand(model));
    const sync = () => scaling.sync(cluster.templates());
    cluster.onChange(sync);
    sync();
    keda.alsoServe(peerLoadService(() => gateway.report()));
    const port = await keda.listen(settings.host, kedaPort);
    const ownIp = process.env.POD_IP;
    const found = ownIp ? new GatewayPeers(kc, namespace, ownIp, port, log) : undefined;
    await found?.start();
    const poller = new PeerPoller(() => [...staticPeers, ...(found?.addresses() ?? [])], shared, log);
    poller.start();
    peers = { poller, ...(found ? { found } : {}) };
    scaling.start();
    log(`tandem: KEDA external scaler on ${settings.host}:${port}`);
    autoscaler = scaling;
    scaler = keda;
  }
  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log(`tandem: ${why}: draining (up to ${formatDuration(settings.drainMs)})`);
    // Whatever the steps below wait on (a peer that keeps its connection), the process ends.
    setTimeout(() => {
      log('tandem: not stopped 10 s past the drain time: exiting');
      process.exit(1);
    }, settings.drainMs + 10_000).unref();
    const cut = await gateway.close(settings.drainMs).catch(() => 0);
    autoscaler?.stop();
    peers?.poller.stop();
    await peers?.found?.stop();
    await scaler?.close();
    access.close();
    if (cut > 0) log(`tandem: ${cut} request(s) still in flight were cut`);
    await Promise.all([cluster.stop(), control.stop()]);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  log(`tandem: gateway ${gateway.url}/v1 for the InferenceServices in ${namespace}`);
}

/** Where the installed gateway finds its API key file: a Secret the user makes from 'tandem keys add'. */
export const GATEWAY_KEYS_SECRET = 'tandem-gateway-keys';

/**
 * The CRD; for the operator and the gateway each a ServiceAccount with a Role limited to what it
 * does in the namespace, and a Deployment of two replicas; the gateway's Service.
 */
export function installManifests(namespace: string, image: string): string {
  const role = (name: string, rules: k8s.V1PolicyRule[]) => {
    const labels = { 'app.kubernetes.io/name': name };
    return [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace, labels } },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name, namespace, labels }, rules },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, namespace, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace }],
      },
    ];
  };
  const deployment = (name: string, podLabels: Record<string, string>, container: k8s.V1Container, extra = {}) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/name': name } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { 'app.kubernetes.io/name': name } },
      template: {
        metadata: { labels: { 'app.kubernetes.io/name': name, ...podLabels } },
        spec: {
          serviceAccountName: name,
          // The restricted Pod Security Standard: a fixed non-root user (the image may default to
          // root), no privilege escalation, no capabilities, the runtime's default seccomp profile.
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              image,
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              ...container,
            },
          ],
          ...extra,
        },
      },
    },
  });
  const health = { httpGet: { path: '/healthz', port: 8080 } };
  const docs = [
    inferenceServiceCrd(),
    ...role('tandem-operator', [
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch', 'create', 'delete'] },
      // Each group's headless Service (which also keeps its planner state) and NetworkPolicy.
      { apiGroups: [''], resources: ['services'], verbs: ['list', 'watch', 'create', 'patch', 'delete'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      {
        apiGroups: ['networking.k8s.io'],
        resources: ['networkpolicies'],
        verbs: ['list', 'watch', 'create', 'patch', 'delete'],
      },
      { apiGroups: [GROUP], resources: [PLURAL], verbs: ['list', 'watch'] },
      { apiGroups: [GROUP], resources: [`${PLURAL}/status`], verbs: ['patch'] },
      // Its own lease only (a create cannot be limited to a name).
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: [LEASE_NAME],
        verbs: ['get', 'update'],
      },
      // Only with spec.scheduling.gangScheduler: volcano.
      { apiGroups: [PODGROUP.group], resources: [PODGROUP.plural], verbs: ['create', 'deletecollection'] },
    ]),
    // Two replicas: the lease lets one act; the other takes over within the lease's 15 s.
    deployment(
      'tandem-operator',
      {},
      {
        name: 'operator',
        args: ['operator', '--namespace', namespace],
        env: [{ name: 'NODE_OPTIONS', value: OPERATOR_NODE_OPTIONS }],
        resources: { requests: { cpu: '100m', memory: '192Mi' }, limits: { memory: '640Mi' } },
      },
    ),
    ...role(GATEWAY_APP, [
      // Read to serve; written by the control API (apply, scale, delete), for admin keys only.
      {
        apiGroups: [GROUP],
        resources: [PLURAL],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      // Its autoscaler's decisions, as Events on the objects (it writes nothing the operator reads);
      // the control API lists them.
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'list'] },
    ]),
    // The groups' NetworkPolicies admit pods with the gateway label to their leaders' API port.
    deployment(
      GATEWAY_APP,
      { [GATEWAY_LABEL]: 'true' },
      {
        name: 'gateway',
        args: [
          'gateway',
          '--namespace',
          namespace,
          '--host',
          '0.0.0.0',
          '--port',
          '8080',
          '--api-keys',
          '/etc/tandem/keys/keys.yaml',
          '--keda-port',
          String(KEDA_SCALER_PORT),
        ],
        // Its own address, to find its peers (the other replicas) among the gateway's pods.
        env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
        ports: [
          { name: 'http', containerPort: 8080 },
          { name: 'keda', containerPort: KEDA_SCALER_PORT },
        ],
        readinessProbe: health,
        livenessProbe: health,
        volumeMounts: [{ name: 'keys', mountPath: '/etc/tandem/keys', readOnly: true }],
        resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '1Gi' } },
      },
      { volumes: [{ name: 'keys', secret: { secretName: GATEWAY_KEYS_SECRET } }] },
    ),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: GATEWAY_APP, namespace, labels: { 'app.kubernetes.io/name': GATEWAY_APP } },
      spec: {
        selector: { 'app.kubernetes.io/name': GATEWAY_APP },
        ports: [
          { name: 'http', port: 80, targetPort: 'http' },
          // KEDA's external scaler (ScaledObjects from 'tandem render --to keda').
          { name: 'keda', port: KEDA_SCALER_PORT, targetPort: 'keda' },
        ],
      },
    },
  ];
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

/** Each service's newest scaling, from the gateways' ScaledUp/ScaledDown Events. */
async function lastScaling(
  kc: k8s.KubeConfig,
  namespace: string,
): Promise<Map<string, { time: string; message: string }>> {
  const out = new Map<string, { time: string; message: string }>();
  // Who may read the objects but not the Events sees no scaling lines.
  const events = await ignoreStatus(
    403,
    kc
      .makeApiClient(k8s.CoreV1Api)
      .listNamespacedEvent({ namespace, fieldSelector: 'involvedObject.kind=InferenceService' }),
  );
  if (!events) return out;
  for (const e of events.items) {
    if (e.reason !== 'ScaledUp' && e.reason !== 'ScaledDown') continue;
    const time = new Date(e.lastTimestamp ?? e.eventTime ?? 0).toISOString();
    const name = e.involvedObject.name ?? '';
    if ((out.get(name)?.time ?? '') < time) out.set(name, { time, message: e.message ?? '' });
  }
  return out;
}

export async function clusterStatus(kc: k8s.KubeConfig, namespace: string, json: boolean): Promise<number> {
  const list = (await kc
    .makeApiClient(k8s.CustomObjectsApi)
    .listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL })) as {
    items: { metadata: { name: string }; spec: { engine: { type: string } }; status?: Partial<ServiceStatus> }[];
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(list.items, null, 2)}\n`);
    return 0;
  }
  const lastScale = await lastScaling(kc, namespace);
  const rows = [['SERVICE', 'READY', 'NODES', 'ENGINE', 'GROUP', 'PHASE', 'MEMBERS', 'RESTARTS', 'LAST FAILURE']];
  for (const item of list.items) {
    const s = item.status ?? {};
    const head = [item.metadata.name, s.readyGroups ?? '-', String(s.nodesPerGroup ?? '-'), item.spec.engine.type];
    if (!s.groups?.length) rows.push([...head, '-', '-', '-', '-', '']);
    for (const g of s.groups ?? []) {
      rows.push([...head, String(g.replica), g.phase, g.readyMembers, String(g.restarts), g.lastFailure?.reason ?? '']);
    }
    const degraded = s.conditions?.find((c) => c.type === 'Degraded' && c.status === 'True');
    if (degraded) rows.push([`  ${degraded.reason}: ${degraded.message}`]);
    const last = lastScale.get(item.metadata.name);
    if (last) rows.push([`  last scaling ${last.time}: ${last.message}`]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.filter((r) => r.length > 1).map((r) => (r[i] ?? '').length)));
  for (const r of rows) {
    process.stdout.write(
      `${
        r.length === 1
          ? r[0]
          : r
              .map((c, i) => c.padEnd(widths[i]!))
              .join('  ')
              .trimEnd()
      }\n`,
    );
  }
  return 0;
}

/** Prints a member pod's log through the API server; with `follow`, streams it until the pod ends or Ctrl-C. */
export async function clusterLogs(
  kc: k8s.KubeConfig,
  namespace: string,
  service: string,
  replica: number,
  member: number,
  follow: boolean,
): Promise<void> {
  const name = podName({ service, replica }, member);
  const pod = await kc
    .makeApiClient(k8s.CoreV1Api)
    .readNamespacedPod({ namespace, name })
    .catch((err: unknown) => {
      if ((err as { code?: number }).code === 404) {
        throw new Error(
          `no pod ${name} in namespace ${namespace}: is ${service} running with that many replicas and members? (tandem status)`,
        );
      }
      throw err;
    });
  const out = new PassThrough();
  out.pipe(process.stdout, { end: false });
  const ended = new Promise((resolve, reject) => out.on('end', resolve).on('error', reject));
  const container = pod.spec!.containers[0]!.name;
  const request = await new k8s.Log(kc).log(namespace, name, container, out, { follow }).catch(async (err: unknown) => {
    // The streaming client drops the API server's message: ask again for it.
    await kc
      .makeApiClient(k8s.CoreV1Api)
      .readNamespacedPodLog({ namespace, name, container })
      .catch((e: unknown) => {
        throw new Error(`the log of pod ${name}: ${apiMessage(e)}`, { cause: e });
      });
    throw err;
  });
  const stop = () => request.abort();
  process.once('SIGINT', stop);
  try {
    await ended;
  } finally {
    process.off('SIGINT', stop);
  }
}
