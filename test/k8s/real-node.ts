// A real node in the test cluster, beside the KWOK ones: kubelet and containerd 2 (runc) run real
// containers; pods get addresses on a bridge made here (10.244.0.0/24, nothing routed beyond it);
// CoreDNS answers Services' names, kube-proxy serves ClusterIPs, kube-router enforces
// NetworkPolicies. The node is tainted: only pods that tolerate REAL_NODE_TAINT land on it, so the
// other tests' pods stay on the fake nodes.
//
// Every change to the host (bridge, cgroups, sysctls, mounts, iptables rules, ipsets) is undone by
// cleanUpHost, which is safe to run at any time: at stop, and before every start (after a crash).
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../../src/util/net.js';
import { cacheDir } from '../../src/util/paths.js';
import type { Progress } from '../../src/util/progress.js';
import { ensureNodeBinaries } from './binaries.js';
import { NODE_PACKAGES, ensureDebianPackages } from './debian-packages.js';
import { buildPauseImage, type Image } from './image.js';

export const REAL_NODE = 'real-node';
/** On the real node: pods that should run there tolerate it (and select the node by name). */
export const REAL_NODE_TAINT = { key: 'tandem.dev/real-node', value: 'true', effect: 'NoSchedule' } as const;
/** The bridge's own address: the node's IP, where its kubelet, CoreDNS and the API server listen. */
export const NODE_IP = '10.244.0.1';
const POD_CIDR = '10.244.0.0/24';
/** The API server's --service-cluster-ip-range. */
export const SERVICE_CIDR = '10.96.0.0/16';
const BRIDGE = 'tandem0';
const CGROUP_ROOT = 'tandem-test';
const CNI_NETWORK = 'tandem';
/** The node's processes, in the order they stop. */
export const REAL_NODE_PROCESSES = ['kubelet', 'kube-router', 'kube-proxy', 'coredns', 'containerd'];
const SYSCTLS = ['net/ipv4/ip_forward', 'net/bridge/bridge-nf-call-iptables', 'net/ipv4/conf/all/route_localnet'];

/** Why this machine cannot run a real node, or undefined. */
export function realNodeUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'a real node runs Linux containers';
  if (process.getuid?.() !== 0) return 'a real node (a bridge, cgroups, containerd) needs root';
  if (!existsSync('/sys/fs/cgroup/memory') && !existsSync('/sys/fs/cgroup/cgroup.controllers'))
    return 'no cgroup filesystem at /sys/fs/cgroup';
  return undefined;
}

export interface NodeFiles {
  bin: string;
  pause: Image;
}

/** Everything the node needs before any of it starts: Debian packages, binaries, the pause image. */
export async function prepareRealNode(progress: Progress): Promise<NodeFiles> {
  ensureDebianPackages(NODE_PACKAGES, progress);
  const { bin, pauseSource } = await ensureNodeBinaries(progress);
  return { bin, pause: buildPauseImage(pauseSource) };
}

/** What the host looked like before, for cleanUpHost; outside the run folder, which a start removes. */
const hostRecord = () => join(cacheDir(), 'k8s', 'real-node-host.json');

interface HostRecord {
  sysctls: Record<string, string>;
  /** Folders that did not exist and that containerd or CNI create outside the run folder. */
  created: string[];
}

const OUTSIDE_FOLDERS = ['/run/containerd', '/var/lib/cni', '/run/netns', '/etc/cni', '/opt/cni'];

/**
 * The cgroup trees: v2's one, or v1's hierarchies; `unified` (a hybrid host's v2 tree) only with
 * `withUnified`, since the kubelet needs the root only in v1's, but runc makes cgroups there too.
 */
function cgroupHierarchies(withUnified = false): string[] {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup']; // v2: one tree
  return readdirSync('/sys/fs/cgroup')
    .map((c) => join('/sys/fs/cgroup', c))
    .filter((c) => existsSync(join(c, 'cgroup.procs')) && (withUnified || !c.endsWith('/unified')));
}

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * Joins the network namespace of process `pid` to the bridge at `address` (10.244.0.200 and up),
 * as the CNI plugin joins a pod's: a veth pair, which goes with the namespace. False while the
 * process does not have a namespace of its own yet.
 */
export function onBridge(pid: number, address: string): boolean {
  if (readlinkSync(`/proc/${pid}/ns/net`) === readlinkSync('/proc/self/ns/net')) return false;
  const host = `tveth${pid}`;
  run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]);
  run('ip', ['link', 'set', host, 'master', BRIDGE, 'up']);
  const inside = (...args: string[]) => run('nsenter', ['-t', String(pid), '-n', 'ip', ...args]);
  inside('addr', 'add', `${address}/24`, 'dev', 'eth0');
  inside('link', 'set', 'eth0', 'up');
  inside('link', 'set', 'lo', 'up');
  return true;
}
const tryRun = (cmd: string, args: string[]) => {
  try {
    run(cmd, args);
    return true;
  } catch {
    return false;
  }
};

/** The bridge, the cgroup root, and a record of the sysctls and folders it may change. */
export function setUpHost(): void {
  const record: HostRecord = {
    sysctls: Object.fromEntries(
      SYSCTLS.filter((s) => existsSync(`/proc/sys/${s}`)).map((s) => [
        s,
        readFileSync(`/proc/sys/${s}`, 'utf8').trim(),
      ]),
    ),
    created: OUTSIDE_FOLDERS.filter((f) => !existsSync(f)),
  };
  mkdirSync(join(hostRecord(), '..'), { recursive: true });
  writeFileSync(hostRecord(), JSON.stringify(record, null, 2));
  for (const h of cgroupHierarchies()) {
    const dir = join(h, CGROUP_ROOT);
    mkdirSync(dir, { recursive: true });
    // A cpuset cgroup takes no task until it has CPUs and memory nodes.
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(join(h, f))) writeFileSync(join(dir, f), readFileSync(join(h, f)));
    }
  }
  // kube-router and kube-proxy see bridged pod-to-pod traffic only through iptables.
  if (existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables'))
    writeFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', '1');
  run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  run('ip', ['addr', 'add', `${NODE_IP}/24`, 'dev', BRIDGE]);
  run('ip', ['link', 'set', BRIDGE, 'up']);
}

/** Mount points under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m): m is string => m !== undefined)
    .map((m) => m.replace(/\\(\d{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Cgroups under `root` in every hierarchy, deepest first. */
function cgroupsUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    out.push(dir);
  };
  for (const h of cgroupHierarchies(true)) if (existsSync(join(h, root))) walk(join(h, root));
  return out;
}

function pidsOf(pattern: RegExp): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return pattern.test(readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' '));
      } catch {
        return false;
      }
    })
    .map(Number);
}

const kill = (pids: number[]) => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
};

/**
 * Undoes everything the node changed on the host; each step is skipped when there is nothing to
 * undo, so it is safe after a clean stop, a crash, or on a host that never ran a node. `nodeDir` is
 * the run's node folder (its mounts), `bin` the node binaries (their own iptables cleanup). The
 * node's own processes are stopped before this.
 */
export function cleanUpHost(nodeDir: string, bin?: string): void {
  if (realNodeUnavailable()) return;
  // Pods' processes (in the node's cgroups), then the shims that watched them.
  for (let round = 0; round < 5; round++) {
    const pids = cgroupsUnder(CGROUP_ROOT).flatMap((c) =>
      readFileSync(join(c, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number),
    );
    if (pids.length === 0) break;
    kill(pids);
    execFileSync('sleep', ['0.2']);
  }
  kill(pidsOf(/containerd-shim-runc-v2 .*tandem/));
  for (const m of mountsUnder(nodeDir)) tryRun('umount', ['-l', m]);
  if (existsSync(`/sys/class/net/${BRIDGE}`)) run('ip', ['link', 'del', BRIDGE]);
  // kube-proxy removes its own rules; kube-router's --cleanup-config (v2.1.0) leaves its chains and
  // then crashes without IPVS, so every KUBE-* chain (kube-router's, the kubelet's) goes here.
  if (bin && existsSync(join(bin, 'kube-proxy'))) tryRun(join(bin, 'kube-proxy'), ['--cleanup']);
  removeKubeChains();
  if (existsSync('/usr/sbin/ipset')) {
    for (const set of run('ipset', ['list', '-n']).toString().split('\n')) {
      if (/^(KUBE-|kube-router-)/.test(set)) tryRun('ipset', ['destroy', set]);
    }
  }
  for (const c of cgroupsUnder(CGROUP_ROOT)) {
    try {
      rmdirSync(c);
    } catch {
      // a process still exiting: the next cleanup takes it
    }
  }
  // CNI keeps each attachment's result here, whatever the config says.
  for (const dir of ['/var/lib/cni/results', '/var/lib/cni/networks']) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir))
      if (f.startsWith(`${CNI_NETWORK}-`) || f === CNI_NETWORK) rmSync(join(dir, f), { recursive: true });
  }
  if (!existsSync(hostRecord())) return;
  const record = JSON.parse(readFileSync(hostRecord(), 'utf8')) as HostRecord;
  for (const [s, value] of Object.entries(record.sysctls)) writeFileSync(`/proc/sys/${s}`, value);
  for (const f of record.created) if (existsSync(f)) rmSync(f, { recursive: true, force: true });
  rmSync(hostRecord());
}

/**
 * The host PIDs of a container on the real node (`containerd://ID` from a pod's status), read from
 * its cgroup: what a test kills to make a process in a pod die as a crash would.
 */
export function containerPids(containerId: string): number[] {
  const id = containerId.replace(/^containerd:\/\//, '');
  const dir = cgroupsUnder(CGROUP_ROOT).find((c) => c.endsWith(`/${id}`));
  if (!dir) throw new Error(`no cgroup for container ${id} on the real node`);
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

/** Every rule that jumps to a KUBE-* chain, then the chains, in each table, as one iptables-restore. */
function removeKubeChains(): void {
  if (!existsSync('/usr/sbin/iptables-save')) return;
  for (const table of ['filter', 'nat', 'mangle']) {
    const lines = run('iptables-save', ['-t', table]).toString().split('\n');
    const chains = lines.flatMap((l) => /^:(KUBE-\S+)/.exec(l)?.[1] ?? []);
    if (chains.length === 0) continue;
    const jumps = lines.filter((l) => l.startsWith('-A ') && / -j KUBE-/.test(l) && !/^-A KUBE-/.test(l));
    const script = [
      `*${table}`,
      ...jumps.map((l) => `-D${l.slice(2)}`),
      ...chains.map((c) => `-F ${c}`),
      ...chains.map((c) => `-X ${c}`),
      'COMMIT',
      '',
    ].join('\n');
    execFileSync('iptables-restore', ['--noflush'], { input: script });
  }
}

/** What a node leaves on the host after cleanUpHost, described: nothing, unless cleanup is broken. */
export function hostLeftovers(nodeDir: string): string[] {
  if (realNodeUnavailable()) return [];
  const left: string[] = [];
  if (existsSync(`/sys/class/net/${BRIDGE}`)) left.push(`bridge ${BRIDGE}`);
  const cgroups = cgroupsUnder(CGROUP_ROOT);
  if (cgroups.length > 0) left.push(`cgroups ${cgroups.slice(0, 3).join(', ')}`);
  const mounts = mountsUnder(nodeDir);
  if (mounts.length > 0) left.push(`mounts ${mounts.slice(0, 3).join(', ')}`);
  if (existsSync('/usr/sbin/iptables-save') && /^:KUBE-/m.test(run('iptables-save', []).toString()))
    left.push('KUBE-* iptables chains');
  const processes = pidsOf(new RegExp(`(${REAL_NODE_PROCESSES.join('|')}|containerd-shim-runc-v2) `));
  if (processes.length > 0) left.push(`processes ${processes.join(', ')}`);
  if (existsSync(hostRecord())) left.push(`the record of the host's settings (${hostRecord()}), not restored`);
  return left;
}

/** What the node's processes are started with: the cluster's launcher and addresses. */
export interface NodeContext {
  dir: string;
  bin: string;
  server: string;
  /** The admin's kubeconfig (CoreDNS, kube-proxy and kube-router read the API with it). */
  adminKubeconfig: string;
  /** The kubelet's token (a node user in tokens.csv). */
  kubeletToken: string;
  /** The API server's certificate (its own CA). */
  caFile: string;
  launch: (name: string, command: string, args: string[], env?: NodeJS.ProcessEnv) => void;
}

/** Containerd's CRI configuration: runc, the bridge network, the sandbox image from the node. */
function containerdConfig(dir: string, pause: string): string {
  return `version = 3
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
[grpc]
  address = "${dir}/containerd/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "${pause}"
[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "${dir}/cni/net.d"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`;
}

export const containerdSocket = (dir: string) => join(dir, 'containerd', 'containerd.sock');

/** Loads an image archive into the node's containerd, where pods find it (no registry involved). */
export function importImage(bin: string, dir: string, image: Image): void {
  run(join(bin, 'ctr'), ['--address', containerdSocket(dir), '-n', 'k8s.io', 'images', 'import', image.archive]);
}

/** Starts containerd (and loads the pause image), CoreDNS, kube-proxy, kube-router and the kubelet. */
export async function startNodeProcesses(
  ctx: NodeContext,
  pause: Image,
  waitFor: (what: string, check: () => Promise<boolean> | boolean) => Promise<void>,
  nodeReady: () => Promise<boolean>,
  progress: Progress,
): Promise<void> {
  const { dir, bin } = ctx;
  for (const d of [
    'containerd',
    'cni/net.d',
    'cni/ipam',
    'kubelet/root',
    'kubelet/pki',
    'kubelet/pods',
    'kubelet/plugins',
  ])
    mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'containerd', 'config.toml'), containerdConfig(dir, pause.ref));
  writeFileSync(
    join(dir, 'cni', 'net.d', '10-tandem.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: CNI_NETWORK,
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: false, // nothing leaves the bridge: no NAT to the outside
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            // From .200 on, addresses are the tests' own (onBridge).
            ranges: [[{ subnet: POD_CIDR, gateway: NODE_IP, rangeStart: '10.244.0.2', rangeEnd: '10.244.0.199' }]],
            // Only ClusterIPs go through the host (kube-proxy); pods have no default route, so
            // nothing they send can leave the bridge.
            routes: [{ dst: SERVICE_CIDR }],
            dataDir: join(dir, 'cni', 'ipam'),
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    }),
  );
  progress('starting the real node: containerd');
  // The v2 shim is looked up on PATH, next to containerd.
  ctx.launch('containerd', join(bin, 'containerd'), ['--config', join(dir, 'containerd', 'config.toml')], {
    ...process.env,
    PATH: `${bin}:${process.env.PATH ?? ''}`,
  });
  await waitFor('containerd', () => existsSync(containerdSocket(dir)));
  importImage(bin, dir, pause);

  progress('starting the real node: CoreDNS, kube-proxy');
  writeFileSync(
    join(dir, 'Corefile'),
    [
      // Cluster names from the API; nothing else resolves (no forwarding: this machine is offline).
      `cluster.local:53 {\n  bind ${NODE_IP}\n  errors\n  kubernetes cluster.local {\n    kubeconfig ${ctx.adminKubeconfig}\n  }\n}`,
      `.:53 {\n  bind ${NODE_IP}\n  template ANY ANY {\n    rcode NXDOMAIN\n  }\n}`,
      '',
    ].join('\n'),
  );
  ctx.launch('coredns', join(bin, 'coredns'), ['-conf', join(dir, 'Corefile'), '-dns.port', '53']);
  writeFileSync(
    join(dir, 'kube-proxy.yaml'),
    stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      clientConnection: { kubeconfig: ctx.adminKubeconfig },
      hostnameOverride: REAL_NODE,
      mode: 'iptables',
      clusterCIDR: POD_CIDR,
      bindAddress: NODE_IP,
      healthzBindAddress: `127.0.0.1:${await freePort()}`,
      metricsBindAddress: `127.0.0.1:${await freePort()}`,
      nodePortAddresses: [`${NODE_IP}/32`],
      // Leave the host's conntrack settings and route_localnet as they are.
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      iptables: { localhostNodePorts: false },
    }),
  );
  ctx.launch('kube-proxy', join(bin, 'kube-proxy'), ['--config', join(dir, 'kube-proxy.yaml')]);
  progress('starting the real node: kubelet');
  writeFileSync(
    join(dir, 'kubelet', 'kubeconfig'),
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'tandem-test', cluster: { server: ctx.server, 'certificate-authority': ctx.caFile } }],
      users: [{ name: 'kubelet', user: { token: ctx.kubeletToken } }],
      contexts: [{ name: 'kubelet', context: { cluster: 'tandem-test', user: 'kubelet' } }],
      'current-context': 'kubelet',
    }),
  );
  writeFileSync(
    join(dir, 'kubelet', 'config.yaml'),
    stringify({
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      failCgroupV1: false, // this host may still be on cgroup v1 (deprecated, still supported)
      cgroupDriver: 'cgroupfs',
      cgroupRoot: `/${CGROUP_ROOT}`,
      containerRuntimeEndpoint: `unix://${containerdSocket(dir)}`,
      // On the bridge: the API server proxies logs and exec to it there.
      address: NODE_IP,
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 0,
      authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
      authorization: { mode: 'AlwaysAllow' },
      failSwapOn: false,
      podLogsDir: join(dir, 'kubelet', 'pods'),
      volumePluginDir: join(dir, 'kubelet', 'plugins'),
      enforceNodeAllocatable: ['pods'],
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      maxPods: 30,
      resolvConf: '',
      clusterDomain: 'cluster.local',
      clusterDNS: [NODE_IP],
      makeIPTablesUtilChains: false,
      registerWithTaints: [REAL_NODE_TAINT],
    }),
  );
  ctx.launch(
    'kubelet',
    join(bin, 'kubelet'),
    [
      '--config',
      join(dir, 'kubelet', 'config.yaml'),
      '--kubeconfig',
      join(dir, 'kubelet', 'kubeconfig'),
      '--root-dir',
      join(dir, 'kubelet', 'root'),
      '--cert-dir',
      join(dir, 'kubelet', 'pki'),
      '--hostname-override',
      REAL_NODE,
      '--node-ip',
      NODE_IP,
      '--node-labels',
      `${REAL_NODE_TAINT.key}=${REAL_NODE_TAINT.value}`,
    ],
    { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
  );
  await waitFor(`the real node ${REAL_NODE} to be Ready`, nodeReady);
  // kube-router finds its node by name: it starts once the kubelet has registered it.
  progress('starting the real node: kube-router (NetworkPolicies)');
  ctx.launch('kube-router', join(bin, 'kube-router'), [
    '--kubeconfig',
    ctx.adminKubeconfig,
    '--hostname-override',
    REAL_NODE,
    '--run-firewall=true',
    '--run-router=false',
    '--run-service-proxy=false',
    '--enable-cni=false',
    '--health-port=0',
    '--metrics-port=0',
  ]);

  await waitFor("kube-router's firewall chains", () => tryRun('iptables', ['-S', 'KUBE-ROUTER-FORWARD']));
}
