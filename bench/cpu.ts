// CPU time of a process and its descendants, from /proc (Linux): what a gateway spends, its workers
// (nginx's, a router's threads) included.
import { readdirSync, readFileSync } from 'node:fs';

const TICK_MS = 1000 / 100; // USER_HZ: 100 on Linux

function stat(pid: number): { ppid: number; ms: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command may hold spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), ms: (Number(fields[11]) + Number(fields[12])) * TICK_MS };
  } catch {
    return undefined;
  }
}

/** User + system milliseconds of `pid` alone, now. */
export function cpuMs(pid: number): number {
  return stat(pid)?.ms ?? 0;
}

/** User + system milliseconds of `pid` and every process below it, now. */
export function treeCpuMs(pid: number): number {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s) children.set(s.ppid, [...(children.get(s.ppid) ?? []), Number(name)]);
  }
  let total = 0;
  for (const queue = [pid]; queue.length > 0;) {
    const p = queue.pop()!;
    total += stat(p)?.ms ?? 0;
    queue.push(...(children.get(p) ?? []));
  }
  return total;
}
