// KEDA as its Deployments run it, for the k8s tier: the operator (it polls a ScaledObject's external
// scaler, makes its HPA and takes it between zero and one) on the host, and, where the test cluster
// has its real node, the metrics adapter: the aggregated API server (external.metrics.k8s.io)
// through which the HPA controller reads the scaler's metric and sets counts above one. The
// adapter serves on every address of wherever it runs, so it runs in a network namespace of its
// own, attached to the real node's bridge like a pod (real-node.ts: onBridge); the API server
// reaches it there as the APIService's endpoint. Its certificates: one self-signed pair shared by
// the operator's metrics service and the adapter's client of it (KEDA's mutual TLS).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { freePort } from '../../src/util/net.js';
import { apiClient, selfSignedCertificate } from './cluster.js';
import { until } from './harness.js';
import { NODE_IP, onBridge } from './real-node.js';

export interface Keda {
  log(): string;
  stop(): Promise<void>;
}

const ADAPTER_IP = '10.244.0.200';
const ADAPTER_PORT = 6443;
const EXTERNAL_METRICS = 'v1beta1.external.metrics.k8s.io';

/**
 * KEDA's operator watching `namespace`; with `adapter` (its binary; needs the real node's bridge),
 * its metrics adapter too, registered as the cluster's external metrics API.
 */
export async function startKeda(o: {
  kubeconfig: string;
  namespace: string;
  operator: string;
  adapter?: string;
}): Promise<Keda> {
  const certs = mkdtempSync(join(tmpdir(), 'tandem-keda-certs-'));
  selfSignedCertificate(certs, 'keda-operator', ['IP:127.0.0.1', ...(o.adapter ? [`IP:${NODE_IP}`] : [])]);
  const metricsService = `${o.adapter ? NODE_IP : '127.0.0.1'}:${await freePort()}`;
  const env = {
    ...process.env,
    KUBECONFIG: o.kubeconfig,
    WATCH_NAMESPACE: o.namespace,
    POD_NAMESPACE: o.namespace,
    KEDA_CLUSTER_OBJECT_NAMESPACE: o.namespace,
  };
  let log = '';
  const children: ChildProcess[] = [];
  const keep = (name: string, child: ChildProcess) => {
    children.push(child);
    for (const s of [child.stdout, child.stderr])
      s?.on('data', (d: Buffer) => (log = `${log}${d.toString().replace(/^/gm, `${name}: `)}`.slice(-30_000)));
    return child;
  };
  keep(
    'operator',
    spawn(
      o.operator,
      [
        '--metrics-bind-address',
        '0',
        '--health-probe-bind-address',
        `127.0.0.1:${await freePort()}`,
        '--metrics-service-bind-address',
        metricsService,
        '--cert-dir',
        certs,
        '--ca-dir',
        certs,
        '--enable-webhook-patching=false',
        '--enable-apiservice-patching=false',
        '--zap-log-level',
        'info',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  const stop = async () => {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  };
  if (!o.adapter) return { log: () => log, stop };

  const adapterLines = () =>
    log
      .split('\n')
      .filter((l) => l.startsWith('adapter: '))
      .join('\n');
  const registration = apiClient(o.kubeconfig, k8s.ApiregistrationV1Api);
  const core = apiClient(o.kubeconfig, k8s.CoreV1Api);
  const unregister = () => registration.deleteAPIService({ name: EXTERNAL_METRICS }).catch(() => undefined);
  await unregister(); // what a run that crashed left
  try {
    // Its own network namespace, joined to the bridge before it starts (it waits for a line).
    const adapter = keep(
      'adapter',
      spawn(
        'unshare',
        [
          '-n',
          'sh',
          '-c',
          'read _ && exec "$@"',
          'keda-adapter',
          o.adapter,
          '--secure-port',
          String(ADAPTER_PORT),
          '--cert-dir',
          certs,
          '--metrics-service-address',
          metricsService,
          '--authentication-kubeconfig',
          o.kubeconfig,
          '--authorization-kubeconfig',
          o.kubeconfig,
          '--lister-kubeconfig',
          o.kubeconfig,
          '--v',
          '0',
        ],
        { env, stdio: ['pipe', 'pipe', 'pipe'] },
      ),
    );
    await until('the adapter in its network namespace', 10_000, async () =>
      onBridge(adapter.pid!, ADAPTER_IP) ? true : undefined,
    );
    adapter.stdin!.end('go\n');
    // The APIService's endpoint: a Service without a selector, and its address by hand.
    const name = 'keda-metrics-apiserver';
    await core.createNamespacedService({
      namespace: o.namespace,
      body: { metadata: { name }, spec: { ports: [{ port: ADAPTER_PORT, targetPort: ADAPTER_PORT }] } },
    });
    await core.createNamespacedEndpoints({
      namespace: o.namespace,
      body: {
        metadata: { name },
        subsets: [{ addresses: [{ ip: ADAPTER_IP }], ports: [{ port: ADAPTER_PORT }] }],
      },
    });
    await registration.createAPIService({
      body: {
        metadata: { name: EXTERNAL_METRICS },
        spec: {
          group: 'external.metrics.k8s.io',
          version: 'v1beta1',
          service: { namespace: o.namespace, name, port: ADAPTER_PORT },
          insecureSkipTLSVerify: true,
          groupPriorityMinimum: 100,
          versionPriority: 100,
        },
      },
    });
    let condition = '';
    await until(
      () =>
        `the external metrics API available (its condition: ${condition}; the adapter said: ${adapterLines().slice(-2000)})`,
      90_000,
      async () => {
        const available = (await registration.readAPIService({ name: EXTERNAL_METRICS })).status?.conditions?.find(
          (c) => c.type === 'Available',
        );
        condition = `${available?.reason}: ${available?.message}`;
        return available?.status === 'True' ? true : undefined;
      },
    );
  } catch (err) {
    await unregister();
    await stop();
    throw err;
  }
  return {
    log: () => log,
    stop: async () => {
      await unregister();
      await stop();
    },
  };
}
