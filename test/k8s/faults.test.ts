// `tandem operator` as `tandem install` runs it, behind a proxy that makes the API server misbehave
// (429, 500, connection resets, slow answers, watches cut mid-stream) while an InferenceService is
// created, loses a pod and is scaled: the process stays up, with no unhandled rejection, and once
// the faults stop everything converges to what the spec asks for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../src/platforms/kubernetes/crd.js';
import { LABEL } from '../../src/platforms/kubernetes/objects.js';
import { GROUP_STATE } from '../../src/platforms/kubernetes/status-store.js';
import { apiClient, installTandemCrd, kubeConfig } from './cluster.js';
import { until, useTestCluster } from './harness.js';
import { clusterCa, serviceAccountConfig, startOperator } from './accounts.js';
import { FAULTS, startFaultProxy } from './fault-proxy.js';
import { LeaderLease } from '../../src/platforms/kubernetes/lease.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
let kubeconfig: string;
const ns = `tandem-faults-${process.pid}`;
useTestCluster(ns, async (k) => {
  kubeconfig = k;
  await installTandemCrd(kubeconfig);
  // The operator's ServiceAccount, with the Role `tandem install` gives it: requests through the
  // proxy carry its token.
  const docs = k8s.loadAllYaml(
    execFileSync(process.execPath, [cli, 'install', '--image', 'x', '--namespace', ns], { encoding: 'utf8' }),
  ) as k8s.KubernetesObject[];
  const objects = k8s.KubernetesObjectApi.makeApiClient(kubeConfig(kubeconfig));
  for (const d of docs.filter(
    (d) => d.metadata?.name === 'tandem-operator' && /^(ServiceAccount|Role|RoleBinding)$/.test(d.kind!),
  ))
    await objects.create(d);
});

const where = { group: GROUP, version: VERSION, namespace: ns, plural: PLURAL };
const SEED = Number(process.env.TANDEM_FAULT_SEED ?? Date.now() % 2 ** 31);

test(`an operator behind a faulty API server stays up and converges once the faults stop (seed ${SEED}: TANDEM_FAULT_SEED replays it)`, async () => {
  const custom = apiClient(kubeconfig, k8s.CustomObjectsApi);
  const core = apiClient(kubeconfig, k8s.CoreV1Api);
  const server = kubeConfig(kubeconfig).getCurrentCluster()!.server;
  const proxy = await startFaultProxy(server, Buffer.from(clusterCa(kubeconfig), 'base64'), { seed: SEED, rate: 0.2 });
  const op = startOperator(
    await serviceAccountConfig(kubeconfig, ns, 'tandem-operator', { server: proxy.url, ca: proxy.ca }),
  );
  const context = () =>
    `faults injected: ${JSON.stringify(proxy.injected)}\nlast requests:\n${proxy.recent.join('\n')}\noperator:\n${op.log.slice(-6000)}`;
  const pods = async () =>
    (await core.listNamespacedPod({ namespace: ns, labelSelector: `${LABEL.service}=rough` })).items;
  try {
    await until('the operator to lead', 30_000, async () => (op.log.includes('leading') ? true : undefined), context);
    proxy.faulty = true;
    const spec = {
      model: { servedName: 'rough', source: 'hf://org/rough-GGUF' },
      engine: { type: 'vllm' },
      parallelism: { nodes: 2 },
      replicas: 2,
      resources: { gpu: 0 },
    };
    await custom.createNamespacedCustomObject({
      ...where,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'InferenceService', metadata: { name: 'rough' }, spec },
    });
    // Under faults: a member of a group dies and the service is scaled up.
    // A member of a complete group, as recorded on its Service (one lost before its group is
    // complete, or before that is on record, is only made again).
    const victim = await until(
      'a complete group on record, to lose one of its members',
      60_000,
      async () => {
        const list = await pods();
        for (const s of (await core.listNamespacedService({ namespace: ns, labelSelector: `${LABEL.service}=rough` }))
          .items) {
          const state = JSON.parse(s.metadata?.annotations?.[GROUP_STATE] ?? '{}') as {
            members?: Record<string, string>;
          };
          const uids = Object.values(state.members ?? {});
          if (uids.length === 2) return list.find((p) => p.metadata?.uid === uids[0]);
        }
        return undefined;
      },
      context,
    );
    await core.deleteNamespacedPod({ namespace: ns, name: victim.metadata!.name! });
    await custom.patchNamespacedCustomObject(
      { ...where, name: 'rough', body: { spec: { replicas: 3 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    // Faults last until each kind has struck a few times.
    await until(
      () => `each fault to strike 3 times (so far ${JSON.stringify(proxy.injected)})`,
      120_000,
      async () => (FAULTS.every((f) => proxy.injected[f] >= 3) ? true : undefined),
      context,
    );
    proxy.faulty = false;

    await until(
      'every group Ready, with its Service and NetworkPolicy, and the status to say so',
      60_000,
      async () => {
        const list = await pods();
        const ready = list.filter(
          (p) =>
            !p.metadata?.deletionTimestamp &&
            p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        const services = await core.listNamespacedService({ namespace: ns, labelSelector: `${LABEL.service}=rough` });
        const policies = await apiClient(kubeconfig, k8s.NetworkingV1Api).listNamespacedNetworkPolicy({
          namespace: ns,
          labelSelector: `${LABEL.service}=rough`,
        });
        const object = (await custom.getNamespacedCustomObject({ ...where, name: 'rough' })) as {
          status?: { readyGroups?: string };
        };
        return list.length === 6 &&
          ready.length === 6 &&
          services.items.length === 3 &&
          policies.items.length === 3 &&
          object.status?.readyGroups === '3/3'
          ? true
          : undefined;
      },
      context,
    );
    assert.equal(op.child.exitCode, null, `the operator exited\n${context()}`);
    assert.doesNotMatch(op.log, /unhandled rejection/i, context());
    const status = (await custom.getNamespacedCustomObject({ ...where, name: 'rough' })) as {
      status: { groups: { replica: number; restarts: number }[] };
    };
    const lost = Number(victim.metadata!.labels![LABEL.replica]);
    // Counted at most once. CI saw 0 twice: the member was made again rather than the group
    // recreated (both leave it whole). Likely a fault that cut the answer to the write putting the
    // complete group on record, so the operator did not know it landed; not yet confirmed.
    const restarts = status.status.groups.find((g) => g.replica === lost)?.restarts ?? -1;
    assert.ok(
      restarts === 0 || restarts === 1,
      `the group that lost a pod under faults was recreated at most once (restarts ${restarts})\n${context()}`,
    );
  } finally {
    // Its exit waited for: it gives up its lease through the proxy, so the next test need not wait
    // for the lease to expire.
    op.child.kill('SIGTERM');
    await until('the operator to exit on SIGTERM', 20_000, async () =>
      op.child.exitCode !== null || op.child.signalCode !== null ? true : undefined,
    ).finally(() => proxy.close());
    await custom.deleteNamespacedCustomObject({ ...where, name: 'rough' }).catch(() => undefined);
  }
});

// CI hung here once: a release that came while a renewal was on its way was undone by it (the
// renewal's write landed first, the release's met a conflict), and the renewals went on.
test('a lease released while its renewal is on its way stays released: another candidate takes it at once', async () => {
  const server = kubeConfig(kubeconfig).getCurrentCluster()!.server;
  const proxy = await startFaultProxy(server, Buffer.from(clusterCa(kubeconfig), 'base64'), { seed: SEED, rate: 0 });
  const options = { namespace: ns, name: 'tandem-operator', durationSeconds: 3 };
  const slow = kubeConfig(
    await serviceAccountConfig(kubeconfig, ns, 'tandem-operator', { server: proxy.url, ca: proxy.ca }),
  );
  const a = new LeaderLease(slow, { ...options, identity: 'a' });
  const b = new LeaderLease(kubeConfig(kubeconfig), { ...options, identity: 'b' });
  try {
    await a.acquire(() => undefined);
    let writes = 0;
    proxy.hold = (req) => (req.method === 'PUT' && (req.url ?? '').includes('/leases/') ? (writes++, 1500) : 0);
    await until("a's renewal on its way", 5_000, async () => (writes > 0 ? true : undefined));
    await a.release();
    proxy.hold = undefined;
    let taken = false;
    const took = b.acquire(() => undefined).then(() => (taken = true));
    await until('the other candidate to take the released lease', 10_000, async () => (taken ? true : undefined));
    await took;
  } finally {
    await a.release();
    await b.release();
    await proxy.close();
  }
});
