// The Debian packages the real node runs (runc, the CNI plugins, iptables and ipset for kube-proxy
// and kube-router, busybox for a shell in the image): installed by apt when missing, once, with
// progress, as the tier's other builds are. Only as root on Debian; elsewhere the error names them.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Progress } from '../../src/util/progress.js';

interface DebianPackage {
  name: string;
  /** A file the package installs: present means installed. */
  file: string;
}

export const NODE_PACKAGES: DebianPackage[] = [
  { name: 'runc', file: '/usr/sbin/runc' },
  { name: 'containernetworking-plugins', file: '/usr/lib/cni/bridge' },
  { name: 'iptables', file: '/usr/sbin/iptables' },
  { name: 'ipset', file: '/usr/sbin/ipset' },
  { name: 'conntrack', file: '/usr/sbin/conntrack' },
  { name: 'busybox-static', file: '/bin/busybox' },
];

export function ensureDebianPackages(packages: DebianPackage[], progress: Progress): void {
  const missing = packages.filter((p) => !existsSync(p.file)).map((p) => p.name);
  if (missing.length === 0) return;
  const install = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    throw new Error(`the real node needs Debian packages that are missing: run ${install} (as root)`);
  }
  progress(`installing ${missing.join(', ')} from Debian's packages`);
  const apt = (args: string[]) =>
    execFileSync('apt-get', args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  try {
    apt(['install', '-y', '-q', '--no-install-recommends', ...missing]);
  } catch {
    progress("updating Debian's package lists");
    apt(['update', '-q']);
    apt(['install', '-y', '-q', '--no-install-recommends', ...missing]);
  }
}
