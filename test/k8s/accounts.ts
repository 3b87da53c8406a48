// Running Tandem's processes as the ServiceAccounts `tandem install` creates: a kubeconfig with a
// token of the account (optionally through another server, such as the fault proxy), and the
// `tandem operator` command started on it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { apiClient, kubeConfig } from './cluster.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** The API server's CA, base64 PEM. */
export function clusterCa(kubeconfig: string): string {
  const cluster = kubeConfig(kubeconfig).getCurrentCluster()!;
  return cluster.caData ?? readFileSync(cluster.caFile!).toString('base64');
}

/** A kubeconfig file for ServiceAccount `name` of `ns`, to the API server or to `via`. */
export async function serviceAccountConfig(
  kubeconfig: string,
  ns: string,
  name: string,
  via?: { server: string; ca: Buffer },
): Promise<string> {
  const token = await apiClient(kubeconfig, k8s.CoreV1Api).createNamespacedServiceAccountToken({
    namespace: ns,
    name,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const server = via?.server ?? kubeConfig(kubeconfig).getCurrentCluster()!.server;
  const ca = via?.ca.toString('base64') ?? clusterCa(kubeconfig);
  const file = join(mkdtempSync(join(tmpdir(), 'tandem-sa-')), 'kubeconfig');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server, 'certificate-authority-data': ca } }],
      users: [{ name: 'sa', user: { token: token.status?.token } }],
      contexts: [{ name: 'sa', context: { cluster: 'c', user: 'sa', namespace: ns } }],
      'current-context': 'sa',
    }),
  );
  return file;
}

/** `tandem operator` on `config`, its stderr collected. */
export function startOperator(config: string): { child: ChildProcess; log: string } {
  const child = spawn(process.execPath, [cli, 'operator', '--kubeconfig', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const out = { child, log: '' };
  child.stderr!.on('data', (d: Buffer) => (out.log += d.toString()));
  return out;
}
