// bench:operator: N InferenceServices × 2 pods on the test control plane (KWOK nodes added for the
// pod count), `tandem operator` as its own process. Prints the time until every group is Ready,
// per-group time to Ready (p50/p99), the operator's peak RSS and CPU seconds.
//   npm run bench:operator [-- --groups N]   (default 1000; bounded by a 15-minute deadline)
import { spawn } from 'node:child_process';
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
  startCluster,
  stopCluster,
} from '../test/k8s/cluster.js';

const { values } = parseArgs({ options: { groups: { type: 'string', default: '1000' } } });
const groups = Number(values.groups);
if (!Number.isInteger(groups) || groups < 1 || groups > 5000) throw new Error('--groups: an integer from 1 to 5000');
const DEADLINE_MS = 15 * 60_000;
const ns = `tandem-bench-${process.pid}`;

const cluster = await startCluster(stderrProgress);
const kubeconfig = cluster.kubeconfig;
const core = apiClient(kubeconfig, k8s.CoreV1Api);
const custom = apiClient(kubeconfig, k8s.CustomObjectsApi);
let operator: ReturnType<typeof spawn> | undefined;
try {
  await installTandemCrd(kubeconfig);
  const existing = new Set((await core.listNode()).items.map((n) => n.metadata?.name));
  const nodes = Math.ceil((groups * 2) / 100);
  for (let i = 0; i < nodes; i++)
    if (!existing.has(`bench-node-${i}`)) await addFakeNode(kubeconfig, `bench-node-${i}`);
  await core.createNamespace({ body: { metadata: { name: ns } } });

  const cli = join(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
  operator = spawn(process.execPath, [cli, 'operator', '--kubeconfig', kubeconfig, '--namespace', ns], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: OPERATOR_NODE_OPTIONS }, // as `tandem install` runs it
  });
  let log = '';
  operator.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  const pid = operator.pid!;

  // Every object's first Ready, from a watch (the informer) on the objects.
  const readyAt = new Map<string, number>();
  const createdAt = new Map<string, number>();
  const informer = k8s.makeInformer(
    kubeConfig(kubeconfig),
    `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`,
    () =>
      custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL }) as Promise<
        k8s.KubernetesListObject<k8s.KubernetesObject & { status?: { readyGroups?: string } }>
      >,
  );
  const seen = (o: k8s.KubernetesObject & { status?: { readyGroups?: string } }) => {
    const name = o.metadata!.name!;
    if (o.status?.readyGroups === '1/1' && !readyAt.has(name)) readyAt.set(name, Date.now());
  };
  informer.on('add', seen);
  informer.on('update', seen);
  const watch = new Watch(informer, PLURAL, (line) => process.stderr.write(`${line}\n`));
  await watch.start();

  const start = Date.now();
  const spec = {
    model: { servedName: 'bench', source: 'hf://org/model-GGUF' },
    engine: { type: 'llamacpp' },
    parallelism: { nodes: 2 },
    resources: { cpu: '100m', memory: '64Mi' },
  };
  const names = Array.from({ length: groups }, (_, i) => `bench-${i}`);
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(
      names.slice(i, i + 20).map(async (name) => {
        createdAt.set(name, Date.now());
        await custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: ns,
          plural: PLURAL,
          body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'InferenceService', metadata: { name }, spec },
        });
      }),
    );
  }
  const created = Date.now() - start;
  let lastShown = 0;
  while (readyAt.size < groups) {
    if (Date.now() - start > DEADLINE_MS) throw new Error(`only ${readyAt.size}/${groups} Ready after 15 min\n${log}`);
    if (Date.now() - lastShown > 10_000) {
      stderrProgress(`${readyAt.size}/${groups} groups Ready (${Math.round((Date.now() - start) / 1000)} s)`);
      lastShown = Date.now();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const total = Math.max(...readyAt.values()) - start;
  const perGroup = names.map((n) => readyAt.get(n)! - createdAt.get(n)!).sort((a, b) => a - b);
  const pct = (p: number) => perGroup[Math.min(perGroup.length - 1, Math.floor((p / 100) * perGroup.length))]!;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const peakKiB = Number(/VmHWM:\s+(\d+)/.exec(status)![1]);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const cpuSeconds = (Number(stat[11]) + Number(stat[12])) / 100; // utime + stime, in clock ticks
  await watch.stop();
  console.log(
    JSON.stringify(
      {
        groups,
        pods: groups * 2,
        objectsCreatedMs: created,
        allReadyMs: total,
        perGroupReadyMs: { p50: pct(50), p99: pct(99) },
        operatorPeakRssMiB: Math.round(peakKiB / 1024),
        operatorCpuSeconds: cpuSeconds,
      },
      null,
      2,
    ),
  );
} finally {
  operator?.kill('SIGTERM');
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
  if (cluster.started) await stopCluster();
}
