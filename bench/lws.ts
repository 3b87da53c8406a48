// The LeaderWorkerSet controller (sigs.k8s.io/lws, pinned in bench/lws/go.mod), built from its Go
// module once, run against the test control plane as its own docs describe a non-cert-manager
// install: internal cert management off, its webhooks served on a loopback URL with a self-signed
// certificate, its webhook configurations pointed there.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { cacheDir } from '../src/util/paths.js';
import { freePort } from '../src/util/net.js';
import { Prober } from '../src/platforms/local/probe.js';
import type { Progress } from '../src/util/progress.js';
import { goBuild } from '../test/k8s/binaries.js';
import { kubeConfig, selfSignedCertificate } from '../test/k8s/cluster.js';

const MODULE = join(dirname(fileURLToPath(import.meta.url)), '../../bench/lws');
const PKG = 'sigs.k8s.io/lws/cmd';

const go = (args: string[]) => execFileSync('go', args, { cwd: MODULE, encoding: 'utf8' }).trim();

export async function ensureLwsManager(progress: Progress): Promise<string> {
  const key = createHash('sha256')
    .update(go(['version']))
    .update(readFileSync(join(MODULE, 'go.sum')))
    .digest('hex')
    .slice(0, 16);
  const out = join(cacheDir(), 'bench', `lws-${key}`, 'manager');
  if (existsSync(out)) return out;
  progress(`building the LeaderWorkerSet controller (${PKG}) from its Go module; once, cached in ${dirname(out)}`);
  go(['mod', 'download']);
  const total = go(['list', '-deps', '-f', '{{if not .Standard}}x{{end}}', PKG]).split('\n').filter(Boolean).length;
  const started = Date.now();
  await goBuild(
    MODULE,
    PKG,
    out,
    total,
    (pct) => progress(`building LWS: ${pct}% (${Math.round((Date.now() - started) / 1000)} s)`),
    join(dirname(out), 'build.log'),
  );
  return out;
}

/** Starts the LWS controller with its webhooks on 127.0.0.1; returns the process. */
export async function startLws(
  manager: string,
  kubeconfig: string,
  adminKubeconfig: string,
  namespace: string,
  log: (chunk: string) => void,
): Promise<ChildProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-lws-'));
  const certDir = join(dir, 'certs');
  mkdirSync(certDir);
  selfSignedCertificate(certDir, '127.0.0.1');
  const port = await freePort('127.0.0.1');
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    stringify({
      apiVersion: 'config.lws.x-k8s.io/v1alpha1',
      kind: 'Configuration',
      leaderElection: { leaderElect: false },
      internalCertManagement: { enable: false },
      webhook: { port, host: '127.0.0.1', certDir },
      metrics: { bindAddress: '0' },
      health: { healthProbeBindAddress: `127.0.0.1:${await freePort('127.0.0.1')}` },
    }),
  );
  // Its webhook configurations, from the module source, pointed at the loopback server.
  const source = go(['list', '-m', '-f', '{{.Dir}}', 'sigs.k8s.io/lws']);
  const caBundle = readFileSync(join(certDir, 'tls.crt')).toString('base64');
  const objects = k8s.KubernetesObjectApi.makeApiClient(kubeConfig(adminKubeconfig));
  for (const doc of k8s.loadAllYaml(readFileSync(join(source, 'config/webhook/manifests.yaml'), 'utf8')) as {
    metadata: { name: string };
    webhooks: {
      clientConfig: { service?: { path: string }; url?: string; caBundle?: string };
      namespaceSelector?: unknown;
    }[];
  }[]) {
    doc.metadata.name = `lws-bench-${doc.metadata.name}`;
    for (const w of doc.webhooks) {
      w.clientConfig = { url: `https://127.0.0.1:${port}${w.clientConfig.service!.path}`, caBundle };
      // Only the benchmark's namespace: a leftover pod webhook must never refuse anyone else's pods.
      w.namespaceSelector = { matchLabels: { 'kubernetes.io/metadata.name': namespace } };
    }
    await objects.delete(doc as unknown as k8s.KubernetesObject).catch(() => undefined);
    await objects.create(doc as unknown as k8s.KubernetesObject);
  }
  const child = spawn(manager, ['--config', config], {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => log(d.toString()));
  // Its webhook server up before the first object (the API server would refuse them otherwise).
  const webhook = new Prober({ host: '127.0.0.1', port }, { kind: 'tcp' });
  for (const deadline = Date.now() + 60_000; !(await webhook.check());) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the LWS controller's webhook server did not start on 127.0.0.1:${port}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return child;
}

/** Removes the webhook configurations startLws made (they would refuse pods once the server is gone). */
export async function removeLwsWebhooks(kubeconfig: string): Promise<void> {
  const admission = kubeConfig(kubeconfig).makeApiClient(k8s.AdmissionregistrationV1Api);
  await admission
    .deleteMutatingWebhookConfiguration({ name: 'lws-bench-mutating-webhook-configuration' })
    .catch(() => undefined);
  await admission
    .deleteValidatingWebhookConfiguration({ name: 'lws-bench-validating-webhook-configuration' })
    .catch(() => undefined);
}
