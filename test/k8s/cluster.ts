// A real Kubernetes control plane on 127.0.0.1 for the tests: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, and KWOK simulating GPU nodes and pod lifecycles; as
// root, also a real node (real-node.ts) whose pods run in containers, and then the API server
// listens on that node's bridge address instead, where pods reach it.
// It outlives the command that starts it (so `npm run k8s:up` can hand it to other commands)
// and is found again through its state file; `stop` ends every process it started.
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  copyFileSync,
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:https';
import { freePort } from '../../src/util/net.js';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { inferenceServiceCrd } from '../../src/platforms/kubernetes/crd.js';
import { cacheDir } from '../../src/util/paths.js';
import { isRunning, isRunningCommand, terminate } from '../../src/util/process.js';
import type { Progress } from '../../src/util/progress.js';
import { ensureK8sBinaries } from './binaries.js';
import { UPSTREAM_CRDS, upstreamCrdFiles } from './crds.js';
import { requireTools } from '../../src/util/toolchain.js';
import {
  NODE_IP,
  REAL_NODE,
  REAL_NODE_PROCESSES,
  SERVICE_CIDR,
  cleanUpHost,
  importImage,
  prepareRealNode,
  realNodeUnavailable,
  setUpHost,
  startNodeProcesses,
} from './real-node.js';
import type { Image } from './image.js';

export const FAKE_NODES = 4;
export const GPUS_PER_NODE = 8;
export const GPU_RESOURCE = 'nvidia.com/gpu';
export const TOPOLOGY_LABEL = 'tandem.dev/gpu-topology-block';

interface State {
  dir: string;
  kubeconfig: string;
  server: string;
  pids: Record<string, number>;
  /** The real node's binaries, when it runs (their cleanup needs them). */
  nodeBin?: string;
}

/** Where the running control plane keeps its state, data and logs. */
export function runDir(): string {
  return process.env.TANDEM_K8S_DIR || join(cacheDir(), 'k8s-run');
}

const statePath = () => join(runDir(), 'state.json');

function readState(): State | undefined {
  try {
    return JSON.parse(readFileSync(statePath(), 'utf8')) as State;
  } catch {
    return undefined;
  }
}

/** GET a path on the API server with the admin token; resolves with the status code (0 when unreachable). */
function apiGet(state: Pick<State, 'server' | 'kubeconfig'>, path: string): Promise<number> {
  const kc = kubeConfig(state.kubeconfig);
  const user = kc.getCurrentUser();
  const cluster = kc.getCurrentCluster();
  return new Promise((resolve) => {
    const req = request(
      `${state.server}${path}`,
      {
        headers: { authorization: `Bearer ${user?.token ?? ''}` },
        ca: cluster?.caData ? Buffer.from(cluster.caData, 'base64') : undefined,
        timeout: 2000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * The running control plane if every process is alive and the API server is ready. A live plane
 * under load may answer slowly: it gets `patienceMs` before it counts as half-dead (and is replaced).
 */
export async function runningCluster(patienceMs = 0): Promise<State | undefined> {
  const state = readState();
  const alive = () =>
    state !== undefined && Object.entries(state.pids).every(([name, pid]) => isRunningCommand(pid, new RegExp(name)));
  for (const deadline = Date.now() + patienceMs; alive();) {
    if ((await apiGet(state!, '/readyz')) === 200) return state;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return undefined;
}

async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  pids: Record<string, number>,
  logDir: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    const dead = Object.entries(pids).find(([, pid]) => !isRunning(pid));
    if (dead) {
      const log = join(logDir, `${dead[0]}.log`);
      const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-20).join('\n') : '';
      throw new Error(`${dead[0]} exited while waiting for ${what}; its log (${log}) ends:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; logs in ${logDir}`);
}

export interface ClusterOptions {
  /** A real node beside the fake ones (default: wherever the machine can run one, unless TANDEM_REAL_NODE=0). */
  realNode?: boolean;
}

export const realNodeWanted = () => process.env.TANDEM_REAL_NODE !== '0';

/** Starts the control plane, or returns the one already running. */
export async function startCluster(
  progress: Progress,
  options: ClusterOptions = {},
): Promise<{ kubeconfig: string; started: boolean }> {
  // Patience: stopping a busy plane that another run is using would fail that run.
  const existing = await runningCluster(30_000);
  if (existing) return { kubeconfig: existing.kubeconfig, started: false };
  await stopCluster(); // a half-dead previous run
  const bin = await ensureK8sBinaries(progress);
  const crdFiles = upstreamCrdFiles(); // before anything starts: a download failure leaves nothing running
  const withNode = options.realNode ?? (realNodeWanted() && realNodeUnavailable() === undefined);
  const unavailable = withNode ? realNodeUnavailable() : undefined;
  if (unavailable) throw new Error(`no real node on this machine: ${unavailable}`);
  if (!withNode) progress(`no real node: ${realNodeUnavailable() ?? 'TANDEM_REAL_NODE=0'}`);
  const node = withNode ? await prepareRealNode(progress) : undefined;
  const dir = runDir();
  cleanUpHost(join(dir, 'node'), node?.bin); // what a crashed run left on the host
  rmSync(dir, { recursive: true, force: true });
  const logs = join(dir, 'logs');
  const pki = join(dir, 'pki');
  for (const d of [logs, pki, join(dir, 'etcd')]) mkdirSync(d, { recursive: true });

  // Credentials made fresh for every start: a service-account signing key and an admin token.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(pki, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(pki, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  const token = randomBytes(24).toString('hex');
  // The admin, and one user per benchmarked controller so that the audit log can count its requests.
  const users = ['tandem-admin', ...BENCH_USERS].map((u) => ({
    u,
    t: u === 'tandem-admin' ? token : randomBytes(24).toString('hex'),
  }));
  const kubeletToken = randomBytes(24).toString('hex');
  writeFileSync(
    join(pki, 'tokens.csv'),
    [
      ...users.map(({ u, t }) => `${t},${u},${u},"system:masters"\n`),
      // No Node authorizer on this plane: the kubelet is an admin too.
      `${kubeletToken},system:node:${REAL_NODE},${REAL_NODE},"system:nodes,system:masters"\n`,
    ].join(''),
  );
  // The serving certificate, for every address clients use: loopback, the node's bridge address,
  // and the kubernetes Service's ClusterIP (pods).
  const serving = join(pki, 'serving');
  mkdirSync(serving);
  selfSignedCertificate(serving, 'kube-apiserver', [
    'IP:127.0.0.1',
    `IP:${NODE_IP}`,
    'IP:10.96.0.1',
    'DNS:localhost',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
  ]);
  const caFile = join(serving, 'ca.crt');
  // The aggregation layer's front proxy: the API server's client certificate towards aggregated
  // API servers (KEDA's metrics adapter, whose external metrics the HPA controller reads).
  const frontProxy = join(pki, 'front-proxy');
  mkdirSync(frontProxy);
  selfSignedCertificate(frontProxy, FRONT_PROXY_CLIENT);
  writeFileSync(
    join(dir, 'audit-policy.yaml'),
    stringify({
      apiVersion: 'audit.k8s.io/v1',
      kind: 'Policy',
      omitStages: ['RequestReceived', 'ResponseStarted'], // one line per request
      rules: [{ level: 'Metadata', users: BENCH_USERS }, { level: 'None' }],
    }),
  );
  // What KWOK's fake kubelets serve as every container's log (`kubectl logs`, with -f).
  writeFileSync(
    join(dir, 'kwok-logs.yaml'),
    stringify({
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'ClusterLogs',
      metadata: { name: 'all-pods' },
      spec: { logs: [{ containers: [], logsFile: containerLogPath(), follow: true }] },
    }),
  );
  writeFileSync(containerLogPath(), '');
  const stages = join(dir, 'kwok-stages.yaml');
  writeFileSync(stages, bin.kwokStages.map((f) => readFileSync(f, 'utf8').trim()).join('\n---\n') + '\n');

  const [etcdClient, etcdPeer, apiPort, kwokPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const apiAddress = node ? NODE_IP : '127.0.0.1';
  const server = `https://${apiAddress}:${apiPort}`;
  const kubeconfig = join(dir, 'kubeconfig');
  const pids: Record<string, number> = {};
  const state: State = { dir, kubeconfig, server, pids, nodeBin: node?.bin };
  const launch = (name: string, command: string, args: string[], env?: NodeJS.ProcessEnv) => {
    const out = openSync(join(logs, `${name}.log`), 'a');
    const child = spawn(command, args, { detached: true, stdio: ['ignore', out, out], env });
    closeSync(out);
    child.unref();
    pids[name] = child.pid!;
    writeFileSync(statePath(), JSON.stringify(state, null, 2));
  };

  try {
    if (node) {
      progress(`setting up the host for the real node (bridge ${NODE_IP}/24, cgroups)`);
      writeFileSync(statePath(), JSON.stringify(state, null, 2)); // a failure from here on is cleaned up
      setUpHost();
    }
    progress('starting etcd');
    launch('etcd', bin.etcd, [
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      `http://127.0.0.1:${etcdClient}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${etcdClient}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${etcdPeer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${etcdPeer}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync', // test data: durability is not the point, speed on a small disk is
    ]);
    progress('starting kube-apiserver');
    launch('kube-apiserver', bin.kubeApiserver, [
      '--etcd-servers',
      `http://127.0.0.1:${etcdClient}`,
      '--bind-address',
      apiAddress,
      '--advertise-address',
      apiAddress,
      // A loopback address may not back the kubernetes Service; the node's address does, for pods.
      '--endpoint-reconciler-type',
      node ? 'lease' : 'none',
      '--secure-port',
      String(apiPort),
      '--cert-dir',
      pki,
      '--tls-cert-file',
      join(serving, 'tls.crt'),
      '--tls-private-key-file',
      join(serving, 'tls.key'),
      '--token-auth-file',
      join(pki, 'tokens.csv'),
      '--authorization-mode',
      'RBAC',
      '--service-account-issuer',
      'https://kubernetes.default.svc.cluster.local',
      '--service-account-key-file',
      join(pki, 'sa.pub'),
      '--service-account-signing-key-file',
      join(pki, 'sa.key'),
      '--service-cluster-ip-range',
      SERVICE_CIDR,
      '--allow-privileged=true',
      '--profiling=false',
      '--audit-policy-file',
      join(dir, 'audit-policy.yaml'),
      '--audit-log-path',
      auditLogPath(),
      // KWOK's nodes serve logs on 127.0.0.1 (their InternalIP); their hostnames resolve nowhere.
      '--kubelet-preferred-address-types',
      'InternalIP',
      '--requestheader-client-ca-file',
      join(frontProxy, 'ca.crt'),
      '--requestheader-allowed-names',
      FRONT_PROXY_CLIENT,
      '--requestheader-username-headers',
      'X-Remote-User',
      '--requestheader-group-headers',
      'X-Remote-Group',
      '--requestheader-extra-headers-prefix',
      'X-Remote-Extra-',
      '--proxy-client-cert-file',
      join(frontProxy, 'tls.crt'),
      '--proxy-client-key-file',
      join(frontProxy, 'tls.key'),
      // To an aggregated API server's endpoint address: no kube-proxy runs on the host.
      '--enable-aggregator-routing=true',
    ]);
    const ca = readFileSync(caFile).toString('base64');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: tandem-test, cluster: {server: "${server}", certificate-authority-data: ${ca}}}]`,
        `users: [{name: tandem-admin, user: {token: ${token}}}]`,
        'contexts: [{name: tandem-test, context: {cluster: tandem-test, user: tandem-admin}}]',
        'current-context: tandem-test',
        '',
      ].join('\n'),
    );
    await waitFor('kube-apiserver /readyz', 120_000, async () => (await apiGet(state, '/readyz')) === 200, pids, logs);
    progress('starting kube-controller-manager, kube-scheduler and KWOK');
    launch('kube-controller-manager', bin.kubeControllerManager, [
      '--kubeconfig',
      kubeconfig,
      '--leader-elect=false',
      '--bind-address',
      '127.0.0.1',
      '--secure-port',
      '0',
      '--service-account-private-key-file',
      join(pki, 'sa.key'),
      '--root-ca-file',
      caFile,
      '--use-service-account-credentials=false',
      // The default 20/s would pace every workload controller here (LWS's StatefulSets in
      // bench:operator most of all) by the test machine's client limit, not by the controllers.
      '--kube-api-qps',
      '200',
      '--kube-api-burst',
      '400',
      // The HPAs KEDA makes act within seconds here, not every 15 s.
      '--horizontal-pod-autoscaler-sync-period',
      '2s',
    ]);
    // Its client's default limit (50/s, each binding and event a request) would pace every
    // controller's pods here, as kube-controller-manager's would (bench:operator: 2,000 pods).
    const schedulerConfig = join(dir, 'kube-scheduler.yaml');
    writeFileSync(
      schedulerConfig,
      stringify({
        apiVersion: 'kubescheduler.config.k8s.io/v1',
        kind: 'KubeSchedulerConfiguration',
        clientConnection: { kubeconfig, qps: 200, burst: 400 },
        leaderElection: { leaderElect: false },
      }),
    );
    launch('kube-scheduler', bin.kubeScheduler, [
      '--config',
      schedulerConfig,
      '--bind-address',
      '127.0.0.1',
      '--secure-port',
      '0',
    ]);
    launch('kwok', bin.kwok, [
      '--kubeconfig',
      kubeconfig,
      '--config',
      stages,
      '--config',
      join(dir, 'kwok-logs.yaml'),
      '--node-port',
      String(kwokPort),
      '--tls-cert-file',
      join(serving, 'tls.crt'),
      '--tls-private-key-file',
      join(serving, 'tls.key'),
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector',
      'kwok.x-k8s.io/node=fake',
      '--node-lease-duration-seconds',
      '40',
      '--server-address',
      `127.0.0.1:${kwokPort}`,
      // Pod IPs on loopback: a test can serve at a pod's address, and nothing is ever sent elsewhere.
      '--cidr',
      '127.244.0.0/16',
      '--node-ip',
      '127.0.0.1',
    ]);
    await createFakeNodes(kubeconfig);
    await waitFor(
      'the fake GPU nodes to be Ready',
      120_000,
      async () => (await readyNodes(kubeconfig)) === FAKE_NODES,
      pids,
      logs,
    );
    await installUpstreamCrds(kubeconfig, crdFiles, progress);
    if (node) {
      const ctx = {
        dir: join(dir, 'node'),
        bin: node.bin,
        server,
        adminKubeconfig: kubeconfig,
        kubeletToken,
        caFile,
        launch,
      };
      await startNodeProcesses(
        ctx,
        node.pause,
        (what, check) => waitFor(what, 120_000, async () => check(), pids, logs),
        async () => (await readyNodes(kubeconfig)) === FAKE_NODES + 1,
        progress,
      );
    }
    if (node) {
      // kubectl at a path that outlives the build key: `export PATH=<run dir>/bin:$PATH`.
      mkdirSync(join(dir, 'bin'));
      symlinkSync(join(node.bin, 'kubectl'), join(dir, 'bin', 'kubectl'));
    }
    progress(
      `control plane ready: ${FAKE_NODES} fake nodes × ${GPUS_PER_NODE} GPUs${node ? `, real node ${REAL_NODE} (pods on ${NODE_IP}/24), kubectl in ${join(dir, 'bin')}` : ''}; logs in ${logs}`,
    );
    return { kubeconfig, started: true };
  } catch (err) {
    await stopCluster();
    throw err;
  }
}

/** Stops every process of the recorded run (SIGTERM, then SIGKILL after 10 s). */
export async function stopCluster(): Promise<boolean> {
  const state = readState();
  if (!state) return false;
  // The node first, while the API server can still see its pods go.
  const order = [...REAL_NODE_PROCESSES, 'kwok', 'kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd'];
  for (const name of order) {
    const pid = state.pids[name];
    // A recorded pid that is no longer ours (reused after a reboot) is left alone.
    if (pid !== undefined && isRunningCommand(pid, new RegExp(name))) await terminate([pid], 10_000);
  }
  if (state.nodeBin) cleanUpHost(join(state.dir, 'node'), state.nodeBin);
  rmSync(statePath(), { force: true });
  return true;
}

/** Loads an image into the running cluster's real node (which pulls from nowhere else). */
export function loadImage(image: Image): void {
  const state = readState();
  if (!state?.nodeBin) throw new Error('the test cluster has no real node to load an image into');
  importImage(state.nodeBin, join(state.dir, 'node'), image);
}

export function kubeConfig(path: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export function apiClient<T extends k8s.ApiType>(kubeconfig: string, api: new (config: k8s.Configuration) => T): T {
  return kubeConfig(kubeconfig).makeApiClient(api as never) as T;
}

async function createFakeNodes(kubeconfig: string): Promise<void> {
  const gpus = { [GPU_RESOURCE]: String(GPUS_PER_NODE) };
  for (let i = 0; i < FAKE_NODES; i++) {
    await addFakeNode(kubeconfig, `gpu-node-${i}`, gpus, {
      'node.kubernetes.io/instance-type': 'BM.GPU.H100.8',
      'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3',
      [TOPOLOGY_LABEL]: `block-${Math.floor(i / 2)}`,
    });
  }
}

/** The users benchmarked controllers run as (admins, each with its own token). */
export const BENCH_USERS = ['bench-tandem', 'bench-lws'];

const auditLogPath = () => join(runDir(), 'logs', 'audit.log');

const containerLogPath = () => join(runDir(), 'container.log');

/** Appends a line to what every fake container logs (KWOK ClusterLogs, followed; CRI log format). */
export function appendContainerLog(line: string): void {
  appendFileSync(containerLogPath(), `${new Date().toISOString()} stdout F ${line}\n`);
}

/** A kubeconfig like the admin's but for one of BENCH_USERS, written beside it. */
export function userKubeconfig(kubeconfig: string, user: string): string {
  const line = readFileSync(join(dirname(kubeconfig), 'pki', 'tokens.csv'), 'utf8')
    .split('\n')
    .find((l) => l.split(',')[1] === user);
  if (!line) throw new Error(`no token for ${user}`);
  const path = join(dirname(kubeconfig), `kubeconfig-${user}`);
  writeFileSync(
    path,
    readFileSync(kubeconfig, 'utf8')
      .replace(/token: [0-9a-f]+/, `token: ${line.split(',')[0]}`)
      .replaceAll('tandem-admin', user),
  );
  return path;
}

/**
 * API requests one user made so far, by verb, from the API server's audit log and the files it
 * rotated out (at 100 MB each; none is removed).
 */
export function apiRequests(user: string): Record<string, number> {
  const counts: Record<string, number> = {};
  const dir = dirname(auditLogPath());
  if (!existsSync(dir)) return counts;
  for (const file of readdirSync(dir).filter((f) => /^audit(-.+)?\.log$/.test(f))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (!line) continue;
      const e = JSON.parse(line) as { user: { username: string }; verb: string };
      if (e.user.username === user) counts[e.verb] = (counts[e.verb] ?? 0) + 1;
    }
  }
  return counts;
}

/** Marks the nodes benchmarks add, so that tests can tell them from the cluster's own. */
export const BENCH_NODE_LABEL = 'tandem.dev/bench';

/** One more KWOK node (benchmarks add CPU-only ones for pod count); KWOK makes it Ready. */
export async function addFakeNode(
  kubeconfig: string,
  name: string,
  extra: Record<string, string> = {},
  labels: Record<string, string> = {},
): Promise<void> {
  const resources = { cpu: '96', memory: '1Ti', pods: '110', ...extra };
  await apiClient(kubeconfig, k8s.CoreV1Api).createNode({
    body: {
      metadata: {
        name,
        annotations: { 'kwok.x-k8s.io/node': 'fake' },
        labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', type: 'kwok', ...labels },
      },
      status: { capacity: resources, allocatable: resources },
    },
  });
}

/** Tandem's own CRD, replacing any older one, serving. */
export async function installTandemCrd(kubeconfig: string): Promise<void> {
  const ext = apiClient(kubeconfig, k8s.ApiextensionsV1Api);
  // Through the client's own model, so that it serializes the x-kubernetes-* extensions.
  const crd = k8s.loadYaml<k8s.V1CustomResourceDefinition>(JSON.stringify(inferenceServiceCrd()));
  const name = crd.metadata!.name!;
  await ext.deleteCustomResourceDefinition({ name }).catch(() => undefined);
  for (const deadline = Date.now() + 30_000; await ext.readCustomResourceDefinition({ name }).catch(() => undefined);) {
    if (Date.now() > deadline) throw new Error(`the old CRD ${name} is still there after 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await installCrds(kubeconfig, [crd]);
}

/**
 * Creates the CRDs (those already there are kept) and waits until each serves lists: Established
 * alone is not enough, as the API server answers 429 "storage is (re)initializing" for a while after.
 */
export async function installCrds(kubeconfig: string, crds: k8s.V1CustomResourceDefinition[]): Promise<void> {
  const ext = apiClient(kubeconfig, k8s.ApiextensionsV1Api);
  const custom = apiClient(kubeconfig, k8s.CustomObjectsApi);
  for (const body of crds) {
    await ext.createCustomResourceDefinition({ body }).catch((e: { code?: number }) => {
      if (e.code !== 409) throw e;
    });
  }
  const deadline = Date.now() + 60_000;
  for (const { spec } of crds) {
    const version = spec.versions.find((v) => v.storage)!.name;
    const resource = { group: spec.group, version, plural: spec.names.plural };
    while (!(await custom.listClusterCustomObject({ ...resource, limit: 1 }).catch(() => undefined))) {
      if (Date.now() > deadline) throw new Error(`CRD ${spec.names.plural}.${spec.group} not serving after 60 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function readyNodes(kubeconfig: string): Promise<number> {
  const nodes = await apiClient(kubeconfig, k8s.CoreV1Api).listNode();
  return nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
}

/** The upstream CRDs (test/k8s/crds.ts), applied and serving. */
async function installUpstreamCrds(kubeconfig: string, files: string[], progress: Progress): Promise<void> {
  progress(
    `installing ${files.length} upstream CRDs (${UPSTREAM_CRDS.map((c) => `${c.module}@${c.version}`).join(', ')})`,
  );
  const crds = files
    .flatMap((f) => k8s.loadAllYaml(readFileSync(f, 'utf8')) as k8s.V1CustomResourceDefinition[])
    .filter((doc) => doc?.kind === 'CustomResourceDefinition');
  await installCrds(kubeconfig, crds);
}

/**
 * A self-signed serving certificate for 127.0.0.1 in `dir` (tls.crt, tls.key, and ca.crt: itself),
 * for the upstream controllers the tests and benchmarks run on loopback (LWS's webhooks, KEDA).
 */
const FRONT_PROXY_CLIENT = 'front-proxy-client';

export function selfSignedCertificate(dir: string, commonName: string, names = ['IP:127.0.0.1']): void {
  requireTools({ command: 'openssl', install: 'openssl (Debian/Ubuntu: apt install openssl)' });
  const [key, crt] = [join(dir, 'tls.key'), join(dir, 'tls.crt')];
  const subject = ['-subj', `/CN=${commonName}`, '-addext', `subjectAltName=${names.join(',')}`];
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', ...subject, '-keyout', key, '-out', crt],
    {
      stdio: 'ignore',
    },
  );
  copyFileSync(crt, join(dir, 'ca.crt'));
}
