// bench:operator: N groups × 2 pods on the test control plane (KWOK nodes added for the pod count),
// first as N InferenceServices under `tandem operator` (run as `tandem install` runs it), then as N
// equivalent LeaderWorkerSets under the LWS controller (sigs.k8s.io/lws, pinned in bench/lws/go.mod,
// built from its module), each controller its own process and its own API user. Prints, per
// controller, the time until every group is Ready, per-group time to Ready (p50/p99), peak RSS, CPU
// seconds and API requests (counted by the API server's audit log), and the ratios LWS / Tandem.
//   npm run bench:operator [-- --groups N] [-- --no-lws]   (default 1000, at most 10,000; 15 minutes at most each, 150 ms a group past 6,000)
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { stderrProgress } from '../src/util/progress.js';
import { GROUP, PLURAL, VERSION } from '../src/platforms/kubernetes/crd.js';
import { Watch } from '../src/platforms/kubernetes/api.js';
import { OPERATOR_NODE_OPTIONS } from '../src/cli/cluster.js';
import { DEFAULT_IMAGES } from '../src/platforms/kubernetes/objects.js';
import { ensureLwsManager, removeLwsWebhooks, startLws } from './lws.js';
import {
  addFakeNode,
  apiClient,
  installTandemCrd,
  kubeConfig,
  BENCH_NODE_LABEL,
  BENCH_USERS,
  apiRequests,
  startCluster,
  userKubeconfig,
  stopCluster,
} from '../test/k8s/cluster.js';

const { values } = parseArgs({
  options: { groups: { type: 'string', default: '1000' }, 'no-lws': { type: 'boolean', default: false } },
});
const groups = Number(values.groups);
if (!Number.isInteger(groups) || groups < 1 || groups > 10_000) throw new Error('--groups: an integer from 1 to 10000');
const DEADLINE_MS = Math.max(15 * 60_000, groups * 150); // 25 minutes at 10,000 groups

interface Result {
  /** Groups Ready before the deadline; when short of all, the times below are lower bounds. */
  readyGroups: number;
  allReadyMs: number;
  perGroupReadyMs: { p50: number; p99: number };
  peakRssMiB: number;
  cpuSeconds: number;
  apiRequests: { total: number } & Record<string, number>;
}

type Obj = k8s.KubernetesObject & { status?: Record<string, unknown> };

/** Creates N objects, watches them until each is Ready, and reads the controller's /proc figures. */
async function measure(
  kubeconfig: string,
  what: string,
  api: { group: string; version: string; plural: string; namespace: string },
  body: (name: string) => object,
  ready: (o: Obj) => boolean,
  controller: ChildProcess,
  user: string,
  log: () => string,
): Promise<Result> {
  const custom = apiClient(kubeconfig, k8s.CustomObjectsApi);
  const readyAt = new Map<string, number>();
  const createdAt = new Map<string, number>();
  const informer = k8s.makeInformer(
    kubeConfig(kubeconfig),
    `/apis/${api.group}/${api.version}/namespaces/${api.namespace}/${api.plural}`,
    () => custom.listNamespacedCustomObject(api) as Promise<k8s.KubernetesListObject<Obj>>,
  );
  const seen = (o: Obj) => {
    if (ready(o) && !readyAt.has(o.metadata!.name!)) readyAt.set(o.metadata!.name!, Date.now());
  };
  informer.on('add', seen);
  informer.on('update', seen);
  const watch = new Watch(informer, api.plural, (line) => process.stderr.write(`${line}\n`));
  await watch.start();
  // The audit log outlives runs: count this run's requests only.
  const requestsBefore = apiRequests(user);
  const start = Date.now();
  const names = Array.from({ length: groups }, (_, i) => `bench-${i}`);
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(
      names.slice(i, i + 20).map(async (name) => {
        createdAt.set(name, Date.now());
        await custom.createNamespacedCustomObject({ ...api, body: body(name) });
      }),
    );
  }
  let shown = 0;
  while (readyAt.size < groups && Date.now() - start < DEADLINE_MS) {
    if (controller.exitCode !== null) throw new Error(`${what} exited (${controller.exitCode}):\n${log()}`);
    if (Date.now() - shown > 10_000) {
      stderrProgress(`${what}: ${readyAt.size}/${groups} groups Ready (${Math.round((Date.now() - start) / 1000)} s)`);
      shown = Date.now();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await watch.stop();
  // A group not Ready by the deadline counts as Ready at the deadline: a lower bound.
  const end = Date.now();
  if (readyAt.size < groups)
    stderrProgress(`${what}: only ${readyAt.size}/${groups} groups Ready after ${DEADLINE_MS / 60_000} min`);
  const perGroup = names.map((n) => (readyAt.get(n) ?? end) - createdAt.get(n)!).sort((a, b) => a - b);
  const pct = (p: number) => perGroup[Math.min(perGroup.length - 1, Math.floor((p / 100) * perGroup.length))]!;
  const status = readFileSync(`/proc/${controller.pid}/status`, 'utf8');
  const stat = readFileSync(`/proc/${controller.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return {
    readyGroups: readyAt.size,
    allReadyMs: (readyAt.size < groups ? end : Math.max(...readyAt.values())) - start,
    perGroupReadyMs: { p50: pct(50), p99: pct(99) },
    peakRssMiB: Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024),
    cpuSeconds: (Number(stat[11]) + Number(stat[12])) / 100, // utime + stime, in clock ticks
    apiRequests: byVerb(since(apiRequests(user), requestsBefore)),
  };
}

function since(now: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(now).map(([verb, n]) => [verb, n - (before[verb] ?? 0)]));
}

function byVerb(counts: Record<string, number>): Result['apiRequests'] {
  return { total: Object.values(counts).reduce((a, b) => a + b, 0), ...counts };
}

function spawnLogged(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; log: () => string } {
  let text = '';
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => (text = (text + d.toString()).slice(-20_000)));
  return { child, log: () => text };
}

const cluster = await startCluster(stderrProgress);
const kubeconfig = cluster.kubeconfig;
const core = apiClient(kubeconfig, k8s.CoreV1Api);
const children: ChildProcess[] = [];
const BENCH_NS = /^(tandem|lws)-bench-\d+$/;

/** Removes a namespace and waits until it is gone (its pods too), so the next run starts clean. */
async function removeNamespace(name: string): Promise<void> {
  await core.deleteNamespace({ name }).catch(() => undefined);
  for (const deadline = Date.now() + 5 * 60_000; Date.now() < deadline;) {
    if (!(await core.readNamespace({ name }).catch(() => undefined))) return;
    stderrProgress(`waiting for namespace ${name} to go`);
    await new Promise((r) => setTimeout(r, 5000));
  }
}

async function cleanUp(): Promise<void> {
  for (const c of children) c.kill('SIGTERM');
  await removeLwsWebhooks(kubeconfig);
  const leftovers = (await core.listNamespace()).items.map((n) => n.metadata!.name!).filter((n) => BENCH_NS.test(n));
  for (const ns of leftovers) await removeNamespace(ns);
  await core.deleteCollectionNode({ labelSelector: BENCH_NODE_LABEL }).catch(() => undefined);
}
// Interrupted runs clean up too: leftover pods and nodes would slow every later test on this plane.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stderrProgress(`${signal}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}

try {
  await cleanUp(); // what an earlier run left behind
  const lwsManager = values['no-lws'] ? undefined : await ensureLwsManager(stderrProgress); // built before timing
  await installTandemCrd(kubeconfig);
  for (let i = 0; i < Math.ceil((groups * 2) / 100); i++) {
    await addFakeNode(kubeconfig, `bench-node-${i}`, {}, { [BENCH_NODE_LABEL]: 'true' });
  }
  // The same pods for both: vLLM's image, the same requests, every member created at once (LWS's
  // LeaderCreated; llama.cpp would have Tandem start workers before their leader).
  const container = { image: DEFAULT_IMAGES.vllm, resources: { requests: { cpu: '100m', memory: '64Mi' } } };
  const [tandemUser, lwsUser] = BENCH_USERS as [string, string];

  const tandemNs = `tandem-bench-${process.pid}`;
  await core.createNamespace({ body: { metadata: { name: tandemNs } } });
  const cli = join(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
  const tandem = spawnLogged(
    process.execPath,
    [cli, 'operator', '--kubeconfig', userKubeconfig(kubeconfig, tandemUser), '--namespace', tandemNs],
    { ...process.env, NODE_OPTIONS: OPERATOR_NODE_OPTIONS }, // as `tandem install` runs it
  );
  children.push(tandem.child);
  const results: Record<string, Result> = {};
  results.tandem = await measure(
    kubeconfig,
    'tandem',
    { group: GROUP, version: VERSION, plural: PLURAL, namespace: tandemNs },
    (name) => ({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'InferenceService',
      metadata: { name },
      spec: {
        model: { servedName: 'bench', source: 'hf://org/model' },
        engine: { type: 'vllm', image: container.image },
        parallelism: { nodes: 2 },
        resources: container.resources.requests,
      },
    }),
    (o) => o.status?.readyGroups === '1/1',
    tandem.child,
    tandemUser,
    tandem.log,
  );
  tandem.child.kill('SIGTERM');
  await removeNamespace(tandemNs);

  if (lwsManager) {
    const lwsNs = `lws-bench-${process.pid}`;
    await core.createNamespace({ body: { metadata: { name: lwsNs } } });
    let lwsLog = '';
    const manager = await startLws(
      lwsManager,
      userKubeconfig(kubeconfig, lwsUser),
      kubeconfig,
      lwsNs,
      (d) => (lwsLog = (lwsLog + d).slice(-20_000)),
    );
    children.push(manager);
    results.lws = await measure(
      kubeconfig,
      'lws',
      { group: 'leaderworkerset.x-k8s.io', version: 'v1', plural: 'leaderworkersets', namespace: lwsNs },
      (name) => ({
        apiVersion: 'leaderworkerset.x-k8s.io/v1',
        kind: 'LeaderWorkerSet',
        metadata: { name },
        spec: {
          replicas: 1,
          leaderWorkerTemplate: {
            size: 2,
            workerTemplate: { spec: { containers: [{ name: 'engine', ...container }] } },
          },
        },
      }),
      (o) => o.status?.readyReplicas === 1,
      manager,
      lwsUser,
      () => lwsLog,
    );
  }
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const atLeast = (r: Result, x: number) => (r.readyGroups < groups ? `≥ ${x}` : x);
  const t = results.tandem;
  const l = results.lws;
  console.log(
    JSON.stringify(
      {
        groups,
        podsPerController: groups * 2,
        ...results,
        ...(l
          ? {
              'lws/tandem': {
                // "≥": LWS had groups not Ready at the deadline, so its times are lower bounds.
                allReady: atLeast(l, ratio(l.allReadyMs, t.allReadyMs)),
                p50: atLeast(l, ratio(l.perGroupReadyMs.p50, t.perGroupReadyMs.p50)),
                p99: atLeast(l, ratio(l.perGroupReadyMs.p99, t.perGroupReadyMs.p99)),
                peakRss: ratio(l.peakRssMiB, t.peakRssMiB),
                cpu: ratio(l.cpuSeconds, t.cpuSeconds),
                apiRequests: ratio(l.apiRequests.total, t.apiRequests.total),
              },
            }
          : {}),
      },
      null,
      2,
    ),
  );
} finally {
  await cleanUp();
  if (cluster.started) await stopCluster();
}
