// What a running `tandem up` leaves for `status`, `logs` and `down` in the state folder:
// run.json (who is running, where) and status.json (the latest snapshot and events).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReconcilerEvent, ServiceSnapshot } from '../runtime/reconciler.js';
import { isRunning } from '../util/process.js';

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
  events: ReconcilerEvent[];
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

/** The run recorded in `dir`, if its process is still alive. */
export function currentRun(dir: string): RunInfo | undefined {
  const run = readJson<RunInfo>(runPath(dir));
  return run && isRunning(run.pid) ? run : undefined;
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

export function clearRun(dir: string): void {
  for (const path of [runPath(dir), statusPath(dir)]) if (existsSync(path)) rmSync(path);
}
