// Open descriptors and TCP connections of this process, from /proc: what a leak looks like.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Socket inodes this process holds open. */
function ownSocketInodes(): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed while listing
    }
  }
  return inodes;
}

export function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

/** This process's TCP connections (not listeners) whose local or remote port is `port`. */
export function connectionsOn(port: number, side: 'local' | 'remote'): number {
  const own = ownSocketInodes();
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/tcp', '/proc/net/tcp6']
    .flatMap((f) => readFileSync(f, 'utf8').trim().split('\n').slice(1))
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols[3] !== '0A' && own.has(cols[9]!))
    .filter((cols) => (side === 'local' ? cols[1] : cols[2])!.endsWith(`:${hex}`)).length;
}
