// Builds the test control plane from source, once, into the cache: kube-apiserver,
// kube-controller-manager and kube-scheduler from the k8s.io/kubernetes module, etcd from
// go.etcd.io/etcd/server/v3 (both pinned in test/k8s/build/go.mod), and KWOK (test/k8s/kwok).
// The cache key covers both modules' go.mod and go.sum and the Go version.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../../src/util/paths.js';
import { withLock } from '../../src/util/lock.js';
import type { Progress } from '../../src/util/progress.js';
import { GO, requireTools } from '../../src/util/toolchain.js';

/** test/k8s in the source tree (this file runs from dist/test/k8s). */
export const K8S_SOURCE = join(fileURLToPath(import.meta.url), '../../../../test/k8s');

export interface K8sBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kwok: string;
  /** KWOK's stage definitions (node and pod lifecycles), from its module source. */
  kwokStages: string[];
}

const TARGETS: { module: string; pkg: string; out: string }[] = [
  { module: 'build', pkg: 'go.etcd.io/etcd/server/v3', out: 'etcd' },
  { module: 'build', pkg: 'k8s.io/kubernetes/cmd/kube-apiserver', out: 'kube-apiserver' },
  { module: 'build', pkg: 'k8s.io/kubernetes/cmd/kube-controller-manager', out: 'kube-controller-manager' },
  { module: 'build', pkg: 'k8s.io/kubernetes/cmd/kube-scheduler', out: 'kube-scheduler' },
  { module: 'kwok', pkg: 'sigs.k8s.io/kwok/cmd/kwok', out: 'kwok' },
];

function go(args: string[], cwd: string): string {
  return execFileSync('go', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function buildKey(modules = ['build', 'kwok']): string {
  const hash = createHash('sha256').update(go(['version'], K8S_SOURCE));
  for (const module of modules) {
    for (const file of ['go.mod', 'go.sum']) hash.update(readFileSync(join(K8S_SOURCE, module, file)));
  }
  return hash.digest('hex').slice(0, 16);
}

function kwokStages(): string[] {
  const dir = go(['list', '-m', '-f', '{{.Dir}}', 'sigs.k8s.io/kwok'], join(K8S_SOURCE, 'kwok'));
  const stages = [
    'kustomize/stage/node/fast/node-initialize.yaml',
    'kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
    'kustomize/stage/pod/fast/pod-ready.yaml',
    'kustomize/stage/pod/fast/pod-complete.yaml',
    'kustomize/stage/pod/fast/pod-delete.yaml',
  ].map((f) => join(dir, f));
  for (const s of stages) if (!existsSync(s)) throw new Error(`KWOK stage ${s} is missing from the module source`);
  return stages;
}

export async function ensureK8sBinaries(progress: Progress): Promise<K8sBinaries> {
  requireTools(GO);
  const dir = join(cacheDir(), 'k8s', `build-${buildKey()}`);
  const bin = (name: string) => join(dir, 'bin', name);
  const binaries = (): K8sBinaries => ({
    etcd: bin('etcd'),
    kubeApiserver: bin('kube-apiserver'),
    kubeControllerManager: bin('kube-controller-manager'),
    kubeScheduler: bin('kube-scheduler'),
    kwok: bin('kwok'),
    kwokStages: kwokStages(),
  });
  const done = join(dir, 'built.json');
  if (existsSync(done)) return binaries();
  return withLock(dir, async () => {
    if (existsSync(done)) return binaries();
    const started = Date.now();
    progress(
      `building the test control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK) from Go modules; once, cached in ${dir}`,
    );
    for (const module of ['build', 'kwok']) {
      progress(`downloading Go modules for test/k8s/${module}`);
      go(['mod', 'download'], join(K8S_SOURCE, module));
    }
    for (const [i, t] of TARGETS.entries()) {
      const cwd = join(K8S_SOURCE, t.module);
      const total = Number(
        go(['list', '-deps', '-f', '{{if not .Standard}}x{{end}}', t.pkg], cwd).split('\n').filter(Boolean).length,
      );
      progress(`[${i + 1}/${TARGETS.length}] building ${t.out} (${total} packages)`);
      await goBuild(
        cwd,
        t.pkg,
        bin(t.out),
        total,
        (pct) =>
          progress(
            `[${i + 1}/${TARGETS.length}] building ${t.out}: ${pct}% (${Math.round((Date.now() - started) / 1000)} s)`,
          ),
        join(dir, 'build.log'),
      );
    }
    const seconds = Math.round((Date.now() - started) / 1000);
    writeFileSync(done, JSON.stringify({ seconds, targets: TARGETS.map((t) => t.pkg) }, null, 2));
    progress(`built the test control plane in ${seconds} s`);
    return binaries();
  });
}

/**
 * KEDA's operator (test/k8s/keda: github.com/kedacore/keda/v2 at a pinned version), for the test of
 * a ScaledObject driving an InferenceService; built once, cached apart from the control plane.
 */
export async function ensureKedaOperator(progress: Progress): Promise<string> {
  requireTools(GO);
  const dir = join(cacheDir(), 'k8s', `keda-${buildKey(['keda'])}`);
  const out = join(dir, 'bin', 'keda-operator');
  const done = join(dir, 'built.json');
  if (existsSync(done)) return out;
  return withLock(dir, async () => {
    if (existsSync(done)) return out;
    const started = Date.now();
    const cwd = join(K8S_SOURCE, 'keda');
    const pkg = 'github.com/kedacore/keda/v2/cmd/operator';
    progress(`building KEDA's operator from its Go module (once, cached in ${dir}); downloading its modules`);
    go(['mod', 'download'], cwd);
    const total = go(['list', '-deps', '-f', '{{if not .Standard}}x{{end}}', pkg], cwd)
      .split('\n')
      .filter(Boolean).length;
    progress(`building keda-operator (${total} packages)`);
    await goBuild(
      cwd,
      pkg,
      out,
      total,
      (pct) => progress(`building keda-operator: ${pct}% (${Math.round((Date.now() - started) / 1000)} s)`),
      join(dir, 'build.log'),
    );
    const seconds = Math.round((Date.now() - started) / 1000);
    writeFileSync(done, JSON.stringify({ seconds, targets: [pkg] }, null, 2));
    progress(`built KEDA's operator in ${seconds} s`);
    return out;
  });
}

/** `go build -v` names each package as it compiles it: progress is their count over the total. */
export function goBuild(
  cwd: string,
  pkg: string,
  out: string,
  total: number,
  onProgress: (pct: number) => void,
  log: string,
): Promise<void> {
  mkdirSync(join(out, '..'), { recursive: true });
  rmSync(out, { force: true });
  return new Promise((resolve, reject) => {
    const child = spawn('go', ['build', '-v', '-trimpath', '-ldflags=-s -w', '-o', out, pkg], {
      cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let compiled = 0;
    let shown = 0;
    let tail = '';
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-4000);
      compiled += text.split('\n').filter((l) => l && !l.startsWith('#')).length;
      const pct = Math.min(99, Math.floor((100 * compiled) / Math.max(1, total)));
      if (pct >= shown + 20) {
        shown = pct - (pct % 20);
        onProgress(shown);
      }
    });
    child.on('error', (err) => reject(new Error(`go: ${err.message} (is Go installed?)`)));
    child.on('close', (code) => {
      writeFileSync(log, tail, { flag: 'a' });
      if (code === 0) resolve();
      else reject(new Error(`go build ${pkg} failed (exit ${code}):\n${tail}`));
    });
  });
}
