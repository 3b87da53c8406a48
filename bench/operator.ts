// bench:operator: N InferenceServices × 2 pods on the test control plane (KWOK nodes added for the
// pod count) under `tandem operator` as its own process, run as `tandem install` runs it. Prints the
// time until every group is Ready, per-group time to Ready (p50/p99), peak RSS and CPU seconds.
// The side-by-side run of the LWS controller is not here yet (see the README's Benchmarks).
//   npm run bench:operator [-- --groups N]   (default 1000; 15 minutes at most)
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { stderrProgress } from '../src/util/progress.js';
import { GROUP, PLURAL, VERSION } from '../src/runtime/kubernetes/crd.js';
import { Watch } from '../src/runtime/kubernetes/api.js';
import { OPERATOR_NODE_OPTIONS } from '../src/cli/cluster.js';
import {
  addFakeNode,
  apiClient,
  installTandemCrd,
  kubeConfig,
  BENCH_NODE_LABEL,
  startCluster,
  stopCluster,
} from '../test/k8s/cluster.js';

const { values } = parseArgs({
  options: { groups: { type: 'string', default: '1000' } },
});
const groups = Number(values.groups);
if (!Number.isInteger(groups) || groups < 1 || groups > 5000) throw new Error('--groups: an integer from 1 to 5000');
const DEADLINE_MS = 15 * 60_000;

interface Result {
  allReadyMs: number;
  perGroupReadyMs: { p50: number; p99: number };
  peakRssMiB: number;
  cpuSeconds: number;
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
  while (readyAt.size < groups) {
    if (controller.exitCode !== null) throw new Error(`${what} exited (${controller.exitCode}):\n${log()}`);
    if (Date.now() - start > DEADLINE_MS) throw new Error(`${what}: ${readyAt.size}/${groups} Ready after 15 min`);
    if (Date.now() - shown > 10_000) {
      stderrProgress(`${what}: ${readyAt.size}/${groups} groups Ready (${Math.round((Date.now() - start) / 1000)} s)`);
      shown = Date.now();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await watch.stop();
  const perGroup = names.map((n) => readyAt.get(n)! - createdAt.get(n)!).sort((a, b) => a - b);
  const pct = (p: number) => perGroup[Math.min(perGroup.length - 1, Math.floor((p / 100) * perGroup.length))]!;
  const status = readFileSync(`/proc/${controller.pid}/status`, 'utf8');
  const stat = readFileSync(`/proc/${controller.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return {
    allReadyMs: Math.max(...readyAt.values()) - start,
    perGroupReadyMs: { p50: pct(50), p99: pct(99) },
    peakRssMiB: Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024),
    cpuSeconds: (Number(stat[11]) + Number(stat[12])) / 100, // utime + stime, in clock ticks
  };
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
const namespaces: string[] = [];
const newNamespace = async (name: string) => {
  await core.createNamespace({ body: { metadata: { name } } });
  namespaces.push(name);
  return name;
};
try {
  await installTandemCrd(kubeconfig);
  const existing = new Set((await core.listNode()).items.map((n) => n.metadata?.name));
  for (let i = 0; i < Math.ceil((groups * 2) / 100); i++) {
    if (!existing.has(`bench-node-${i}`))
      await addFakeNode(kubeconfig, `bench-node-${i}`, {}, { [BENCH_NODE_LABEL]: 'true' });
  }
  const tandemNs = await newNamespace(`tandem-bench-${process.pid}`);
  const cli = join(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
  const tandem = spawnLogged(process.execPath, [cli, 'operator', '--kubeconfig', kubeconfig, '--namespace', tandemNs], {
    ...process.env,
    NODE_OPTIONS: OPERATOR_NODE_OPTIONS, // as `tandem install` runs it
  });
  children.push(tandem.child);
  const result = await measure(
    kubeconfig,
    'tandem',
    { group: GROUP, version: VERSION, plural: PLURAL, namespace: tandemNs },
    (name) => ({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'InferenceService',
      metadata: { name },
      spec: {
        model: { servedName: 'bench', source: 'hf://org/model-GGUF' },
        engine: { type: 'llamacpp' },
        parallelism: { nodes: 2 },
        resources: { cpu: '100m', memory: '64Mi' },
      },
    }),
    (o) => o.status?.readyGroups === '1/1',
    tandem.child,
    tandem.log,
  );
  tandem.child.kill('SIGTERM');

  console.log(JSON.stringify({ groups, pods: groups * 2, ...result }, null, 2));
} finally {
  for (const c of children) c.kill('SIGTERM');
  for (const ns of namespaces) await core.deleteNamespace({ name: ns }).catch(() => undefined);
  await core.deleteCollectionNode({ labelSelector: BENCH_NODE_LABEL }).catch(() => undefined);
  if (cluster.started) await stopCluster();
}
