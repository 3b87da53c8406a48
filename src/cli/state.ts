// What a running `tandem up` leaves for `status`, `logs` and `down` in the state folder:
// run.json (who is running, where) and status.json (the latest snapshot and events).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceEvent } from '../core/group.js';
import type { ServiceSnapshot } from '../core/snapshot.js';
import { isRunningCommand, terminate } from '../util/process.js';

export interface RunInfo {
  pid: number;
  gateway: string;
  logDir: string;
  files: string[];
  startedAt: string;
}

export interface StatusFile {
  updatedAt: string;
  services: ServiceSnapshot[];
  events: ServiceEvent[];
}

const runPath = (dir: string) => join(dir, 'run.json');
const statusPath = (dir: string) => join(dir, 'status.json');

/** Written whole then renamed, so a reader never sees half a file. */
function writeAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The run recorded in `dir`, if its process is still alive (and still tandem). */
export function currentRun(dir: string): RunInfo | undefined {
  const run = readJson<RunInfo>(runPath(dir));
  return run && isRunningCommand(run.pid, /tandem|cli\/main\.js/) ? run : undefined;
}

export function writeRun(dir: string, run: RunInfo): void {
  mkdirSync(dir, { recursive: true });
  writeAtomic(runPath(dir), run);
}

export function writeStatus(dir: string, status: StatusFile): void {
  writeAtomic(statusPath(dir), status);
}

export function readStatus(dir: string): StatusFile | undefined {
  return readJson<StatusFile>(statusPath(dir));
}

/**
 * Members still alive from a run whose `tandem up` died without stopping them (killed with
 * SIGKILL, say): their pids are in its last status, and they are still engine processes.
 */
export function leftoverMembers(dir: string): number[] {
  if (currentRun(dir)) return [];
  const pids = (readStatus(dir)?.services ?? []).flatMap((s) => s.groups.flatMap((g) => g.members.map((m) => m.pid)));
  return pids.filter(
    (pid): pid is number => pid !== undefined && isRunningCommand(pid, /llama-server|ggml-rpc-server/),
  );
}

/** Stops leftover members (SIGTERM, SIGKILL after 5 s) and forgets the dead run. */
export async function reapLeftovers(dir: string): Promise<number> {
  const pids = leftoverMembers(dir);
  await terminate(pids, 5000);
  if (!currentRun(dir)) clearRun(dir);
  return pids.length;
}

export function clearRun(dir: string): void {
  for (const path of [runPath(dir), statusPath(dir)]) if (existsSync(path)) rmSync(path);
}
