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

/** One command to build: a package of a module in test/k8s (its go.mod pins it), or `pkg@version`. */
interface Target {
  pkg: string;
  out: string;
  /** The folder under test/k8s whose go.mod pins it. */
  module?: string;
  /** Built with `go install pkg@version` (the module's own go.mod and go.sum, checked by the Go checksum database). */
  version?: string;
  tags?: string;
}

const CONTROL_PLANE: Target[] = [
  { module: 'build', pkg: 'go.etcd.io/etcd/server/v3', out: 'etcd' },
  { module: 'build', pkg: 'k8s.io/kubernetes/cmd/kube-apiserver', out: 'kube-apiserver' },
  { module: 'build', pkg: 'k8s.io/kubernetes/cmd/kube-controller-manager', out: 'kube-controller-manager' },
  { module: 'build', pkg: 'k8s.io/kubernetes/cmd/kube-scheduler', out: 'kube-scheduler' },
  { module: 'kwok', pkg: 'sigs.k8s.io/kwok/cmd/kwok', out: 'kwok' },
];

const CONTAINERD = 'v2.4.2';
const NO_GRAPHDRIVERS = 'no_btrfs no_devmapper no_zfs';

/**
 * The real node: kubelet and kube-proxy at the control plane's version, containerd 2 with its runc
 * shim and `ctr`, CoreDNS (Services' names in pods) and kube-router (its NetworkPolicy firewall
 * only); and kubectl, for people looking at the test cluster by hand.
 * kube-router's v2.1.0 is the newest the Go proxy serves; its reported flaws are in the parts not
 * run here (BGP routing, the service proxy), and it only ever sees the test's own pods.
 */
const NODE: Target[] = [
  { module: 'node', pkg: 'k8s.io/kubernetes/cmd/kubelet', out: 'kubelet' },
  { module: 'node', pkg: 'k8s.io/kubernetes/cmd/kube-proxy', out: 'kube-proxy' },
  { module: 'node', pkg: 'k8s.io/kubernetes/cmd/kubectl', out: 'kubectl' },
  {
    pkg: 'github.com/containerd/containerd/v2/cmd/containerd',
    version: CONTAINERD,
    out: 'containerd',
    tags: NO_GRAPHDRIVERS,
  },
  {
    pkg: 'github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2',
    version: CONTAINERD,
    out: 'containerd-shim-runc-v2',
  },
  { pkg: 'github.com/containerd/containerd/v2/cmd/ctr', version: CONTAINERD, out: 'ctr', tags: NO_GRAPHDRIVERS },
  { pkg: 'github.com/coredns/coredns', version: 'v1.15.0', out: 'coredns' },
  { pkg: 'github.com/cloudnativelabs/kube-router/v2/cmd/kube-router', version: 'v2.1.0', out: 'kube-router' },
];

function go(args: string[], cwd: string): string {
  return execFileSync('go', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** Changes with the Go version and with whatever pins the targets. */
function buildKey(targets: Target[]): string {
  const hash = createHash('sha256').update(go(['version'], K8S_SOURCE));
  for (const module of new Set(targets.flatMap((t) => (t.module ? [t.module] : [])))) {
    for (const file of ['go.mod', 'go.sum']) hash.update(readFileSync(join(K8S_SOURCE, module, file)));
  }
  for (const t of targets) if (t.version) hash.update(`${t.pkg}@${t.version} ${t.tags ?? ''}`);
  return hash.digest('hex').slice(0, 16);
}

/** Builds `targets` once into `<cache>/k8s/<name>-<key>/bin`, with progress; returns that folder. */
async function buildOnce(name: string, what: string, targets: Target[], progress: Progress): Promise<string> {
  requireTools(GO);
  const dir = join(cacheDir(), 'k8s', `${name}-${buildKey(targets)}`);
  const done = join(dir, 'built.json');
  if (existsSync(done)) return join(dir, 'bin');
  return withLock(dir, async () => {
    if (existsSync(done)) return join(dir, 'bin');
    const started = Date.now();
    const elapsed = () => `${Math.round((Date.now() - started) / 1000)} s`;
    progress(`building ${what} from Go modules; once, cached in ${dir}`);
    for (const module of new Set(targets.flatMap((t) => (t.module ? [t.module] : [])))) {
      progress(`downloading Go modules for test/k8s/${module}`);
      go(['mod', 'download'], join(K8S_SOURCE, module));
    }
    for (const [i, t] of targets.entries()) {
      const step = `[${i + 1}/${targets.length}] ${t.out}`;
      // Counting the packages to compile needs the module: `pkg@version` builds show a count instead.
      const total = t.module
        ? go(['list', '-deps', '-f', '{{if not .Standard}}x{{end}}', t.pkg], join(K8S_SOURCE, t.module))
            .split('\n')
            .filter(Boolean).length
        : undefined;
      progress(`${step}: building${total ? ` (${total} packages)` : ` (${t.pkg}@${t.version})`}`);
      await goBuild(
        t.module ? join(K8S_SOURCE, t.module) : dir,
        t.version ? `${t.pkg}@${t.version}` : t.pkg,
        join(dir, 'bin', t.out),
        total,
        (done) => progress(`${step}: ${total ? `${done}%` : `${done} packages compiled`} (${elapsed()})`),
        join(dir, 'build.log'),
        t.tags,
      );
    }
    const seconds = Math.round((Date.now() - started) / 1000);
    writeFileSync(done, JSON.stringify({ seconds, targets }, null, 2));
    progress(`built ${what} in ${seconds} s`);
    return join(dir, 'bin');
  });
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
  const bin = await buildOnce(
    'build',
    'the test control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK)',
    CONTROL_PLANE,
    progress,
  );
  return {
    etcd: join(bin, 'etcd'),
    kubeApiserver: join(bin, 'kube-apiserver'),
    kubeControllerManager: join(bin, 'kube-controller-manager'),
    kubeScheduler: join(bin, 'kube-scheduler'),
    kwok: join(bin, 'kwok'),
    kwokStages: kwokStages(),
  };
}

export interface NodeBinaries {
  /** Holds kubelet, kube-proxy, kubectl, containerd, containerd-shim-runc-v2, ctr, coredns and kube-router. */
  bin: string;
  /** pause.c from the Kubernetes module source: the pod sandbox's process. */
  pauseSource: string;
}

export async function ensureNodeBinaries(progress: Progress): Promise<NodeBinaries> {
  const bin = await buildOnce(
    'node',
    'the real node (kubelet, kube-proxy, containerd, CoreDNS, kube-router) and kubectl',
    NODE,
    progress,
  );
  const k8sDir = go(['list', '-m', '-f', '{{.Dir}}', 'k8s.io/kubernetes'], join(K8S_SOURCE, 'node'));
  return { bin, pauseSource: join(k8sDir, 'build', 'pause', 'linux', 'pause.c') };
}

/**
 * KEDA's operator (test/k8s/keda: github.com/kedacore/keda/v2 at a pinned version), for the tests of
 * a ScaledObject driving an InferenceService; built once, cached apart from the control plane.
 */
export async function ensureKedaOperator(progress: Progress): Promise<string> {
  const bin = await buildOnce(
    'keda',
    "KEDA's operator",
    [{ module: 'keda', pkg: 'github.com/kedacore/keda/v2/cmd/operator', out: 'keda-operator' }],
    progress,
  );
  return join(bin, 'keda-operator');
}

/** KEDA's metrics adapter from the same module: the external metrics API the HPA controller reads. */
export async function ensureKedaAdapter(progress: Progress): Promise<string> {
  const bin = await buildOnce(
    'keda-adapter',
    "KEDA's metrics adapter",
    [{ module: 'keda', pkg: 'github.com/kedacore/keda/v2/cmd/adapter', out: 'keda-adapter' }],
    progress,
  );
  return join(bin, 'keda-adapter');
}

/** `go build -v` names each package as it compiles it: progress is their count over the total. */
export function goBuild(
  cwd: string,
  pkg: string,
  out: string,
  total: number | undefined,
  onProgress: (done: number) => void,
  log: string,
  tags?: string,
): Promise<void> {
  mkdirSync(join(out, '..'), { recursive: true });
  rmSync(out, { force: true });
  const flags = ['-v', '-trimpath', '-ldflags=-s -w', ...(tags ? ['-tags', tags] : [])];
  // `go build` takes no @version: `go install` does, into GOBIN (named as the package's last element).
  const args = pkg.includes('@') ? ['install', ...flags, pkg] : ['build', ...flags, '-o', out, pkg];
  return new Promise((resolve, reject) => {
    const child = spawn('go', args, {
      cwd,
      env: { ...process.env, GOBIN: join(out, '..'), CGO_ENABLED: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let compiled = 0;
    let shown = 0;
    let tail = '';
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-4000);
      compiled += text.split('\n').filter((l) => l && !l.startsWith('#')).length;
      if (total === undefined) {
        // No total to take a share of: every 200 packages.
        if (compiled >= shown + 200) onProgress((shown = compiled - (compiled % 200)));
        return;
      }
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
