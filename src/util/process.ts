// Whether a process is alive. A zombie (exited, not yet reaped by its parent) is not.
import { readFileSync } from 'node:fs';

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // Field 3 of /proc/PID/stat, after the parenthesised command name, is the state.
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0] !== 'Z';
  } catch {
    return true; // no /proc: kill(0) is all we know
  }
}

/**
 * Whether `pid` is alive and still runs what we started (its command line matches), so that a
 * recorded pid the system has since given to another process is never signalled.
 */
export function isRunningCommand(pid: number, pattern: RegExp): boolean {
  if (!isRunning(pid)) return false;
  try {
    return pattern.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true; // no /proc: liveness is all we can know
  }
}

/** Waits until none of `pids` runs; resolves false if some still does after `timeoutMs`. */
export async function waitForExit(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isRunning)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** SIGTERM, then SIGKILL to whatever still runs after `graceMs`. */
export async function terminate(pids: number[], graceMs: number): Promise<void> {
  for (const pid of pids) signal(pid, 'SIGTERM');
  if (!(await waitForExit(pids, graceMs))) for (const pid of pids.filter(isRunning)) signal(pid, 'SIGKILL');
}

/** Sends `sig` (0: only checks) to a process, or to a process group by its negative id; false if none is there. */
export function signal(target: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(target, sig);
    return true;
  } catch {
    return false; // gone already
  }
}

/** The same, to every process of the group `pgid` leads. */
export function signalGroup(pgid: number, sig: NodeJS.Signals | 0): boolean {
  return signal(-pgid, sig);
}
